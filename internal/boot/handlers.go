package boot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/boot/ignition"
	bootmetrics "github.com/metalfleet/metal-operator/internal/boot/metrics"
	"github.com/metalfleet/metal-operator/internal/index"
)

// errNotFound and errNotReady are lookups that end in a 404.
var (
	errNotFound = errors.New("not found")
	errNotReady = errors.New("no Ready boot configuration")
)

// findServer looks a server up by system UUID (case-insensitive) or, failing that, by the
// MAC address of one of its interfaces. More than one match is treated as none.
func (s *Server) findServer(ctx context.Context, uuid, mac string) (*metalv1alpha1.Server, error) {
	lookups := []struct{ field, value string }{
		{index.ServerSystemUUID, strings.ToLower(strings.TrimSpace(uuid))},
		{index.ServerMACAddress, index.NormalizeMAC(mac)},
	}
	for _, l := range lookups {
		if l.value == "" {
			continue
		}
		list := &metalv1alpha1.ServerList{}
		if err := s.client.List(ctx, list, client.MatchingFields{l.field: l.value}); err != nil {
			return nil, fmt.Errorf("listing servers by %s: %w", l.field, err)
		}
		switch len(list.Items) {
		case 0:
			continue
		case 1:
			return &list.Items[0], nil
		default:
			s.log.Info("Several servers match a boot request", "field", l.field, "value", l.value, "count", len(list.Items))
			return nil, errNotFound
		}
	}
	return nil, errNotFound
}

// readyConfiguration returns the Ready boot configuration of a server: the one its
// spec.bootConfigurationRef names, which must name the server back.
func (s *Server) readyConfiguration(ctx context.Context, srv *metalv1alpha1.Server) (*metalv1alpha1.ServerBootConfiguration, error) {
	ref := srv.Spec.BootConfigurationRef
	if ref == nil {
		return nil, errNotReady
	}
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	if err := s.client.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, sbc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errNotReady
		}
		return nil, fmt.Errorf("getting boot configuration %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	if !isReady(sbc) || sbc.Spec.ServerRef.Name != srv.Name {
		return nil, errNotReady
	}
	return sbc, nil
}

func isReady(sbc *metalv1alpha1.ServerBootConfiguration) bool {
	img := sbc.Status.Image
	return sbc.DeletionTimestamp.IsZero() &&
		sbc.Status.State == metalv1alpha1.ServerBootConfigurationStateReady &&
		sbc.Status.ObservedGeneration == sbc.Generation &&
		img != nil && img.Kernel != nil && img.Initrd != nil
}

// lookupForBoot finds the server of a boot request and its Ready configuration, answering
// the request itself (and counting it) when there is none.
func (s *Server) lookupForBoot(w http.ResponseWriter, r *http.Request, uuid, mac string) (*metalv1alpha1.Server, *metalv1alpha1.ServerBootConfiguration, bool) {
	ctx := r.Context()
	if uuid == "" && mac == "" {
		bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultNotFound).Inc()
		http.Error(w, "a system UUID or MAC address is required", http.StatusBadRequest)
		return nil, nil, false
	}
	srv, err := s.findServer(ctx, uuid, mac)
	if err == nil {
		var sbc *metalv1alpha1.ServerBootConfiguration
		if sbc, err = s.readyConfiguration(ctx, srv); err == nil {
			return srv, sbc, true
		}
	}
	switch {
	case errors.Is(err, errNotFound):
		bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultNotFound).Inc()
		http.Error(w, "unknown server", http.StatusNotFound)
	case errors.Is(err, errNotReady):
		bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultNotReady).Inc()
		http.Error(w, "no Ready boot configuration for this server", http.StatusNotFound)
	default:
		bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultError).Inc()
		s.log.Error(err, "Looking up a boot request")
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
	return nil, nil, false
}

// serveIPXE answers GET /ipxe/{uuid} and GET /ipxe?uuid=...&mac=... with the iPXE script of
// the server's Ready boot configuration.
func (s *Server) serveIPXE(w http.ResponseWriter, r *http.Request) {
	uuid := r.PathValue("uuid")
	if uuid == "" {
		uuid = r.URL.Query().Get("uuid")
	}
	srv, sbc, ok := s.lookupForBoot(w, r, uuid, r.URL.Query().Get("mac"))
	if !ok {
		return
	}
	script := s.ipxeScript(sbc)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, script)
	bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultServed).Inc()
	s.log.V(1).Info("Served an iPXE script", "Server", klog.KObj(srv), "ServerBootConfiguration", klog.KObj(sbc))
}

// artifactURL is where the boot server streams a pinned layer of a configuration.
func (s *Server) artifactURL(sbc *metalv1alpha1.ServerBootConfiguration, a *metalv1alpha1.BootArtifact) string {
	return fmt.Sprintf("%s/artifacts/%s/%s/%s", s.base, sbc.Namespace, sbc.Name, a.Digest)
}

