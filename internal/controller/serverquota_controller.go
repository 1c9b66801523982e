package controller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
)

// ServerQuotaOptions tune the ServerQuota controller.
type ServerQuotaOptions struct {
	// MaxConcurrentReconciles is the number of quotas reconciled in parallel.
	MaxConcurrentReconciles int
	// AllocationGrace is how long an allocation whose server does not hold its claim (the
	// take has not happened, or never will: its manager was killed in between) keeps counting.
	AllocationGrace time.Duration
}

// DefaultServerQuotaOptions are the defaults of the manager's flags.
func DefaultServerQuotaOptions() ServerQuotaOptions {
	return ServerQuotaOptions{MaxConcurrentReconciles: 2, AllocationGrace: time.Minute}
}

// BindFlags registers the options as flags on fs, with the current values as defaults.
func (o *ServerQuotaOptions) BindFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.MaxConcurrentReconciles, "server-quota-max-concurrent-reconciles", o.MaxConcurrentReconciles,
		"Number of ServerQuotas reconciled in parallel.")
	fs.DurationVar(&o.AllocationGrace, "server-quota-allocation-grace", o.AllocationGrace,
		"How long a quota allocation whose server does not hold its claim keeps counting before it is reclaimed.")
}

// Validate reports options that are missing or out of range.
func (o ServerQuotaOptions) Validate() error {
	err := positive(map[string]any{"MaxConcurrentReconciles": o.MaxConcurrentReconciles, "AllocationGrace": o.AllocationGrace})
	if o.AllocationGrace > 0 && o.AllocationGrace < 3*quotaAllocationRefresh {
		err = errors.Join(err, fmt.Errorf("AllocationGrace (%s) must be at least %s", o.AllocationGrace, 3*quotaAllocationRefresh))
	}
	return err
}

var _ options = (*ServerQuotaOptions)(nil)

// ServerQuotaReconciler keeps a ServerQuota's allocations true and its status counted. The
// claim controller adds allocations (consumeQuotas); this controller only removes those that
// no longer count (binding.AllocationReclaimable): the claim is gone, being deleted, its
// lease ended or it recorded another server, at once; an allocation whose take never
// happened, after AllocationGrace. It never unbinds anything: a quota lowered below what is
// held shows used above hard (condition Exceeded).
type ServerQuotaReconciler struct {
	client.Client
	// APIReader confirms that a claim is gone before its allocation is dropped.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Options   ServerQuotaOptions

	writer objectWriter[*fleetv1alpha1.ServerQuota]
}

// +kubebuilder:rbac:groups=fleet.metalfleet.dev,resources=serverquotas,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.metalfleet.dev,resources=serverquotas/status,verbs=patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverclaims,verbs=get;list;watch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=servers,verbs=get;list;watch

// Reconcile counts one quota.
func (r *ServerQuotaReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	q := &fleetv1alpha1.ServerQuota{}
	found, err := readFresh(ctx, r.Client, r.APIReader, r.writer.versions, req.NamespacedName, q)
	switch {
	case errors.Is(err, errCacheBehind):
		return ctrl.Result{RequeueAfter: cacheCatchUpDelay}, nil
	case err != nil || !found || ignored(q):
		return ctrl.Result{}, err
	}
	sc := newScope(q, r.Recorder)
	res, err := r.reconcileNormal(ctx, sc)
	return r.writer.finish(ctx, sc, res, err, cacheCatchUpDelay)
}

