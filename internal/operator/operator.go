// Package operator assembles the manager: field indexes, controllers, metrics and health
// checks, from one Options value. cmd/metal-operator, the embedded development environment
// and the fleet benchmark all build their manager here.
package operator

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/bmc/redfish"
	"github.com/metalfleet/metal-operator/internal/boot"
	"github.com/metalfleet/metal-operator/internal/boot/image"
	"github.com/metalfleet/metal-operator/internal/controller"
	"github.com/metalfleet/metal-operator/internal/events"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/metrics"
	"github.com/metalfleet/metal-operator/internal/scheme"
)

// Options configure the manager and every controller.
type Options struct {
	MetricsAddr string
	// MetricsPerServer adds the per-server series (servers x states; docs/metrics.md).
	MetricsPerServer   bool
	ProbeAddr          string
	PprofAddr          string
	LeaderElect        bool
	LeaderElectionID   string
	LeaderElectionNS   string
	ClientQPS          float64
	ClientBurst        int
	GracefulShutdown   time.Duration
	BMCInsecureSkipTLS bool
	BMCCAFile          string
	BMCSessionAuth     bool
	// BMCMaxResponseBytes and BMCMaxCollectionMembers bound what one BMC answer may cost.
	BMCMaxResponseBytes     int64
	BMCMaxCollectionMembers int
	// ReconcileTimeout bounds every reconcile of every controller: a peer that answers
	// slowly holds one worker for at most this long.
	ReconcileTimeout time.Duration
	// EventBindAddress is the listen address of the Redfish event receiver
	// (internal/events); empty turns it off. BMCs reach it at BMC.Events.URL.
	EventBindAddress string

	Claim     controller.ServerClaimOptions
	ClaimSet  controller.ServerClaimSetOptions
	Quota     controller.ServerQuotaOptions
	Server    controller.ServerOptions
	BMC       controller.BMCOptions
	Readiness controller.ServerReadinessRuleOptions
	BMCUser   controller.BMCUserOptions
	Boot      BootOptions
}

// BootOptions configure the boot service: the ServerBootConfiguration controller and the
// HTTP boot server.
type BootOptions struct {
	// Enabled runs the boot service in this manager. A site with its own boot provider
	// (one that sets ServerBootConfigurations Ready) turns it off.
	Enabled bool
	// Addr is the boot server's listen address; ExternalURL the base URL servers reach it at.
	Addr, ExternalURL string
	// CertFile and KeyFile make the boot server speak HTTPS.
	CertFile, KeyFile string
	// TokenKeyFile is deprecated and ignored: ignition URLs carry a per-boot credential
	// stored as a hash in the cluster (docs/security.md). Kept so that existing deployments
	// that pass --boot-token-key-file still start.
	TokenKeyFile string
	// CredentialTTL, IgnitionFetchLimit, ArtifactStreams and ArtifactStreamsPerClient: see
	// boot.Options.
	CredentialTTL                             time.Duration
	IgnitionFetchLimit                        int
	ArtifactStreams, ArtifactStreamsPerClient int
	// RequestsPerSecond and RequestBurst bound one source address's requests: see boot.Options.
	RequestsPerSecond float64
	RequestBurst      int
	// DefaultRegistry resolves image references without a registry host (my-osimage:latest).
	DefaultRegistry string
	// InsecureRegistries are reached over plain HTTP.
	InsecureRegistries []string
	// AllowedRegistries are the host patterns images may come from (empty: any); the
	// default registry is always allowed (image.Options.AllowedRegistries).
	AllowedRegistries []string
	// HTTPBootLoader is an EFI program served to UEFI HTTP boot (see docs/boot.md).
	HTTPBootLoader string
	// Controller tunes the ServerBootConfiguration controller.
	Controller controller.ServerBootConfigurationOptions
}

