package controller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/cachelag"
	"github.com/metalfleet/metal-operator/internal/index"
)

// ServerClaimOptions tune the ServerClaim controller.
type ServerClaimOptions struct {
	// MaxConcurrentReconciles is the number of claims reconciled in parallel.
	MaxConcurrentReconciles int
	// UnboundRetryMin and UnboundRetryMax bound the backoff with which a claim that found
	// no server looks again, so that it never waits forever for an unrelated event.
	UnboundRetryMin, UnboundRetryMax time.Duration
	// ServerReservedGrace is how long a claim whose server is not yet Reserved waits before
	// it writes a status saying so. Within it, the server controller's Reserved write
	// usually arrives first and the claim goes straight to Bound with one status write.
	ServerReservedGrace time.Duration
	// ExpectationTimeout is how long the controller trusts its own binding write without
	// seeing it in the cache before it confirms it with an uncached read.
	ExpectationTimeout time.Duration
	// LeaseExpiryWarning is how long before the end of a claim's lease its LeaseExpiring
	// condition and Warning event appear.
	LeaseExpiryWarning time.Duration
}

// DefaultServerClaimOptions are the defaults of the manager's flags.
func DefaultServerClaimOptions() ServerClaimOptions {
	return ServerClaimOptions{
		MaxConcurrentReconciles: 10,
		UnboundRetryMin:         2 * time.Second,
		UnboundRetryMax:         2 * time.Minute,
		ServerReservedGrace:     10 * time.Second,
		ExpectationTimeout:      30 * time.Second,
		LeaseExpiryWarning:      time.Hour,
	}
}

// ServerClaimReconciler binds ServerClaims to Servers.
//
// A claim moves through these states (status.phase, and the reason of its Bound condition):
//
//	Unbound (NoMatchingServer, ServerNotFound, ServerClaimedByOther, ...)
//	   -- a fitting server is found --> one locked patch of the server (claim ref with uid and
//	      boot configuration ref), the boot configuration created, one patch of the claim
//	      (finalizer and spec.serverRef)
//	   -- the server controller marks the server Reserved --> Bound
//	Bound -- the server is lost (deleted, claim ref cleared) --> Unbound, boot configuration removed
//	any   -- deletion --> boot configuration deleted, a binding the server never took up
//	         undone, finalizer removed; the server controller powers the server off and
//	         applies its reclaim policy.
//
// The decision that a server is free and the write that takes it are tied by an optimistic
// lock on the server. What a claim already holds is found through the index on
// spec.serverClaimRef (namespace/name, uid compared) and, for its own writes not yet in the
// cache, through in-memory
// expectations (one manager is active at a time; a restarted one starts from a fresh List),
// so a stale cache can never make a claim take a second server.
type ServerClaimReconciler struct {
	client.Client
	// APIReader reads around the cache when a decision must not rest on a stale cache.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Options   ServerClaimOptions
	// Pool is the pool of free servers, shared with the ServerClaimSet controller (nil: one
	// of its own).
	Pool *binding.Pool

	expect *expectations
	// versions keeps decisions off cached claims older than the controller's own writes.
	versions *cachelag.Versions[string]
	writer   objectWriter[*metalv1alpha1.ServerClaim]
}

// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverclaims,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverclaims/status,verbs=patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverclaims/finalizers,verbs=update
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=servers,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverbootconfigurations,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one claim closer to a binding.
func (r *ServerClaimReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	claim := &metalv1alpha1.ServerClaim{}
	// A cached claim older than this controller's last write to it would repeat that write
	// (a server event can arrive before the claim's own): wait a moment for the cache.
	found, err := readFresh(ctx, r.Client, r.APIReader, r.versions, req.NamespacedName, claim)
	switch {
	case errors.Is(err, errCacheBehind):
		return ctrl.Result{RequeueAfter: cacheCatchUpDelay}, nil
	case err != nil:
		return ctrl.Result{}, err
	case !found:
		return conflictOr(ctrl.Result{}, r.releaseOrphans(ctx, req.NamespacedName), cacheCatchUpDelay)
	case ignored(claim):
		return ctrl.Result{}, nil
	}
	if !claim.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, claim)
	}
	// The finalizer is added together with spec.serverRef once a server is taken (see
	// recordBinding): a claim that holds nothing has nothing to clean up, and one write
	// fewer per binding matters at fleet scale.
	res, err := r.reconcileNormal(ctx, claim)
	res, err = r.leaseWake(claim, res, err)
	// A conflict: someone else wrote the claim or a server since the cache was read.
	return conflictOr(res, err, cacheCatchUpDelay)
}

