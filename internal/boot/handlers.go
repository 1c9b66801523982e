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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
// the request itself (and counting it) when there is none: with a local-boot script for an
// iPXE request (localBoot), else 404.
func (s *Server) lookupForBoot(w http.ResponseWriter, r *http.Request, uuid, mac string, localBoot bool) (*metalv1alpha1.Server, *metalv1alpha1.ServerBootConfiguration, bool) {
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
	// An unknown server and one without a Ready configuration get the same answer as one
	// whose boot window is closed (a local boot for iPXE, 404 for HTTP boot), so that the boot
	// network cannot tell which UUIDs and MACs exist or are being provisioned; the metrics
	// tell them apart for the operator.
	switch {
	case errors.Is(err, errNotFound), errors.Is(err, errNotReady):
		result := bootmetrics.ResultNotFound
		if errors.Is(err, errNotReady) {
			result = bootmetrics.ResultNotReady
		}
		bootmetrics.BootScriptsServed.WithLabelValues(result).Inc()
		if localBoot {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = io.WriteString(w, localBootScript)
			return nil, nil, false
		}
		http.Error(w, "not found", http.StatusNotFound)
	default:
		bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultError).Inc()
		s.log.Error(err, "Looking up a boot request")
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
	return nil, nil, false
}

// serveIPXE answers GET /ipxe/{uuid} and GET /ipxe?uuid=...&mac=... with the iPXE script of
// the server's Ready boot configuration, carrying a boot credential issued to the requester
// then and there, if a boot is expected and its credential was not issued yet; with a
// script that boots from local disk otherwise.
func (s *Server) serveIPXE(w http.ResponseWriter, r *http.Request) {
	uuid := r.PathValue("uuid")
	if uuid == "" {
		uuid = r.URL.Query().Get("uuid")
	}
	srv, sbc, ok := s.lookupForBoot(w, r, uuid, r.URL.Query().Get("mac"), true)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The cached copy turns most requests outside a window away without an API request; a
	// window opened a moment ago and not yet in the cache costs that boot one local boot
	// attempt at worst, and the machine asks seconds after its power-on.
	now, ip := time.Now(), clientIP(r)
	c := sbc.Status.BootCredential
	if issuedRecently(c, now) && c.PinnedIP != ip {
		// The boot's credential is out to another address: a second requester is either the
		// real server after someone else asked first, or someone after the server. Both are
		// worth a Warning, once per address (reportMisuse decides on the cached copy).
		s.reportMisuse(r.Context(), client.ObjectKeyFromObject(sbc), metalv1alpha1.ReasonAnotherRequester, ip)
		_, _ = io.WriteString(w, localBootScript)
		bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultLocalBoot).Inc()
		return
	}
	retry := credentialActive(c, now) && c.PinnedIP == ip && c.IgnitionFetches == 0
	if !windowOpen(c, now, s.opts.CredentialTTL) && !retry {
		_, _ = io.WriteString(w, localBootScript)
		bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultLocalBoot).Inc()
		return
	}
	credential, err := s.issueCredential(r.Context(), client.ObjectKeyFromObject(sbc), clientIP(r))
	switch {
	case errors.Is(err, errNoWindow):
		_, _ = io.WriteString(w, localBootScript)
		bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultLocalBoot).Inc()
		return
	case err != nil:
		bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultError).Inc()
		s.log.Error(err, "Issuing a boot credential", "ServerBootConfiguration", klog.KObj(sbc))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, s.ipxeScript(sbc, credential))
	bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultServed).Inc()
	s.log.Info("Issued a boot credential", "Server", klog.KObj(srv), "ServerBootConfiguration", klog.KObj(sbc), "source", clientIP(r))
}

// localBootScript hands the boot back to the firmware, which goes on to the next boot
// device (the local disk). It carries no URL and no credential.
const localBootScript = "#!ipxe\necho No network boot expected: booting from local disk\nexit\n"

// artifactURL is where the boot server streams a pinned layer of a configuration.
func (s *Server) artifactURL(sbc *metalv1alpha1.ServerBootConfiguration, a *metalv1alpha1.BootArtifact) string {
	return fmt.Sprintf("%s/artifacts/%s/%s/%s", s.base, sbc.Namespace, sbc.Name, a.Digest)
}

// ipxeScript renders the iPXE script that boots a Ready configuration with a credential:
// in the ignition URL, and as metal.boot_credential for the boot state report.
func (s *Server) ipxeScript(sbc *metalv1alpha1.ServerBootConfiguration, credential string) string {
	img := sbc.Status.Image
	args := []string{"initrd=initrd"}
	if sbc.Spec.IgnitionSecretRef != nil {
		args = append(args, "ignition.firstboot", "ignition.platform.id=metal", "ignition.config.url="+s.base+"/ignition/"+credential)
	}
	if img.RootFS != nil {
		args = append(args, "coreos.live.rootfs_url="+s.artifactURL(sbc, img.RootFS))
	}
	args = append(args, "metal.boot_credential="+credential)
	args = append(args, s.agentKernelArgs(sbc)...)
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
	_, sbc, ok := s.lookupForBoot(w, r, uuid, r.URL.Query().Get("mac"), false)
	if !ok {
		return
	}
	// The firmware cannot carry a credential, but the request pins the boot to its address
	// like an iPXE request does, so that nobody else gets this boot's artifacts. The pinned
	// address may ask again (firmware often sends HEAD before GET).
	if err := s.pinHTTPBoot(r, client.ObjectKeyFromObject(sbc)); err != nil {
		bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultLocalBoot).Inc()
		http.Error(w, "no network boot expected", refusalCode(err))
		return
	}
	bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultServed).Inc()
	s.streamArtifact(w, r, sbc, sbc.Status.Image.Kernel, "application/efi")
}