// DefaultOptions are the defaults of the flags.
func DefaultOptions() Options {
	return Options{
		MetricsAddr:             ":8080",
		ProbeAddr:               ":8081",
		LeaderElectionID:        "metal-operator.metal.ironcore.dev",
		ClientQPS:               1000,
		ClientBurst:             2000,
		GracefulShutdown:        30 * time.Second,
		ReconcileTimeout:        2 * time.Minute,
		BMCMaxResponseBytes:     redfish.DefaultMaxResponseBytes,
		BMCMaxCollectionMembers: redfish.DefaultMaxCollectionMembers,
		Claim:                   controller.DefaultServerClaimOptions(),
		ClaimSet:                controller.DefaultServerClaimSetOptions(),
		Quota:                   controller.DefaultServerQuotaOptions(),
		Server:                  controller.DefaultServerOptions(),
		BMC:                     controller.DefaultBMCOptions(),
		Readiness:               controller.DefaultServerReadinessRuleOptions(),
		BMCUser:                 controller.DefaultBMCUserOptions(),
		Boot: BootOptions{Enabled: true, Addr: ":8082", Controller: controller.DefaultServerBootConfigurationOptions(),
			CredentialTTL: boot.DefaultCredentialTTL, IgnitionFetchLimit: boot.DefaultIgnitionFetchLimit,
			ArtifactStreams: boot.DefaultArtifactStreams, ArtifactStreamsPerClient: boot.DefaultArtifactStreamsPerClient,
			RequestsPerSecond: boot.DefaultRequestsPerSecond, RequestBurst: boot.DefaultRequestBurst},
	}
}

