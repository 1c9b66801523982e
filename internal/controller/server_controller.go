package controller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/cachelag"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/inventory"
	"github.com/metalfleet/metal-operator/internal/metrics"
)

// ServerOptions tune the Server controller. Start from DefaultServerOptions; every duration
// and count must be positive.
type ServerOptions struct {
	// ResyncInterval is how often a settled server is looked at again: BMC-side changes
	// (power changed out of band) produce no watch events and are seen at this pace.
	ResyncInterval time.Duration
	// PowerOffTimeout is how long a graceful power-off may take before it is forced, and how
	// long a power-on may take before it is sent again. It is measured from the
	// LastTransitionTime of the condition that records the request (one-second resolution,
	// rounded up).
	PowerOffTimeout time.Duration
	// TransitionPollInterval is how often a server with a power transition or a state change
	// in flight is looked at again.
	TransitionPollInterval time.Duration
	// MaxConcurrentReconciles is the number of servers reconciled in parallel.
	MaxConcurrentReconciles int
	// BMCRequestTimeout bounds one request to a BMC; pass it to the access.Connector
	// (access.RedfishConnector.Timeout).
	BMCRequestTimeout time.Duration

	// DiscoveryBoot makes discovery boot the in-band agent after reading the BMC's
	// inventory (docs/agent.md); off, discovery is Redfish only.
	DiscoveryBoot bool
	// AgentImage is the OS image (an OCI reference, like a claim's spec.image) that boots
	// the in-band agent, for discovery and for wipes. Empty: no agent boots.
	AgentImage string
	// AgentNamespace is where agent boots keep their objects (the manager's namespace).
	AgentNamespace string
	// AgentBootTimeout bounds one agent boot attempt, from its start to the report.
	AgentBootTimeout time.Duration
	// AgentRetryDelay is the pause after a failed agent boot attempt.
	AgentRetryDelay time.Duration
	// AgentReportGrace is how long after its credential was issued an agent's report waits
	// before it is trusted: long enough for the real machine to ask for its boot, so that a
	// requester that won the credential before it is noticed (BootCredentialMisused).
	AgentReportGrace time.Duration
	// DefaultWipePolicy is the wipe policy of servers whose spec.wipePolicy is empty.
	DefaultWipePolicy metalv1alpha1.WipePolicy
	// InventoryLabels put facts of discovery reports on Servers as labels.
	InventoryLabels []inventory.Rule
	// MaxConcurrentPowerOns is how many servers of one power domain may be in a power-on
	// transition at once; 0 is unlimited. See server_powerqueue.go.
	MaxConcurrentPowerOns int
	// PowerOnInterval is the least time between two power-on starts in one power domain; 0
	// is none.
	PowerOnInterval time.Duration
	// PowerDomainLabel is the server label whose value is its power domain.
	PowerDomainLabel string
}

// DefaultServerOptions are the defaults of the manager's flags.
func DefaultServerOptions() ServerOptions {
	return ServerOptions{
		ResyncInterval:          2 * time.Minute,
		PowerOffTimeout:         2 * time.Minute,
		TransitionPollInterval:  2 * time.Second,
		MaxConcurrentReconciles: 10,
		BMCRequestTimeout:       10 * time.Second,
		AgentNamespace:          defaultAgentNamespace(),
		AgentBootTimeout:        15 * time.Minute,
		AgentRetryDelay:         time.Minute,
		AgentReportGrace:        30 * time.Second,
		DefaultWipePolicy:       metalv1alpha1.WipePolicyDisabled,
		PowerDomainLabel:        metalv1alpha1.RackLabel,
	}
}

// defaultAgentNamespace is the manager's namespace (POD_NAMESPACE, set by the chart and
// config/manager), else metal-operator-system.
func defaultAgentNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "metal-operator-system"
}