func (r *ServerClaimReconciler) reconcileNormal(ctx context.Context, claim *metalv1alpha1.ServerClaim) (ctrl.Result, error) {
	if binding.LeaseEnded(claim, time.Now()) {
		// Before any binding code: an ended lease is final.
		return r.endLease(ctx, claim)
	}
	sel, err := claimSelector(claim)
	if err != nil {
		return r.setUnbound(ctx, claim, metalv1alpha1.ReasonInvalidSelector,
			fmt.Sprintf("spec.serverSelector is invalid: %v", err), false)
	}
	held, err := r.heldServers(ctx, claim)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.releaseRefused(ctx, claim, held); err != nil {
		return ctrl.Result{}, err
	}
	bound := r.chooseHeld(claim, held)
	if assigned, ok := index.SetAssignment(claim); ok {
		return r.holdForSet(ctx, claim, sel, assigned, bound)
	}
	if bound == nil {
		return r.bind(ctx, claim, sel)
	}
	return r.ensureBound(ctx, claim, bound)
}

// SetupWithManager registers the controller and the pool's feed from server events.
func (r *ServerClaimReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := checkSetup("ServerClaimReconciler", &r.Options, map[string]bool{"Client": r.Client != nil, "APIReader": r.APIReader != nil, "Scheme": r.Scheme != nil, "Recorder": r.Recorder != nil}); err != nil {
		return err
	}
	if r.Pool == nil {
		r.Pool = binding.NewPool()
	}
	r.expect = newExpectations()
	r.versions = newVersions()
	r.writer = objectWriter[*metalv1alpha1.ServerClaim]{client: r.Client, versions: r.versions,
		status: func(c *metalv1alpha1.ServerClaim) any { return &c.Status }}
	return ctrl.NewControllerManagedBy(mgr).
		Named("serverclaim").
		For(&metalv1alpha1.ServerClaim{}, builder.WithPredicates(ownChangePredicate(false))).
		Owns(&metalv1alpha1.ServerBootConfiguration{}).
		Watches(&metalv1alpha1.Server{}, r.serverEventHandler()).
		Watches(&fleetv1alpha1.ServerQuota{}, r.quotaFreed()).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Complete(r)
}

// BindFlags registers the options as flags on fs, with the current values as defaults.
func (o *ServerClaimOptions) BindFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.MaxConcurrentReconciles, "server-claim-max-concurrent-reconciles", o.MaxConcurrentReconciles,
		"Number of claims reconciled in parallel.")
	fs.DurationVar(&o.UnboundRetryMin, "server-claim-unbound-retry-min", o.UnboundRetryMin,
		"Shortest delay before a claim that found no server looks again.")
	fs.DurationVar(&o.UnboundRetryMax, "server-claim-unbound-retry-max", o.UnboundRetryMax,
		"Longest delay before a claim that found no server looks again.")
	fs.DurationVar(&o.ServerReservedGrace, "server-claim-reserved-grace", o.ServerReservedGrace,
		"How long a claim waits for its server to turn Reserved before its status says so.")
	fs.DurationVar(&o.ExpectationTimeout, "server-claim-expectation-timeout", o.ExpectationTimeout,
		"How long a binding write is trusted without being seen in the cache before it is confirmed by a direct read.")
	fs.DurationVar(&o.LeaseExpiryWarning, "lease-expiry-warning", o.LeaseExpiryWarning,
		"How long before the end of a claim's lease (spec.leaseDuration) its LeaseExpiring condition and Warning event appear.")
}

// Validate reports options that are missing or out of range.
func (o ServerClaimOptions) Validate() error {
	err := positive(map[string]any{
		"MaxConcurrentReconciles": o.MaxConcurrentReconciles, "UnboundRetryMin": o.UnboundRetryMin,
		"ServerReservedGrace": o.ServerReservedGrace, "ExpectationTimeout": o.ExpectationTimeout,
		"LeaseExpiryWarning": o.LeaseExpiryWarning,
	})
	if o.UnboundRetryMax < o.UnboundRetryMin {
		err = errors.Join(err, fmt.Errorf("UnboundRetryMax (%s) must not be below UnboundRetryMin (%s)", o.UnboundRetryMax, o.UnboundRetryMin))
	}
	return err
}