// IgnitionURL is the URL of a configuration's ignition, with its token.
func (s *Server) IgnitionURL(sbc *metalv1alpha1.ServerBootConfiguration) string {
	return s.base + "/ignition/" + s.tokens.token(client.ObjectKeyFromObject(sbc), sbc.UID)
}

// ipxeScript renders the iPXE script that boots a Ready configuration.
func (s *Server) ipxeScript(sbc *metalv1alpha1.ServerBootConfiguration) string {
	img := sbc.Status.Image
	args := []string{"initrd=initrd"}
	if sbc.Spec.IgnitionSecretRef != nil {
		args = append(args, "ignition.firstboot", "ignition.platform.id=metal", "ignition.config.url="+s.IgnitionURL(sbc))
	}
	if img.RootFS != nil {
		args = append(args, "coreos.live.rootfs_url="+s.artifactURL(sbc, img.RootFS))
	}
	args = append(args, s.opts.KernelArgs...)
	var b strings.Builder
	b.WriteString("#!ipxe\n")
	fmt.Fprintf(&b, "echo Booting %s/%s (%s)\n", sbc.Namespace, sbc.Name, img.Digest)
	fmt.Fprintf(&b, "kernel %s %s\n", s.artifactURL(sbc, img.Kernel), strings.Join(args, " "))
	fmt.Fprintf(&b, "initrd --name initrd %s\n", s.artifactURL(sbc, img.Initrd))
	b.WriteString("boot\n")
	return b.String()
}

// serveHTTPBoot answers UEFI HTTP boot: the configured boot loader (the same for every
// server), or else the pinned kernel (an EFI stub) of the server's Ready configuration.
func (s *Server) serveHTTPBoot(w http.ResponseWriter, r *http.Request) {
	if s.opts.HTTPBootLoader != "" {
		f, err := os.Open(s.opts.HTTPBootLoader)
		if err != nil {
			bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultError).Inc()
			s.log.Error(err, "Opening the HTTP boot loader")
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		defer func() { _ = f.Close() }()
		st, err := f.Stat()
		if err != nil {
			bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultError).Inc()
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/efi")
		http.ServeContent(w, r, filepath.Base(s.opts.HTTPBootLoader), st.ModTime(), f)
		bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultServed).Inc()
		return
	}
	uuid := r.PathValue("uuid")
	if uuid == "" {
		uuid = r.URL.Query().Get("uuid")
	}
	_, sbc, ok := s.lookupForBoot(w, r, uuid, r.URL.Query().Get("mac"))
	if !ok {
		return
	}
	bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultServed).Inc()
	s.streamArtifact(w, r, sbc, sbc.Status.Image.Kernel, "application/efi")
}

// serveArtifact streams GET /artifacts/{namespace}/{name}/{digest}: a layer pinned in the
// status of a Ready configuration, and nothing else.
func (s *Server) serveArtifact(w http.ResponseWriter, r *http.Request) {
	key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	digest := r.PathValue("digest")
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	if err := s.client.Get(r.Context(), key, sbc); err != nil {
		if apierrors.IsNotFound(err) {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		s.log.Error(err, "Getting a boot configuration for an artifact", "ServerBootConfiguration", key)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if !isReady(sbc) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	img := sbc.Status.Image
	for _, a := range []*metalv1alpha1.BootArtifact{img.Kernel, img.Initrd, img.RootFS} {
		if a != nil && a.Digest == digest {
			s.streamArtifact(w, r, sbc, a, "application/octet-stream")
			return
		}
	}
	http.Error(w, "not found", http.StatusNotFound)
}

// streamArtifact copies a pinned layer from the registry. A failure once the body has
// started aborts the connection, so that the client sees a truncated download rather than
// a complete-looking wrong one.
func (s *Server) streamArtifact(w http.ResponseWriter, r *http.Request, sbc *metalv1alpha1.ServerBootConfiguration, a *metalv1alpha1.BootArtifact, contentType string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("ETag", strconv.Quote(a.Digest))
	if a.Size > 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(a.Size, 10))
	}
	if r.Method == http.MethodHead {
		return
	}
	rc, err := s.blobs.OpenBlob(r.Context(), sbc.Status.Image.Reference, a.Digest)
	if err != nil {
		w.Header().Del("Content-Length")
		w.Header().Del("ETag")
		w.Header().Del("Cache-Control")
		s.log.Error(err, "Opening an artifact", "ServerBootConfiguration", klog.KObj(sbc), "digest", a.Digest)
		http.Error(w, "the registry did not serve the artifact", http.StatusBadGateway)
		return
	}
	defer func() { _ = rc.Close() }()
	if _, err := io.Copy(w, rc); err != nil {
		if r.Context().Err() == nil {
			s.log.Error(err, "Streaming an artifact", "ServerBootConfiguration", klog.KObj(sbc), "digest", a.Digest)
		}
		panic(http.ErrAbortHandler)
	}
}