// BindFlags registers every option as a flag.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "Address of the Prometheus metrics endpoint; 0 disables it.")
	fs.BoolVar(&o.MetricsPerServer, "metrics-per-server", o.MetricsPerServer, "Also export one series per server: metal_server_state_by_server, metal_server_power_state_by_server and metal_server_condition_status (servers x states series).")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "Address of the /healthz and /readyz endpoints; 0 disables them.")
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", o.PprofAddr, "Address of the Go profiling endpoints (/debug/pprof); empty or 0 disables them.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Elect a leader so that only one manager is active (on in the cluster manifests).")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID, "Name of the leader election lease.")
	fs.StringVar(&o.LeaderElectionNS, "leader-election-namespace", o.LeaderElectionNS, "Namespace of the leader election lease (default: the manager's namespace).")
	fs.Float64Var(&o.ClientQPS, "kube-api-qps", o.ClientQPS, "Sustained queries per second to the API server, per resource type; sized for claim bursts. Negative turns client-side rate limiting off (the API server's priority and fairness still applies).")
	fs.IntVar(&o.ClientBurst, "kube-api-burst", o.ClientBurst, "Burst of queries to the API server, per resource type.")
	fs.DurationVar(&o.GracefulShutdown, "graceful-shutdown-timeout", o.GracefulShutdown, "How long the manager waits for controllers to stop.")
	fs.BoolVar(&o.BMCInsecureSkipTLS, "bmc-insecure-skip-verify", o.BMCInsecureSkipTLS, "Do not verify the TLS certificates of BMCs.")
	fs.BoolVar(&o.BMCSessionAuth, "bmc-session-auth", o.BMCSessionAuth, "Authenticate to BMCs with a Redfish session (X-Auth-Token, one per reconcile) instead of HTTP basic auth, for BMCs that throttle basic auth.")
	fs.StringVar(&o.BMCCAFile, "bmc-ca-file", o.BMCCAFile, "PEM bundle of the CA(s) that sign the BMCs' TLS certificates (default: the system's trust store).")
	fs.Int64Var(&o.BMCMaxResponseBytes, "bmc-max-response-bytes", o.BMCMaxResponseBytes, "Largest Redfish response body read from a BMC; a larger one fails the request.")
	fs.IntVar(&o.BMCMaxCollectionMembers, "bmc-max-collection-members", o.BMCMaxCollectionMembers, "Most members of one Redfish collection (all pages together) read from a BMC; a larger one fails the request.")
	fs.StringVar(&o.EventBindAddress, "event-bind-address", o.EventBindAddress, "Listen address of the Redfish event receiver that BMCs post alerts and metric reports to (see --event-url), e.g. :10001; empty turns it off.")
	fs.DurationVar(&o.ReconcileTimeout, "reconcile-timeout", o.ReconcileTimeout, "Longest time one reconcile of any controller may take; its context is cancelled then.")
	o.Claim.BindFlags(fs)
	o.ClaimSet.BindFlags(fs)
	o.Quota.BindFlags(fs)
	o.Server.BindFlags(fs)
	o.BMC.BindFlags(fs)
	o.Readiness.BindFlags(fs)
	o.BMCUser.BindFlags(fs)
	fs.BoolVar(&o.Boot.Enabled, "enable-boot-service", o.Boot.Enabled, "Run the boot service (ServerBootConfiguration controller and HTTP boot server).")
	fs.StringVar(&o.Boot.Addr, "boot-server-bind-address", o.Boot.Addr, "Listen address of the HTTP boot server.")
	fs.StringVar(&o.Boot.ExternalURL, "boot-server-external-url", o.Boot.ExternalURL, "Base URL at which servers reach the boot server, e.g. http://192.0.2.10:8082 (required with the boot service).")
	fs.StringVar(&o.Boot.CertFile, "boot-server-tls-cert", o.Boot.CertFile, "TLS certificate of the boot server (with --boot-server-tls-key).")
	fs.StringVar(&o.Boot.KeyFile, "boot-server-tls-key", o.Boot.KeyFile, "TLS key of the boot server.")
	fs.StringVar(&o.Boot.TokenKeyFile, "boot-token-key-file", o.Boot.TokenKeyFile, "Deprecated and ignored: ignition URLs now carry a per-boot credential.")
	fs.DurationVar(&o.Boot.CredentialTTL, "boot-credential-ttl", o.Boot.CredentialTTL, "How long a boot credential is honoured after it was issued (and can be issued after a network boot started).")
	fs.IntVar(&o.Boot.IgnitionFetchLimit, "ignition-fetch-limit", o.Boot.IgnitionFetchLimit, "How often one boot may fetch its ignition; later fetches answer 410 Gone.")
	fs.IntVar(&o.Boot.ArtifactStreams, "boot-artifact-streams", o.Boot.ArtifactStreams, "Artifact downloads the boot server serves at once.")
	fs.Float64Var(&o.Boot.RequestsPerSecond, "boot-requests-per-second", o.Boot.RequestsPerSecond, "Requests per second the boot server accepts from one source address on average (429 above, before any work); 0 turns the limit off.")
	fs.IntVar(&o.Boot.RequestBurst, "boot-request-burst", o.Boot.RequestBurst, "Requests the boot server accepts from one source address at once.")
	fs.IntVar(&o.Boot.ArtifactStreamsPerClient, "boot-artifact-streams-per-client", o.Boot.ArtifactStreamsPerClient, "Artifact downloads the boot server serves at once to one source address.")
	fs.StringVar(&o.Boot.DefaultRegistry, "default-registry", o.Boot.DefaultRegistry, "Registry of image references without a registry host, e.g. registry.example:5000.")
	fs.Func("insecure-registry", "A registry reached over plain HTTP (repeatable).", func(v string) error {
		o.Boot.InsecureRegistries = append(o.Boot.InsecureRegistries, v)
		return nil
	})
	fs.Func("allowed-registries", "Comma-separated host patterns (e.g. registry.example,*.example.com,10.0.0.5:*) of the registries images may come from; empty allows any. The default registry is always allowed; loopback, link-local and cloud metadata addresses are refused unless listed (repeatable).", func(v string) error {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				o.Boot.AllowedRegistries = append(o.Boot.AllowedRegistries, p)
			}
		}
		return nil
	})
	fs.StringVar(&o.Boot.HTTPBootLoader, "boot-http-loader", o.Boot.HTTPBootLoader, "EFI program served to UEFI HTTP boot.")
	o.Boot.Controller.BindFlags(fs)
}

