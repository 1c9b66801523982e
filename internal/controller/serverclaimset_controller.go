package controller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/cachelag"
	"github.com/metalfleet/metal-operator/internal/index"
)

// ServerClaimSetOptions tune the ServerClaimSet controller.
type ServerClaimSetOptions struct {
	// MaxConcurrentReconciles is the number of sets reconciled in parallel. Placement
	// decisions are taken one at a time whatever it is.
	MaxConcurrentReconciles int
	// RetryMin and RetryMax bound the backoff with which a set that cannot be placed, or whose
	// placement met a conflict, decides again.
	RetryMin, RetryMax time.Duration
	// BindingTimeout is how long the members of a placement may take to take their servers
	// before the set lets the placement go and decides again.
	BindingTimeout time.Duration
}

// DefaultServerClaimSetOptions are the defaults of the manager's flags.
func DefaultServerClaimSetOptions() ServerClaimSetOptions {
	return ServerClaimSetOptions{MaxConcurrentReconciles: 4, RetryMin: 2 * time.Second, RetryMax: 2 * time.Minute,
		BindingTimeout: time.Minute}
}

// BindFlags registers the options as flags on fs, with the current values as defaults.
func (o *ServerClaimSetOptions) BindFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.MaxConcurrentReconciles, "server-claim-set-max-concurrent-reconciles", o.MaxConcurrentReconciles,
		"Number of ServerClaimSets reconciled in parallel.")
	fs.DurationVar(&o.RetryMin, "server-claim-set-retry-min", o.RetryMin,
		"Shortest delay before a ServerClaimSet that could not be placed decides again.")
	fs.DurationVar(&o.RetryMax, "server-claim-set-retry-max", o.RetryMax,
		"Longest delay before a ServerClaimSet that could not be placed decides again.")
	fs.DurationVar(&o.BindingTimeout, "server-claim-set-binding-timeout", o.BindingTimeout,
		"How long the member claims of a placement may take to take their servers before the set lets it go and decides again.")
}

// Validate reports options that are missing or out of range.
func (o ServerClaimSetOptions) Validate() error {
	err := positive(map[string]any{"MaxConcurrentReconciles": o.MaxConcurrentReconciles, "RetryMin": o.RetryMin,
		"BindingTimeout": o.BindingTimeout})
	if o.RetryMax < o.RetryMin {
		err = errors.Join(err, fmt.Errorf("RetryMax (%s) must not be below RetryMin (%s)", o.RetryMax, o.RetryMin))
	}
	return err
}

var _ options = (*ServerClaimSetOptions)(nil)

// ServerClaimSetReconciler places ServerClaimSets: it owns the member ServerClaims
// <set>-<index> and decides their servers for all missing members at once.
//
// A set moves through these states (the reason of its Bound condition):
//
//	InsufficientCapacity -- the free servers can hold the missing members under the topology -->
//	   the servers are decided in one plan (binding.PlanSet) and the members created, each
//	   with the annotation AssignedServerAnnotation naming its server: Binding
//	Binding -- every member holds its server as a proposal (the server names the member by
//	   uid; the member names nothing, so the server stays Available and off) -->
//	   each member records its server (spec.serverRef, the claim's finalizer, annotation
//	   removed), after which the claim and server controllers bind, boot and power it as any
//	   claim's: Bound once every member is Bound
//	Binding -- a server of the plan went elsewhere, a member cannot take its server, a member
//	   of the plan is missing (a manager stopped while creating them) or BindingTimeout passed
//	   --> the plan's unrecorded members are deleted, which lets their proposals go:
//	   PlacementConflict, and a new decision after a backoff
//
// Scaling down deletes the members with the highest indices; deleting the set deletes every
// member, then releases the set. Every decision is taken from what is observed now: members
// from the index on their set, servers from the cache, plans under one lock per process and
// from the pool of free servers it shares with the ServerClaim controller (the plan's servers
// are held there until its members settle, so that no single claim of this process picks
// them meanwhile). See docs/concepts/serverclaimset.md.
type ServerClaimSetReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	Options  ServerClaimSetOptions
	// Pool is the pool of free servers, shared with the ServerClaim controller (nil: one of
	// its own). Both feed it from their server events.
	Pool *binding.Pool

	writer objectWriter[*fleetv1alpha1.ServerClaimSet]
	// decide serialises plans: one set at a time takes servers out of the pool.
	decide sync.Mutex
	// holds are the servers a set's pending plan holds in the pool, by set.
	holds setHolds
	// created remembers the members a reconcile created until the cache lists them, by set.
	created *cachelag.Store[string, []string]
	// waiting are the sets that could not be placed: a server turning free wakes them.
	waiting sync.Map
}

// +kubebuilder:rbac:groups=fleet.metalfleet.dev,resources=serverclaimsets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=fleet.metalfleet.dev,resources=serverclaimsets/status,verbs=patch
// +kubebuilder:rbac:groups=fleet.metalfleet.dev,resources=serverclaimsets/finalizers,verbs=update
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverclaims,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=servers,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// setScope is what one reconcile of a set works with.
type setScope = scope[*fleetv1alpha1.ServerClaimSet]