// serveIgnition answers GET /ignition/{token} with the ignition of the configuration the
// token was made for. Any invalid token gets the same 404 as an unknown one.
func (s *Server) serveIgnition(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	key, mac, err := s.tokens.parse(r.PathValue("token"))
	if err != nil {
		bootmetrics.IgnitionServed.WithLabelValues(bootmetrics.ResultDenied).Inc()
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	if err := s.client.Get(ctx, key, sbc); err != nil {
		if apierrors.IsNotFound(err) {
			bootmetrics.IgnitionServed.WithLabelValues(bootmetrics.ResultDenied).Inc()
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		bootmetrics.IgnitionServed.WithLabelValues(bootmetrics.ResultError).Inc()
		s.log.Error(err, "Getting a boot configuration for ignition", "ServerBootConfiguration", key)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if !s.tokens.verify(key, sbc.UID, mac) {
		bootmetrics.IgnitionServed.WithLabelValues(bootmetrics.ResultDenied).Inc()
		s.log.V(1).Info("Refused an ignition request with an invalid token", "ServerBootConfiguration", key)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	ref := sbc.Spec.IgnitionSecretRef
	if ref == nil {
		bootmetrics.IgnitionServed.WithLabelValues(bootmetrics.ResultNotFound).Inc()
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	secret := &corev1.Secret{}
	if err := s.reader.Get(ctx, types.NamespacedName{Namespace: sbc.Namespace, Name: ref.Name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			bootmetrics.IgnitionServed.WithLabelValues(bootmetrics.ResultInvalid).Inc()
			http.Error(w, "ignition config not available", http.StatusServiceUnavailable)
			return
		}
		bootmetrics.IgnitionServed.WithLabelValues(bootmetrics.ResultError).Inc()
		s.log.Error(err, "Getting an ignition Secret", "ServerBootConfiguration", key)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	rendered, err := ignition.Render(secret.Data)
	if err != nil {
		// The error says what is wrong without quoting the content.
		bootmetrics.IgnitionServed.WithLabelValues(bootmetrics.ResultInvalid).Inc()
		s.log.Info("Not serving an invalid ignition config", "ServerBootConfiguration", key, "reason", err.Error())
		http.Error(w, "ignition config not available", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.coreos.ignition+json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(rendered)
	bootmetrics.IgnitionServed.WithLabelValues(bootmetrics.ResultServed).Inc()
	s.log.V(1).Info("Served ignition", "ServerBootConfiguration", key)
}

// BootState is the body of POST /bootstate.
type BootState struct {
	// SystemUUID of the server that booted.
	SystemUUID string `json:"systemUUID"`
	// Booted is true when the server booted its configuration.
	Booted bool `json:"booted"`
}

// serveBootState answers POST /bootstate: it sets the BootStateReceived condition of the
// boot configuration of the server with that system UUID.
func (s *Server) serveBootState(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var state BootState
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&state); err != nil || strings.TrimSpace(state.SystemUUID) == "" {
		http.Error(w, `want JSON {"systemUUID": "...", "booted": true}`, http.StatusBadRequest)
		return
	}
	list := &metalv1alpha1.ServerList{}
	if err := s.client.List(ctx, list, client.MatchingFields{index.ServerSystemUUID: strings.ToLower(strings.TrimSpace(state.SystemUUID))}); err != nil {
		s.log.Error(err, "Listing servers for a boot state")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if len(list.Items) != 1 {
		http.Error(w, "unknown server", http.StatusNotFound)
		return
	}
	srv := &list.Items[0]
	ref := srv.Spec.BootConfigurationRef
	if ref == nil {
		http.Error(w, "the server has no boot configuration", http.StatusNotFound)
		return
	}
	cond := metav1.Condition{
		Type:    metalv1alpha1.BootConfigurationBootStateReceived,
		Status:  metav1.ConditionTrue,
		Reason:  metalv1alpha1.ReasonBootStateReceived,
		Message: fmt.Sprintf("Server %s reported that it booted", srv.Name),
	}
	if !state.Booted {
		cond.Status, cond.Reason = metav1.ConditionFalse, metalv1alpha1.ReasonBootFailed
		cond.Message = fmt.Sprintf("Server %s reported that it did not boot", srv.Name)
	}
	key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sbc := &metalv1alpha1.ServerBootConfiguration{}
		if err := s.reader.Get(ctx, key, sbc); err != nil {
			return err
		}
		if sbc.Spec.ServerRef.Name != srv.Name {
			return errNotFound
		}
		before := sbc.DeepCopy()
		cond.ObservedGeneration = sbc.Generation
		if !meta.SetStatusCondition(&sbc.Status.Conditions, cond) {
			return nil
		}
		return s.client.Status().Patch(ctx, sbc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	})
	switch {
	case err == nil:
		s.log.Info("Received a boot state", "Server", klog.KObj(srv), "ServerBootConfiguration", key, "booted", state.Booted)
		w.WriteHeader(http.StatusOK)
	case apierrors.IsNotFound(err), errors.Is(err, errNotFound):
		http.Error(w, "the server's boot configuration was not found", http.StatusNotFound)
	default:
		s.log.Error(err, "Recording a boot state", "ServerBootConfiguration", key)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}