// BindFlags registers the options as flags on fs, with the current values as defaults.
func (o *ServerOptions) BindFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.ResyncInterval, "server-resync-interval", o.ResyncInterval,
		"How often a settled server is re-read from its BMC.")
	fs.DurationVar(&o.PowerOffTimeout, "server-power-off-timeout", o.PowerOffTimeout,
		"How long a graceful power-off may take before the server is forced off.")
	fs.DurationVar(&o.TransitionPollInterval, "server-transition-poll-interval", o.TransitionPollInterval,
		"How often a server with a power transition in flight is looked at again.")
	fs.IntVar(&o.MaxConcurrentReconciles, "server-max-concurrent-reconciles", o.MaxConcurrentReconciles,
		"Number of servers reconciled in parallel.")
	fs.DurationVar(&o.BMCRequestTimeout, "bmc-request-timeout", o.BMCRequestTimeout,
		"Timeout of one request to a BMC.")
	fs.BoolVar(&o.DiscoveryBoot, "discovery-boot", o.DiscoveryBoot,
		"Boot the in-band agent during discovery (needs --discovery-image); off, discovery reads the BMC only.")
	fs.StringVar(&o.AgentImage, "discovery-image", o.AgentImage,
		"OS image that boots the in-band agent, for discovery and wipe boots (an OCI reference).")
	fs.StringVar(&o.AgentNamespace, "agent-namespace", o.AgentNamespace,
		"Namespace of the agent boots' objects (default: POD_NAMESPACE, else metal-operator-system).")
	fs.DurationVar(&o.AgentBootTimeout, "agent-boot-timeout", o.AgentBootTimeout,
		"How long one agent boot (discovery or wipe) may take from its start to the agent's report.")
	fs.DurationVar(&o.AgentRetryDelay, "agent-boot-retry-delay", o.AgentRetryDelay,
		"Pause after an agent boot that timed out before the next attempt.")
	fs.DurationVar(&o.AgentReportGrace, "agent-report-grace", o.AgentReportGrace,
		"How long after an agent boot's credential was issued its report waits before it is trusted (a requester that won the credential before the machine is noticed meanwhile).")
	fs.Func("default-wipe-policy", "Wipe policy of servers without spec.wipePolicy: Disabled, Quick or Secure (default Disabled).",
		func(v string) error {
			p := metalv1alpha1.WipePolicy(v)
			if p != metalv1alpha1.WipePolicyDisabled && p != metalv1alpha1.WipePolicyQuick && p != metalv1alpha1.WipePolicySecure {
				return fmt.Errorf("want Disabled, Quick or Secure")
			}
			o.DefaultWipePolicy = p
			return nil
		})
	fs.Func("label-from-inventory", "KEY=FACT: label discovered Servers with a fact of the agent's report (repeatable; facts in docs/agent.md).",
		func(v string) error {
			rule, err := inventory.ParseRule(v)
			if err != nil {
				return err
			}
			o.InventoryLabels = append(o.InventoryLabels, rule)
			return nil
		})
	fs.IntVar(&o.MaxConcurrentPowerOns, "max-concurrent-power-ons", o.MaxConcurrentPowerOns,
		"Most servers of one power domain in a power-on transition at once; 0 is unlimited.")
	fs.DurationVar(&o.PowerOnInterval, "power-on-interval", o.PowerOnInterval,
		"Least time between two power-on starts in one power domain; 0 is none.")
	fs.StringVar(&o.PowerDomainLabel, "power-domain-label", o.PowerDomainLabel,
		"Server label whose value is the server's power domain, for --max-concurrent-power-ons and --power-on-interval.")
}