// setConflictRetry is how soon a write refused for a stale copy is tried again.
const setConflictRetry = 200 * time.Millisecond

// Reconcile brings one set closer to all of its replicas bound.
func (r *ServerClaimSetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.writer.reconcile(ctx, req.NamespacedName, &fleetv1alpha1.ServerClaimSet{}, r.Recorder,
		fleetv1alpha1.ServerClaimSetFinalizer, setConflictRetry, r.reconcileNormal, r.reconcileDelete)
}

// reconcileDelete deletes every member, then lets the set go.
func (r *ServerClaimSetReconciler) reconcileDelete(ctx context.Context, sc *setScope) (ctrl.Result, error) {
	set := sc.obj
	r.holds.release(r.Pool, setKey(set))
	r.waiting.Delete(setKey(set))
	if !controllerutil.ContainsFinalizer(set, fleetv1alpha1.ServerClaimSetFinalizer) {
		sc.gone = true
		return ctrl.Result{}, nil
	}
	members, err := r.members(ctx, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	for _, m := range members {
		if err := r.deleteMember(ctx, m); err != nil {
			return ctrl.Result{}, err
		}
	}
	if len(members) > 0 {
		// The members' deletions wake the set; this is a safety net.
		return ctrl.Result{RequeueAfter: r.Options.RetryMin}, nil
	}
	base := set.DeepCopy()
	controllerutil.RemoveFinalizer(set, fleetv1alpha1.ServerClaimSetFinalizer)
	if err := r.Patch(ctx, set, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("removing the finalizer: %w", err)
	}
	sc.gone = true
	return ctrl.Result{}, nil
}

// members returns the set's member claims from the cache, through the index on their set,
// keeping only those the set controls (a claim that merely carries the label is not one).
func (r *ServerClaimSetReconciler) members(ctx context.Context, set *fleetv1alpha1.ServerClaimSet) ([]*metalv1alpha1.ServerClaim, error) {
	list := &metalv1alpha1.ServerClaimList{}
	if err := r.List(ctx, list, client.InNamespace(set.Namespace),
		client.MatchingFields{index.ClaimSet: index.NamespacedKey(set.Namespace, set.Name)}); err != nil {
		return nil, fmt.Errorf("listing the members: %w", err)
	}
	out := make([]*metalv1alpha1.ServerClaim, 0, len(list.Items))
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], set) {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

// deleteMember deletes one member claim, the one observed (uid precondition), if it is not
// being deleted already.
func (r *ServerClaimSetReconciler) deleteMember(ctx context.Context, m *metalv1alpha1.ServerClaim) error {
	if !m.DeletionTimestamp.IsZero() {
		return nil
	}
	if err := r.Delete(ctx, m, client.Preconditions{UID: &m.UID}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting member %s: %w", m.Name, err)
	}
	return nil
}

func setKey(set *fleetv1alpha1.ServerClaimSet) string {
	return index.NamespacedKey(set.Namespace, set.Name)
}

// setHolds are the servers each set's pending plan holds in the pool.
type setHolds struct {
	mu   sync.Mutex
	sets map[string][]string
}

func (h *setHolds) add(pool *binding.Pool, key string, names []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sets == nil {
		h.sets = map[string][]string{}
	}
	pool.Hold(names)
	h.sets[key] = append(h.sets[key], names...)
}

// release lets the servers a set's plan held go back to the pool's pickers.
func (h *setHolds) release(pool *binding.Pool, key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.sets[key] {
		pool.Done(n)
	}
	delete(h.sets, key)
}

// SetupWithManager registers the controller and its watches.
func (r *ServerClaimSetReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := checkSetup("ServerClaimSetReconciler", &r.Options, map[string]bool{"Client": r.Client != nil, "Scheme": r.Scheme != nil, "Recorder": r.Recorder != nil}); err != nil {
		return err
	}
	if r.Pool == nil {
		r.Pool = binding.NewPool()
	}
	r.writer = objectWriter[*fleetv1alpha1.ServerClaimSet]{client: r.Client, versions: newVersions(),
		status: func(s *fleetv1alpha1.ServerClaimSet) any { return &s.Status }}
	r.created = cachelag.NewStore[string, []string](cachelag.Options{Retention: cacheLagLimit})
	return ctrl.NewControllerManagedBy(mgr).
		Named("serverclaimset").
		For(&fleetv1alpha1.ServerClaimSet{}, builder.WithPredicates(ownChangePredicate(false))).
		Owns(&metalv1alpha1.ServerClaim{}).
		Watches(&metalv1alpha1.Server{}, r.serverEventHandler()).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Complete(r)
}

// setRequest is the request of the set a member claim belongs to.
func setRequest(namespace, set string) ctrl.Request {
	return ctrl.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: set}}
}
