// Package boot is the network boot service: an HTTP server, run inside the manager, that
// hands a server the iPXE script (or, for UEFI HTTP boot, the EFI program) of its Ready
// ServerBootConfiguration, streams the kernel, initrd and root filesystem pinned in the
// configuration's status from the registry, serves the configuration's ignition behind an
// unguessable per-configuration token, and records the boot state a booted server reports.
//
// See docs/boot.md for the endpoints and the security model.
package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// BlobOpener opens a layer of an image repository by digest; *image.Resolver implements it.
type BlobOpener interface {
	OpenBlob(ctx context.Context, reference, digest string) (io.ReadCloser, error)
}

// Options configure the boot server.
type Options struct {
	// Addr is the address to listen on, e.g. ":8082".
	Addr string
	// ExternalURL is the base URL at which servers reach the boot server, e.g.
	// "http://192.0.2.10:8082"; the scripts it serves point there (required).
	ExternalURL string
	// CertFile and KeyFile, when both set, make the server speak HTTPS.
	CertFile, KeyFile string
	// CredentialTTL is how long a boot credential is honoured after it was issued, and how
	// long after the operator started a network boot the credential can be issued.
	CredentialTTL time.Duration
	// IgnitionFetchLimit is how often one boot may fetch its ignition.
	IgnitionFetchLimit int32
	// ArtifactStreams caps the artifact downloads served at once, ArtifactStreamsPerClient
	// those of one source address.
	ArtifactStreams, ArtifactStreamsPerClient int
	// RequestsPerSecond and RequestBurst bound the requests of one source address (429 above,
	// before any work); RequestsPerSecond <= 0 turns the limit off.
	RequestsPerSecond float64
	RequestBurst      int
	// Recorder, when set, emits the BootCredentialMisused Warning events.
	Recorder events.EventRecorder
	// KernelArgs are appended to the kernel command line of every iPXE script.
	KernelArgs []string
	// HTTPBootLoader is the path of an EFI program (typically an iPXE build that chains to
	// /ipxe?uuid=${uuid}&mac=${net0/mac}) served to UEFI HTTP boot at /httpboot. When empty,
	// /httpboot/{uuid} serves the server's pinned kernel (an EFI stub) instead.
	HTTPBootLoader string
	// AgentNamespace is where the operator keeps the boot configurations of its own agent
	// boots (discovery, wipe) and where agent reports are stored. Agent reports are accepted
	// only for boot configurations there; empty turns the agent endpoints off.
	AgentNamespace string
	// ReadHeaderTimeout bounds reading a request's headers (a slow client holds a connection
	// for at most this long before it sent them); the default is 10s.
	ReadHeaderTimeout time.Duration
	// ShutdownTimeout bounds a graceful stop; the default is 10s.
	ShutdownTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultCredentialTTL            = 15 * time.Minute
	DefaultIgnitionFetchLimit       = 1
	DefaultArtifactStreams          = 64
	DefaultArtifactStreamsPerClient = 4
	DefaultRequestsPerSecond        = 10
	DefaultRequestBurst             = 40
	// maxHeaderBytes bounds a request's headers.
	maxHeaderBytes = 16 << 10
	// writeTimeout bounds writing the answer of every handler but the artifact streams.
	writeTimeout = 30 * time.Second
)

// Server is the boot HTTP server. It is a manager.Runnable that runs on every replica (it
// needs no leader election).
type Server struct {
	client  client.Client
	reader  client.Reader
	blobs   BlobOpener
	opts    Options
	base    string
	streams *streamLimiter
	log     logr.Logger
	mux     *http.ServeMux
	// handler is mux behind the per-address request limit.
	handler http.Handler

	mu       sync.Mutex
	listener net.Addr
}

var (
	_ manager.Runnable               = (*Server)(nil)
	_ manager.LeaderElectionRunnable = (*Server)(nil)
)

// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=servers,verbs=get;list;watch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverbootconfigurations,verbs=get;list;watch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverbootconfigurations/status,verbs=patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverclaims,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// NewServer returns a boot server. c reads Servers and ServerBootConfigurations (the
// manager's cached client, with the indexes of index.Setup and
// index.SetupBoot) and writes the BootStateReceived condition; apiReader reads
// ignition Secrets and re-reads a configuration before writing its status (the manager's
// API reader); blobs streams the pinned layers. Add it to the manager with mgr.Add.
func NewServer(c client.Client, apiReader client.Reader, blobs BlobOpener, o Options) (*Server, error) {
	if c == nil || apiReader == nil || blobs == nil {
		return nil, errors.New("boot server: a client, an API reader and a blob opener are required")
	}
	u, err := url.Parse(o.ExternalURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("boot server: the external URL %q must be an absolute http(s) URL", o.ExternalURL)
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("boot server: set both the TLS certificate and key files, or neither")
	}
	if o.HTTPBootLoader != "" {
		if _, err := os.Stat(o.HTTPBootLoader); err != nil {
			return nil, fmt.Errorf("boot server: HTTP boot loader: %w", err)
		}
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.CredentialTTL <= 0 {
		o.CredentialTTL = DefaultCredentialTTL
	}
	if o.IgnitionFetchLimit <= 0 {
		o.IgnitionFetchLimit = DefaultIgnitionFetchLimit
	}
	if o.ArtifactStreams <= 0 {
		o.ArtifactStreams = DefaultArtifactStreams
	}
	if o.ArtifactStreamsPerClient <= 0 {
		o.ArtifactStreamsPerClient = DefaultArtifactStreamsPerClient
	}
	s := &Server{
		client:  c,
		reader:  apiReader,
		blobs:   blobs,
		opts:    o,
		base:    strings.TrimSuffix(o.ExternalURL, "/"),
		streams: newStreamLimiter(o.ArtifactStreams, o.ArtifactStreamsPerClient),
		log:     ctrl.Log.WithName("boot-server"),
		mux:     http.NewServeMux(),
	}
	s.routes()
	s.handler = newClientLimits(o.RequestsPerSecond, o.RequestBurst).wrap(s.mux)
	return s, nil
}

// Handler is the server's HTTP handler (for tests, or to mount it elsewhere): the routes
// behind the per-address request limit.
func (s *Server) Handler() http.Handler { return s.handler }

// NeedLeaderElection is false: every replica serves boots.
func (s *Server) NeedLeaderElection() bool { return false }

// ListenAddr is the address the server listens on once Start has bound it, else nil.
func (s *Server) ListenAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listener
}

// Start serves until ctx is done, then shuts down gracefully.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("boot server: listening on %s: %w", s.opts.Addr, err)
	}
	s.mu.Lock()
	s.listener = ln.Addr()
	s.mu.Unlock()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.log.Info("Starting the boot server", "address", ln.Addr().String(), "externalURL", s.base)
	done := make(chan error, 1)
	go func() {
		if s.opts.CertFile != "" {
			done <- srv.ServeTLS(ln, s.opts.CertFile, s.opts.KeyFile)
		} else {
			done <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-done:
		return fmt.Errorf("boot server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("boot server: %w", err)
	}
	return nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", bounded(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }))
	s.mux.HandleFunc("GET /ipxe", bounded(s.serveIPXE))
	s.mux.HandleFunc("GET /ipxe/{uuid}", bounded(s.serveIPXE))
	s.mux.HandleFunc("GET /httpboot", s.serveHTTPBoot)
	s.mux.HandleFunc("GET /httpboot/{uuid}", s.serveHTTPBoot)
	s.mux.HandleFunc("GET /artifacts/{namespace}/{name}/{digest}", s.serveArtifact)
	s.mux.HandleFunc("GET /ignition/{credential}", bounded(s.serveIgnition))
	s.mux.HandleFunc("POST /bootstate", bounded(s.serveBootState))
	s.mux.HandleFunc("POST "+report.DiscoveryPath, bounded(s.serveAgentReport(metalv1alpha1.AgentModeDiscover)))
	s.mux.HandleFunc("POST "+report.WipePath, bounded(s.serveAgentReport(metalv1alpha1.AgentModeWipe)))
	s.mux.HandleFunc("GET /v1/{$}", bounded(s.serveMetadata))
	s.mux.HandleFunc("GET /v1/{field}", bounded(s.serveMetadata))
	s.mux.HandleFunc("GET /v1/user-data/{key}", bounded(s.serveMetadata))
}

// bounded gives a non-streaming handler a write deadline, so that a client that does not
// read cannot hold the connection (the artifact streams have none: they may be large).
func bounded(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
		h(w, r)
	}
}

// streamLimiter caps concurrent artifact streams, in all and per source address.
type streamLimiter struct {
	mu              sync.Mutex
	total, perIP    int
	running         int
	runningByClient map[string]int
}

func newStreamLimiter(total, perIP int) *streamLimiter {
	return &streamLimiter{total: total, perIP: perIP, runningByClient: map[string]int{}}
}

// acquire takes a stream slot for ip, false when a cap is reached; release gives it back.
func (l *streamLimiter) acquire(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running >= l.total || l.runningByClient[ip] >= l.perIP {
		return false
	}
	l.running++
	l.runningByClient[ip]++
	return true
}

func (l *streamLimiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running--
	if l.runningByClient[ip]--; l.runningByClient[ip] <= 0 {
		delete(l.runningByClient, ip)
	}
}