// serveArtifact streams GET /artifacts/{namespace}/{name}/{digest} to the address the current
// boot of the configuration is pinned to (read live: the pin may be milliseconds old): a layer pinned in the
// status of a Ready configuration, and nothing else.
func (s *Server) serveArtifact(w http.ResponseWriter, r *http.Request) {
	key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	digest := r.PathValue("digest")
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	if err := s.reader.Get(r.Context(), key, sbc); err != nil {
		if apierrors.IsNotFound(err) {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		s.log.Error(err, "Getting a boot configuration for an artifact", "ServerBootConfiguration", key)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	// Only to the address a current boot is pinned to.
	if c := sbc.Status.BootCredential; !isReady(sbc) || !credentialActive(c, time.Now()) || c.PinnedIP != clientIP(r) {
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
	ip := clientIP(r)
	if !s.streams.acquire(ip) {
		http.Error(w, "too many downloads at once", http.StatusTooManyRequests)
		return
	}
	defer s.streams.release(ip)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "private, no-store")
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

// serveIgnition answers GET /ignition/{credential} with the ignition of the boot the
// credential was issued for, to the pinned address, at most IgnitionFetchLimit times. An
// unknown, expired or revoked credential gets a 404, one from another address a 403, one
// past the limit a 410 (the last two are reported as misuse).
func (s *Server) serveIgnition(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sbc, err := s.authorize(r, r.PathValue("credential"))
	if err != nil {
		s.refuse(w, err, bootmetrics.IgnitionServed)
		return
	}
	key := client.ObjectKeyFromObject(sbc)
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
	// Counted only once there is something to serve: a fetch that found no config does not
	// use the boot's only fetch up.
	if err := s.consumeIgnitionFetch(r, key, sbc.Status.BootCredential.Hash); err != nil {
		s.refuse(w, err, bootmetrics.IgnitionServed)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.coreos.ignition+json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(rendered)
	bootmetrics.IgnitionServed.WithLabelValues(bootmetrics.ResultServed).Inc()
	s.log.Info("Served ignition", "ServerBootConfiguration", key, "source", clientIP(r))
}

// refuse answers a request whose credential was refused (see refusalCode), counting it in
// counter.
func (s *Server) refuse(w http.ResponseWriter, err error, counter *prometheus.CounterVec) {
	code := refusalCode(err)
	switch code {
	case http.StatusInternalServerError:
		counter.WithLabelValues(bootmetrics.ResultError).Inc()
		s.log.Error(err, "Checking a boot credential")
		http.Error(w, "internal error", code)
	case http.StatusNotFound:
		counter.WithLabelValues(bootmetrics.ResultDenied).Inc()
		http.Error(w, "not found", code)
	default:
		counter.WithLabelValues(bootmetrics.ResultRefused).Inc()
		http.Error(w, http.StatusText(code), code)
	}
}

// BootState is the body of POST /bootstate; the request carries the boot credential in an
// "Authorization: Bearer" header.
type BootState struct {
	// SystemUUID of the server that booted (optional; the credential says which boot it is).
	SystemUUID string `json:"systemUUID,omitempty"`
	// Booted is true when the server booted its configuration.
	Booted bool `json:"booted"`
}

// serveBootState answers POST /bootstate: with a valid credential from its pinned address,
// it sets the BootStateReceived condition of the credential's configuration and revokes
// the credential (the boot is done). 401 without a credential, as refusalCode otherwise.
func (s *Server) serveBootState(w http.ResponseWriter, r *http.Request) {
	credential := bearerCredential(r)
	if credential == "" {
		http.Error(w, "a boot credential is required", http.StatusUnauthorized)
		return
	}
	var state BootState
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&state); err != nil {
		http.Error(w, `want JSON {"booted": true}`, http.StatusBadRequest)
		return
	}
	sbc, err := s.authorize(r, credential)
	if err != nil {
		http.Error(w, http.StatusText(refusalCode(err)), refusalCode(err))
		return
	}
	server := sbc.Spec.ServerRef.Name
	cond := metav1.Condition{
		Type:    metalv1alpha1.BootConfigurationBootStateReceived,
		Status:  metav1.ConditionTrue,
		Reason:  metalv1alpha1.ReasonBootStateReceived,
		Message: fmt.Sprintf("Server %s reported that it booted", server),
	}
	if !state.Booted {
		cond.Status, cond.Reason = metav1.ConditionFalse, metalv1alpha1.ReasonBootFailed
		cond.Message = fmt.Sprintf("Server %s reported that it did not boot", server)
	}
	key := client.ObjectKeyFromObject(sbc)
	if err := s.revokeCredential(r.Context(), key, sbc.Status.BootCredential.Hash, cond); err != nil {
		if code := refusalCode(err); code != http.StatusInternalServerError {
			http.Error(w, http.StatusText(code), code)
			return
		}
		s.log.Error(err, "Recording a boot state", "ServerBootConfiguration", key)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.log.Info("Received a boot state", "ServerBootConfiguration", key, "booted", state.Booted)
	w.WriteHeader(http.StatusOK)
}