func (r *ServerQuotaReconciler) reconcileNormal(ctx context.Context, sc *scope[*fleetv1alpha1.ServerQuota]) (ctrl.Result, error) {
	q := sc.obj
	now := time.Now()
	var next time.Duration
	keep := q.Status.Allocations[:0:0]
	for _, a := range q.Status.Allocations {
		claim, held, err := r.allocationParties(ctx, q.Namespace, a)
		if err != nil {
			return ctrl.Result{}, err
		}
		if binding.AllocationReclaimable(a, claim, held, now, r.Options.AllocationGrace) {
			ctrl.LoggerFrom(ctx).V(1).Info("Reclaimed allocation", "claim", a.ClaimName, "server", a.Server)
			continue
		}
		keep = append(keep, a)
		if !held {
			// Pending: look again when its grace ends.
			if wait := r.Options.AllocationGrace - now.Sub(a.Since.Time) + time.Second; next == 0 || wait < next {
				next = wait
			}
		}
	}
	q.Status.Allocations = keep
	q.Status.Used = binding.QuotaUsage(q)
	var over []string
	for _, u := range q.Status.Used {
		if u.Used > u.Hard {
			over = append(over, fmt.Sprintf("%s (%d of %d)", u.Name, u.Used, u.Hard))
		}
	}
	cond := metav1.Condition{Type: fleetv1alpha1.ServerQuotaExceeded, Status: metav1.ConditionFalse,
		Reason: fleetv1alpha1.ReasonWithinLimits, Message: "Every limit holds at most its max", ObservedGeneration: q.Generation}
	if len(over) > 0 {
		cond.Status, cond.Reason = metav1.ConditionTrue, fleetv1alpha1.ReasonUsedAboveMax
		cond.Message = fmt.Sprintf("Claims hold more servers than allowed under %v (nothing is unbound; new claims wait)", over)
	}
	if meta.SetStatusCondition(&q.Status.Conditions, cond) && cond.Status == metav1.ConditionTrue {
		sc.eventf(nil, corev1.EventTypeWarning, fleetv1alpha1.ReasonUsedAboveMax, "Count", "%s", cond.Message)
	}
	return ctrl.Result{RequeueAfter: next}, nil
}

// allocationParties returns the allocation's claim (nil when gone, confirmed around the
// cache) and whether a server holds it (binding.AllocationServer).
func (r *ServerQuotaReconciler) allocationParties(ctx context.Context, ns string, a fleetv1alpha1.QuotaAllocation) (*metalv1alpha1.ServerClaim, bool, error) {
	key := client.ObjectKey{Namespace: ns, Name: a.ClaimName}
	claim := &metalv1alpha1.ServerClaim{}
	err := r.Get(ctx, key, claim)
	if apierrors.IsNotFound(err) || (err == nil && string(claim.UID) != a.ClaimUID) {
		// The cache may lag a claim just created: ask the API server.
		err = r.APIReader.Get(ctx, key, claim)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("reading claim %s: %w", key, err)
	}
	name := binding.AllocationServer(a, claim)
	s := &metalv1alpha1.Server{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, false, fmt.Errorf("reading server %s: %w", name, err)
		}
		return claim, false, nil
	}
	return claim, binding.HeldBy(s, claim), nil
}

// enqueueQuotasForClaim maps a claim to the quotas of its namespace (none: nothing to do).
func (r *ServerQuotaReconciler) enqueueQuotasForClaim() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		list := &fleetv1alpha1.ServerQuotaList{}
		if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing ServerQuotas for a claim")
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, q := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&q)})
		}
		return reqs
	})
}

// SetupWithManager registers the controller.
func (r *ServerQuotaReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := checkSetup("ServerQuotaReconciler", &r.Options, map[string]bool{"Client": r.Client != nil, "APIReader": r.APIReader != nil, "Recorder": r.Recorder != nil}); err != nil {
		return err
	}
	r.writer = objectWriter[*fleetv1alpha1.ServerQuota]{client: r.Client, versions: newVersions(),
		status: func(q *fleetv1alpha1.ServerQuota) any { return &q.Status }}
	return ctrl.NewControllerManagedBy(mgr).
		Named("serverquota").
		For(&fleetv1alpha1.ServerQuota{}, builder.WithPredicates(ownChangePredicate(false))).
		Watches(&metalv1alpha1.ServerClaim{}, r.enqueueQuotasForClaim()).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Complete(r)
}
