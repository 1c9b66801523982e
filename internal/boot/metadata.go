package boot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	bootmetrics "github.com/metalfleet/metal-operator/internal/boot/metrics"
	"github.com/metalfleet/metal-operator/internal/index"
)

// The metadata service of the reference (metaldata), served by the boot server.
const (
	// MetadataFlavorHeader and MetadataFlavor: every metadata request must carry the header.
	MetadataFlavorHeader = "Metadata-Flavor"
	MetadataFlavor       = "IronCore Metal"
	// MetadataPrefix marks the labels and annotations of a Server that are served as
	// metadata, with the prefix stripped.
	MetadataPrefix = "metadata.metal.ironcore.dev/"
	// maxUserDataKeys bounds the user-data keys served.
	maxUserDataKeys = 256
)

// serveMetadata answers the metadata service: GET /v1/ (all metadata and the user data),
// /v1/{field} (one value), /v1/user-data (the user data) and /v1/user-data/{key} (one user
// data value, raw). The caller is the server whose boot credential was pinned to the
// request's source address, while the claim that booted it still holds it; anyone else
// gets a 404.
func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(MetadataFlavorHeader) != MetadataFlavor {
		bootmetrics.MetadataServed.WithLabelValues(bootmetrics.ResultDenied).Inc()
		http.Error(w, "missing required header: "+MetadataFlavorHeader+": "+MetadataFlavor, http.StatusForbidden)
		return
	}
	ip := clientIP(r)
	if ip == "" {
		http.Error(w, "bad remote address", http.StatusBadRequest)
		return
	}
	srv, claim, err := s.metadataCaller(r.Context(), ip)
	if err != nil {
		if errors.Is(err, errNotFound) {
			bootmetrics.MetadataServed.WithLabelValues(bootmetrics.ResultNotFound).Inc()
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		bootmetrics.MetadataServed.WithLabelValues(bootmetrics.ResultError).Inc()
		s.log.Error(err, "Identifying a metadata caller", "source", ip)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	userData, err := s.userData(r.Context(), claim)
	if err != nil {
		// What is wrong with the tenant's own Secret is said (as the reference does); an API
		// error's detail (RBAC, the API server) is the operator's, not the caller's.
		bootmetrics.MetadataServed.WithLabelValues(bootmetrics.ResultInvalid).Inc()
		msg := err.Error()
		var apiErr apierrors.APIStatus
		if errors.As(err, &apiErr) {
			s.log.Error(err, "Reading user data", "ServerClaim", klog.KObj(claim))
			msg = "user data unavailable"
		}
		http.Error(w, msg, http.StatusInternalServerError)
		return
	}
	md := metadata(srv)
	field, key := r.PathValue("field"), r.PathValue("key")
	switch {
	case key != "":
		v, ok := userData[key]
		writeText(w, v, ok)
	case field == "user-data":
		if userData == nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		writeJSON(w, userData)
	case field != "":
		v, ok := md[field]
		writeText(w, v, ok)
	default:
		all := map[string]any{}
		for k, v := range md {
			all[k] = v
		}
		if userData != nil {
			all["user-data"] = userData
		}
		writeJSON(w, all)
	}
	bootmetrics.MetadataServed.WithLabelValues(bootmetrics.ResultServed).Inc()
}

// metadataCaller finds the server, and its claim, whose boot credential is pinned to ip.
// The configuration and the claim are read live: the claim must still hold the server, and
// the configuration must be the server's current one.
func (s *Server) metadataCaller(ctx context.Context, ip string) (*metalv1alpha1.Server, *metalv1alpha1.ServerClaim, error) {
	list := &metalv1alpha1.ServerBootConfigurationList{}
	if err := s.client.List(ctx, list, client.MatchingFields{index.BootConfigurationPinnedIP: ip}); err != nil {
		return nil, nil, fmt.Errorf("listing boot configurations by address: %w", err)
	}
	var found *metalv1alpha1.Server
	var foundClaim *metalv1alpha1.ServerClaim
	for i := range list.Items {
		srv, claim, err := s.heldBy(ctx, client.ObjectKeyFromObject(&list.Items[i]), ip)
		if errors.Is(err, errNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if found != nil {
			// Two held servers claim one address: answer neither.
			return nil, nil, errNotFound
		}
		found, foundClaim = srv, claim
	}
	if found == nil {
		return nil, nil, errNotFound
	}
	return found, foundClaim, nil
}

// heldBy returns the server of a configuration pinned to ip and the claim holding it, or
// errNotFound.
func (s *Server) heldBy(ctx context.Context, key types.NamespacedName, ip string) (*metalv1alpha1.Server, *metalv1alpha1.ServerClaim, error) {
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	if err := s.reader.Get(ctx, key, sbc); err != nil {
		return nil, nil, notFoundOr(err)
	}
	if c := sbc.Status.BootCredential; c == nil || c.Hash == "" || c.PinnedIP != ip {
		return nil, nil, errNotFound
	}
	srv := &metalv1alpha1.Server{}
	if err := s.reader.Get(ctx, types.NamespacedName{Name: sbc.Spec.ServerRef.Name}, srv); err != nil {
		return nil, nil, notFoundOr(err)
	}
	ref, claimRef := srv.Spec.BootConfigurationRef, srv.Spec.ServerClaimRef
	if ref == nil || ref.Namespace != sbc.Namespace || ref.Name != sbc.Name || claimRef == nil || claimRef.Namespace != sbc.Namespace {
		return nil, nil, errNotFound
	}
	claim := &metalv1alpha1.ServerClaim{}
	if err := s.reader.Get(ctx, types.NamespacedName{Namespace: claimRef.Namespace, Name: claimRef.Name}, claim); err != nil {
		return nil, nil, notFoundOr(err)
	}
	if claim.Spec.ServerRef == nil || claim.Spec.ServerRef.Name != srv.Name || (claimRef.UID != "" && claimRef.UID != string(claim.UID)) {
		return nil, nil, errNotFound
	}
	return srv, claim, nil
}

func notFoundOr(err error) error {
	if apierrors.IsNotFound(err) {
		return errNotFound
	}
	return err
}

// metadata is what the reference serves of a server: server-name, then its annotations and
// labels carrying MetadataPrefix, stripped of it (labels win).
func metadata(srv *metalv1alpha1.Server) map[string]string {
	md := map[string]string{"server-name": srv.Name}
	for _, m := range []map[string]string{srv.Annotations, srv.Labels} {
		for k, v := range m {
			if name, ok := strings.CutPrefix(k, MetadataPrefix); ok && name != "" {
				md[name] = v
			}
		}
	}
	return md
}

// errWrongUserDataType is the reference's answer to a user-data Secret of another type.
type errWrongUserDataType string

func (e errWrongUserDataType) Error() string {
	return fmt.Sprintf("wrong secret type for user-data '%s'", string(e))
}

// userData is the claim's user data (spec.userDataRef, a Secret of type
// metal.ironcore.dev/user-data in the claim's namespace, read live); nil when there is none.
func (s *Server) userData(ctx context.Context, claim *metalv1alpha1.ServerClaim) (map[string]string, error) {
	ref := claim.Spec.UserDataRef
	if ref == nil {
		return nil, nil
	}
	secret := &corev1.Secret{}
	if err := s.reader.Get(ctx, types.NamespacedName{Namespace: claim.Namespace, Name: ref.Name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading the user data: %w", err)
	}
	if secret.Type != metalv1alpha1.UserDataSecretType {
		return nil, errWrongUserDataType(secret.Type)
	}
	out := make(map[string]string, len(secret.Data))
	for _, k := range sortedKeys(secret.Data) {
		if len(out) == maxUserDataKeys {
			break
		}
		out[k] = string(secret.Data[k])
	}
	return out, nil
}

func sortedKeys(m map[string][]byte) []string {
	return slices.Sorted(maps.Keys(m))
}

// writeText answers v as text, or 404 when it was not found.
func writeText(w http.ResponseWriter, v string, found bool) {
	if !found {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(v))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