// Validate reports options that are missing or out of range.
func (o ServerOptions) Validate() error {
	if o.DiscoveryBoot && (o.AgentImage == "" || o.AgentNamespace == "") {
		return errors.New("--discovery-boot needs --discovery-image and --agent-namespace")
	}
	values := map[string]any{
		"ResyncInterval": o.ResyncInterval, "PowerOffTimeout": o.PowerOffTimeout,
		"TransitionPollInterval": o.TransitionPollInterval, "BMCRequestTimeout": o.BMCRequestTimeout,
		"MaxConcurrentReconciles": o.MaxConcurrentReconciles,
	}
	if o.AgentImage != "" {
		values["AgentBootTimeout"], values["AgentRetryDelay"] = o.AgentBootTimeout, o.AgentRetryDelay
	}
	err := positive(values)
	if o.MaxConcurrentPowerOns < 0 || o.PowerOnInterval < 0 {
		err = errors.Join(err, fmt.Errorf("MaxConcurrentPowerOns (%d) and PowerOnInterval (%s) must not be negative", o.MaxConcurrentPowerOns, o.PowerOnInterval))
	}
	if o.staggered() && o.PowerDomainLabel == "" {
		err = errors.Join(err, errors.New("PowerDomainLabel is required with MaxConcurrentPowerOns or PowerOnInterval"))
	}
	return err
}

// staggered reports whether power-ons wait for their turn in their power domain.
func (o ServerOptions) staggered() bool { return o.MaxConcurrentPowerOns > 0 || o.PowerOnInterval > 0 }

// ServerReconciler drives a Server through its lifecycle. It is the only writer of Server
// status. States (status.state) and their transitions:
//
//	""         -> Parked      the parked annotation is set   (a wiped status is rebuilt)
//	""         -> Reserved    spec.serverClaimRef is set
//	""         -> Initial     otherwise
//	Initial    -> Discovery   spec.systemURI is known (filled from the BMC's systems when empty)
//	Discovery  -> Available   the inventory was read from the BMC (condition Discovered)
//	Available  -> Reserved    spec.serverClaimRef is set (exactly one status write); while
//	                          Available the server is kept off and a dangling
//	                          spec.bootConfigurationRef is cleared
//	Reserved                  claim live and its boot configuration Ready: power follows
//	                          claim.spec.power; the first power-on of a claim is a one-time
//	                          network boot, later ones boot from disk
//	Reserved   -> Available   spec.serverClaimRef cleared (Recycle, or by hand), after a
//	                          BMC-confirmed power-off
//	Reserved   -> Released    claim gone and reclaimPolicy Retain, after a BMC-confirmed
//	                          power-off (graceful, forced after PowerOffTimeout)
//	Released   -> Available   spec.serverClaimRef cleared (kept off meanwhile)
//	Available, Reserved -> Parked   operation annotation "park", after a confirmed power-off
//	Parked     -> Reserved | Available | Initial   operation annotation "unpark"
//	any but Parked -> Error   the BMC cannot be used; condition BMCReachable=False says why
//	Error      -> Reserved (claim ref) | Initial (never discovered) | Available
//	                          once the BMC answers again (retried with a growing delay)
//
// Whatever the state, the deprecated spec.power is cleared (one locked patch; it is never
// acted on). While Available or Reserved (with a live claim), spec.indicatorLED is applied
// through the BMC whenever the LED state the BMC reports, status.indicatorLED, differs, and
// spec.bootOrder (devices by priority) whenever the boot order the BMC reports differs
// (condition BootOrderApplied).
//
// Reconcile never waits on a BMC: it issues one action, records it in a condition
// (PoweringOn, PoweringOff, WaitingForPowerOff, ...) and looks again after
// TransitionPollInterval; settled servers are looked at every ResyncInterval. Status is
// written once per reconcile at most, under an optimistic lock, and only when it changed.
type ServerReconciler struct {
	client.Client
	// APIReader reads around the cache before a decision that must not rest on a stale cache
	// (is the claim gone?).
	APIReader client.Reader
	// Connector builds a BMC client for a server.
	Connector access.Connector
	// Recorder emits events (events.k8s.io).
	Recorder events.EventRecorder
	Options  ServerOptions

	// versions keeps decisions off cached copies older than the controller's own writes.
	versions *cachelag.Versions[string]
	writer   objectWriter[*metalv1alpha1.Server]
	// observations are the systems as the last reconcile of each server read them, while
	// that reconcile's next step may reuse them (recentObservation).
	observations *cachelag.Store[string, observation]
	// powerQueue staggers power-ons per power domain (nil: not staggered).
	powerQueue *powerQueue
}

// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=servers,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=servers/status,verbs=patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverclaims,verbs=get;list;watch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverbootconfigurations,verbs=get;list;watch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=bmcs,verbs=get;list;watch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=bmcsecrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// serverScope is what one reconcile of a server works with: the shared scope (the server as
// read and the working copy) and what the BMC said in this reconcile.
type serverScope struct {
	*scope[*metalv1alpha1.Server]
	// bmc is the server's BMC client, once connected.
	bmc bmc.BMC
	// info is what the BMC reported about the system in this reconcile.
	info bmc.SystemInfo
	// power is the power state the BMC reported in this reconcile.
	power bmc.PowerState
	// observedAt is when info was read from the BMC; reused says it was read by an earlier
	// reconcile (recentObservation).
	observedAt time.Time
	reused     bool
	// keepObservation says the reconcile sent the BMC nothing that changes the system, so
	// that the next reconcile may reuse info (keepObservation in Reconcile).
	keepObservation bool
}

// Reconcile brings one server closer to the state its spec and claim ask for.
func (r *ServerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	fetched := false
	defer func() { metrics.CountServerReconcile(fetched, err) }()
	server := &metalv1alpha1.Server{}
	found, err := readFresh(ctx, r.Client, r.APIReader, r.versions, req.NamespacedName, server)
	if errors.Is(err, errCacheBehind) {
		return ctrl.Result{RequeueAfter: cacheCatchUpDelay}, nil
	}
	fetched = err == nil
	if err != nil || !found {
		return ctrl.Result{}, err
	}
	if ignored(server) {
		return ctrl.Result{}, nil
	}
	if added, err := r.writer.ensureFinalizer(ctx, server, metalv1alpha1.ServerFinalizer); added || err != nil {
		return conflictOr(ctrl.Result{}, err, r.Options.TransitionPollInterval)
	}

	sc := &serverScope{scope: newScope(server, r.Recorder)}
	defer func() {
		if sc.bmc != nil {
			_ = sc.bmc.Logout(context.WithoutCancel(ctx))
		}
	}()

	var res ctrl.Result
	if !server.DeletionTimestamp.IsZero() {
		res, err = r.reconcileDelete(ctx, sc)
	} else {
		res, err = r.reconcileNormal(ctx, sc)
	}
	res, err = r.writer.finish(ctx, sc.scope, res, err, r.Options.TransitionPollInterval)
	r.rememberObservation(sc, err)
	return res, err
}

// reconcileNormal runs the operation annotations and the state machine of a live server.
func (r *ServerReconciler) reconcileNormal(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	if s.Status.State == "" {
		return r.initializeState(ctx, sc)
	}
	if s.Spec.Power != "" {
		// Deprecated: a server's power follows its claim. Cleared, never acted on.
		if err := r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) { o.Spec.Power = "" }); err != nil {
			return ctrl.Result{}, err
		}
		ctrl.LoggerFrom(ctx).V(1).Info("Cleared the deprecated spec.power")
	}
	if res, done, err := r.handleBMCFreeOperations(ctx, sc); done || err != nil {
		return res, err
	}

	if err := r.connect(ctx, sc); err != nil {
		return r.bmcFailed(ctx, sc, err)
	}
	if s.Status.State == metalv1alpha1.ServerStateError {
		if wipeFailed(s) {
			res, err := r.holdFailedWipe(ctx, sc)
			return r.bmcResult(ctx, sc, res, err)
		}
		return r.recover(ctx, sc)
	}
	if res, done, err := r.handleBMCOperations(ctx, sc); done || err != nil {
		return r.bmcResult(ctx, sc, res, err)
	}
	res, err := r.dispatch(ctx, sc)
	return r.bmcResult(ctx, sc, res, err)
}