// New builds a manager with every controller registered.
func New(cfg *rest.Config, o Options) (manager.Manager, error) {
	if o.ClientQPS == 0 || (o.ClientQPS > 0 && o.ClientBurst < 1) {
		return nil, fmt.Errorf("--kube-api-qps must be positive with a positive --kube-api-burst, or negative to turn client-side rate limiting off (got %v and %d)", o.ClientQPS, o.ClientBurst)
	}
	if o.ReconcileTimeout <= 0 || o.BMCMaxResponseBytes <= 0 || o.BMCMaxCollectionMembers <= 0 {
		return nil, fmt.Errorf("--reconcile-timeout, --bmc-max-response-bytes and --bmc-max-collection-members must be positive (got %s, %d and %d)",
			o.ReconcileTimeout, o.BMCMaxResponseBytes, o.BMCMaxCollectionMembers)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = float32(o.ClientQPS)
	cfg.Burst = o.ClientBurst
	grace := o.GracefulShutdown
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.New(),
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.ProbeAddr,
		PprofBindAddress:        o.PprofAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        o.LeaderElectionID,
		LeaderElectionNamespace: o.LeaderElectionNS,
		GracefulShutdownTimeout: &grace,
		// Every controller inherits the timeout: a reconcile's context ends after it.
		Controller: config.Controller{ReconciliationTimeout: o.ReconcileTimeout},
		// Nothing here reads managedFields: dropping them from the cache halves the memory
		// per cached object and the cost of every deep copy.
		Cache: cacheOptions(o),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if err := index.Setup(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	// Claims and sets pick from one pool of free servers, so that a set's plan is held there
	// against the claims of this process.
	pool := binding.NewPool()
	if err := (&controller.ServerClaimReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder("serverclaim-controller"),
		Options:   o.Claim,
		Pool:      pool,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the ServerClaim controller: %w", err)
	}
	if err := (&controller.ServerClaimSetReconciler{
		Client:   mgr.GetClient(),
		Scheme:   mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("serverclaimset-controller"),
		Options:  o.ClaimSet,
		Pool:     pool,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the ServerClaimSet controller: %w", err)
	}
	if err := (&controller.ServerQuotaReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("serverquota-controller"),
		Options:   o.Quota,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the ServerQuota controller: %w", err)
	}
	connector := &access.RedfishConnector{
		Reader: mgr.GetClient(), Timeout: o.Server.BMCRequestTimeout, InsecureSkipVerify: o.BMCInsecureSkipTLS,
		UseSessions: o.BMCSessionAuth, MaxResponseBytes: o.BMCMaxResponseBytes, MaxCollectionMembers: o.BMCMaxCollectionMembers,
	}
	if o.BMCCAFile != "" {
		if connector.CACertPEM, err = os.ReadFile(o.BMCCAFile); err != nil {
			return nil, fmt.Errorf("reading --bmc-ca-file: %w", err)
		}
	}
	if err := (&controller.ServerReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Connector: connector,
		Recorder:  mgr.GetEventRecorder("server-controller"),
		Options:   o.Server,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the Server controller: %w", err)
	}
	if err := (&controller.BMCReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Connector: connector,
		Recorder:  mgr.GetEventRecorder("bmc-controller"),
		Options:   o.BMC,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the BMC controller: %w", err)
	}
	if err := (&controller.ServerReadinessRuleReconciler{
		Client:   mgr.GetClient(),
		Recorder: mgr.GetEventRecorder("serverreadinessrule-controller"),
		Options:  o.Readiness,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the ServerReadinessRule controllers: %w", err)
	}
	if err := (&controller.BMCUserReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(), Connector: connector,
		Recorder: mgr.GetEventRecorder("bmcuser-controller"), Options: o.BMCUser,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the BMCUser controller: %w", err)
	}
	if o.Boot.Enabled {
		if err := setupBoot(mgr, o.Boot, o.Server); err != nil {
			return nil, err
		}
	}
	if o.EventBindAddress != "" {
		receiver, err := events.NewReceiver(mgr.GetClient(), mgr.GetEventRecorder("event-receiver"), events.Options{Addr: o.EventBindAddress})
		if err != nil {
			return nil, fmt.Errorf("setting up the event receiver: %w", err)
		}
		if err := mgr.Add(receiver); err != nil {
			return nil, err
		}
	}
	metrics.RegisterClaimMetrics(mgr.GetClient())
	if o.MetricsPerServer {
		metrics.RegisterPerServerMetrics(mgr.GetCache())
	} else {
		metrics.RegisterPerServerMetrics(nil)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	// Idle BMC connections are pooled per TLS configuration for the life of the process;
	// close them when the manager stops.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		redfish.CloseIdleConnections()
		return nil
	})); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}

// agentNamespace is where the boot server takes agent reports: only where this manager
// boots the agent.
func agentNamespace(o controller.ServerOptions) string {
	if o.AgentImage == "" {
		return ""
	}
	return o.AgentNamespace
}

// cacheOptions: no managedFields in the cache, and ConfigMaps only where agent reports are
// (the server controller watches those; nothing else here reads ConfigMaps).
func cacheOptions(o Options) cache.Options {
	c := cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	if ns := o.Server.AgentNamespace; ns != "" {
		sel := labels.NewSelector()
		if req, err := labels.NewRequirement(metalv1alpha1.AgentReportServerLabel, selection.Exists, nil); err == nil {
			sel = sel.Add(*req)
		}
		c.ByObject = map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {Namespaces: map[string]cache.Config{ns: {}}, Label: sel},
		}
	}
	return c
}

func setupBoot(mgr manager.Manager, o BootOptions, server controller.ServerOptions) error {
	if o.ExternalURL == "" {
		return fmt.Errorf("the boot service needs --boot-server-external-url (or --enable-boot-service=false)")
	}
	if o.IgnitionFetchLimit < 1 || o.IgnitionFetchLimit > 100 || o.CredentialTTL <= 0 {
		return fmt.Errorf("--ignition-fetch-limit must be 1 to 100 and --boot-credential-ttl positive")
	}
	if err := index.SetupBoot(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	resolver, err := image.NewResolver(image.Options{
		DefaultRegistry: o.DefaultRegistry, InsecureRegistries: o.InsecureRegistries, AllowedRegistries: o.AllowedRegistries,
	})
	if err != nil {
		return err
	}
	if err := (&controller.ServerBootConfigurationReconciler{
		Client:   mgr.GetClient(),
		Resolver: resolver,
		Recorder: mgr.GetEventRecorder("serverbootconfiguration-controller"),
		Options:  o.Controller,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the ServerBootConfiguration controller: %w", err)
	}
	srv, err := boot.NewServer(mgr.GetClient(), mgr.GetAPIReader(), resolver, boot.Options{
		Addr: o.Addr, ExternalURL: o.ExternalURL, CertFile: o.CertFile, KeyFile: o.KeyFile,
		HTTPBootLoader: o.HTTPBootLoader, CredentialTTL: o.CredentialTTL, IgnitionFetchLimit: int32(o.IgnitionFetchLimit),
		ArtifactStreams: o.ArtifactStreams, ArtifactStreamsPerClient: o.ArtifactStreamsPerClient,
		RequestsPerSecond: o.RequestsPerSecond, RequestBurst: o.RequestBurst,
		Recorder:       mgr.GetEventRecorder("boot-server"),
		AgentNamespace: agentNamespace(server),
	})
	if err != nil {
		return fmt.Errorf("setting up the boot server: %w", err)
	}
	return mgr.Add(srv)
}