// dispatch runs the handler of the server's state.
func (r *ServerReconciler) dispatch(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	switch sc.obj.Status.State {
	case metalv1alpha1.ServerStateInitial:
		return r.reconcileInitial(ctx, sc)
	case metalv1alpha1.ServerStateDiscovery:
		return r.reconcileDiscovery(ctx, sc)
	case metalv1alpha1.ServerStateAvailable:
		return r.reconcileAvailable(ctx, sc)
	case metalv1alpha1.ServerStateReserved:
		return r.reconcileReserved(ctx, sc)
	case metalv1alpha1.ServerStateReleased:
		return r.reconcileReleased(ctx, sc)
	case metalv1alpha1.ServerStateWiping:
		return r.reconcileWiping(ctx, sc)
	}
	// Parked and Error are handled before the BMC operations; anything else is not a state
	// this controller knows: start over.
	return r.transition(ctx, sc, metalv1alpha1.ServerStateInitial)
}

// bmcResult turns a BMC failure of a handler into the Error state, and passes anything else on.
func (r *ServerReconciler) bmcResult(ctx context.Context, sc *serverScope, res ctrl.Result, err error) (ctrl.Result, error) {
	if err != nil && access.Reason(err) != "" {
		return r.bmcFailed(ctx, sc, err)
	}
	if err != nil && errors.Is(err, bmc.ErrConflict) {
		// A power transition is running on the BMC: look again shortly.
		return ctrl.Result{RequeueAfter: r.Options.TransitionPollInterval}, nil
	}
	return res, err
}

// settled is the result of a reconcile that has nothing in flight.
func (r *ServerReconciler) settled() (ctrl.Result, error) {
	return ctrl.Result{RequeueAfter: r.Options.ResyncInterval}, nil
}

// inFlight is the result of a reconcile that waits for a transition.
func (r *ServerReconciler) inFlight() (ctrl.Result, error) {
	return ctrl.Result{RequeueAfter: r.Options.TransitionPollInterval}, nil
}

// SetupWithManager registers the controller, its watches and the server metrics.
func (r *ServerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := checkSetup("ServerReconciler", &r.Options, map[string]bool{"Client": r.Client != nil, "APIReader": r.APIReader != nil, "Connector": r.Connector != nil, "Recorder": r.Recorder != nil}); err != nil {
		return err
	}
	r.versions = newVersions()
	r.observations = cachelag.NewStore[string, observation](cachelag.Options{Retention: r.Options.TransitionPollInterval})
	r.writer = objectWriter[*metalv1alpha1.Server]{client: r.Client, versions: r.versions,
		status: func(s *metalv1alpha1.Server) any { return &s.Status }}
	metrics.RegisterServerMetrics(mgr.GetCache())
	if r.Options.staggered() {
		if err := index.SetupPowerOn(context.Background(), mgr.GetFieldIndexer(), r.Options.PowerDomainLabel); err != nil {
			return err
		}
		r.powerQueue = newPowerQueue(mgr.GetClient(), r.Options)
	}
	b := ctrl.NewControllerManagedBy(mgr)
	if r.agentBootsEnabled() {
		// Agent reports (the operator's own ConfigMaps, labelled with the server).
		b = b.Watches(&corev1.ConfigMap{}, r.enqueueServerForAgentReport())
	}
	return b.
		Named("server").
		For(&metalv1alpha1.Server{}, builder.WithPredicates(ownChangePredicate(false))).
		Watches(&metalv1alpha1.ServerClaim{}, r.enqueueServersForClaim(), builder.WithPredicates(claimChangedForServer())).
		Watches(&metalv1alpha1.ServerBootConfiguration{}, r.enqueueServersForBootConfiguration(),
			builder.WithPredicates(bootConfigurationChangedForServer())).
		Watches(&metalv1alpha1.BMCSecret{}, r.enqueueServersForBMCSecret()).
		Watches(&metalv1alpha1.BMC{}, r.enqueueServersForBMC(), builder.WithPredicates(bmcChangedForServer())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Complete(r)
}
