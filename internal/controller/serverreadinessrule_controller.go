package controller

import (
	"context"
	"flag"
	"fmt"
	"slices"
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
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/readiness"
)

// ServerReadinessRuleOptions tune the readiness controllers. Start from
// DefaultServerReadinessRuleOptions; both must be positive.
type ServerReadinessRuleOptions struct {
	// MaxConcurrentReconciles is the number of Servers evaluated in parallel.
	MaxConcurrentReconciles int
	// StatusInterval is the shortest time between two counts of one rule's Servers: however
	// many of its Servers change, a rule's status is recounted at most this often.
	StatusInterval time.Duration
}

// DefaultServerReadinessRuleOptions are the defaults of the manager.
func DefaultServerReadinessRuleOptions() ServerReadinessRuleOptions {
	return ServerReadinessRuleOptions{MaxConcurrentReconciles: 5, StatusInterval: 5 * time.Second}
}

// BindFlags registers the options as flags on fs, with the current values as defaults.
func (o *ServerReadinessRuleOptions) BindFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.MaxConcurrentReconciles, "readiness-max-concurrent-reconciles", o.MaxConcurrentReconciles,
		"Number of Servers evaluated against the readiness rules in parallel.")
	fs.DurationVar(&o.StatusInterval, "readiness-status-interval", o.StatusInterval,
		"Shortest time between two counts of one readiness rule's Servers.")
}

// Validate reports options that are missing or out of range.
func (o ServerReadinessRuleOptions) Validate() error {
	return positive(map[string]any{"MaxConcurrentReconciles": o.MaxConcurrentReconciles, "StatusInterval": o.StatusInterval})
}

// readinessConflictRetry is how soon a write refused for a stale copy is tried again.
const readinessConflictRetry = 200 * time.Millisecond

// ServerReadinessRuleReconciler runs the two controllers of ServerReadinessRules.
//
// "serverreadiness" reconciles Servers: it evaluates every rule (from the cache; rules are
// few) on one Server and writes the taints and annotations they ask for in one merge patch
// under an optimistic lock (see readiness.PlanServer). It is the only writer of rule taints,
// of annotation ReadinessTaintsAnnotation, which records them, and of the bootstrap-completed
// annotations. A Server event (labels, annotations, taints, conditions) evaluates that
// Server; a rule event evaluates the Servers it selects and those carrying its taint.
//
// "serverreadinessrule" reconciles rules: it adds the finalizer, keeps the status (Ready and
// the counts of selected and tainted Servers, recounted from the cache at most every
// StatusInterval however many Servers change), and on deletion waits until no Server
// carries the rule's taint any more (the Server side removes it, since a deleted rule asks
// for nothing), then removes the finalizer. Servers being deleted or carrying the ignore
// annotation are not waited for; their record of the rule is released when they are looked at
// again.
type ServerReadinessRuleReconciler struct {
	client.Client
	// Recorder emits events (events.k8s.io).
	Recorder events.EventRecorder
	Options  ServerReadinessRuleOptions

	writer objectWriter[*metalv1alpha1.ServerReadinessRule]
}

// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverreadinessrules,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverreadinessrules/status,verbs=patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=servers,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// ruleScope is what one reconcile of a rule works with.
type ruleScope = scope[*metalv1alpha1.ServerReadinessRule]

// Reconcile keeps one rule's finalizer and status.
func (r *ServerReadinessRuleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.writer.reconcile(ctx, req.NamespacedName, &metalv1alpha1.ServerReadinessRule{}, r.Recorder, metalv1alpha1.ServerReadinessRuleFinalizer, readinessConflictRetry, r.reconcileNormal, r.reconcileDelete)
}

// reconcileNormal counts the rule's Servers and says whether it is enforced.
func (r *ServerReadinessRuleReconciler) reconcileNormal(ctx context.Context, sc *ruleScope) (ctrl.Result, error) {
	rule := sc.obj
	rule.Status.ObservedGeneration = rule.Generation
	tainted, err := r.serversCarrying(ctx, rule.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	rule.Status.TaintedServers = int32(len(tainted))

	sel, err := readiness.Selector(rule)
	if err != nil {
		rule.Status.SelectedServers = 0
		r.setReady(sc, metav1.ConditionFalse, metalv1alpha1.ReasonInvalidSelector,
			fmt.Sprintf("spec.serverSelector cannot be parsed, the rule selects no Server: %v", err))
		return ctrl.Result{}, nil
	}
	var selected metalv1alpha1.ServerList
	if err := r.List(ctx, &selected, client.MatchingLabelsSelector{Selector: sel}, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the selected servers: %w", err)
	}
	rule.Status.SelectedServers = int32(len(selected.Items))
	if !readiness.NameFits(rule) {
		r.setReady(sc, metav1.ConditionFalse, metalv1alpha1.ReasonRuleNameTooLong,
			fmt.Sprintf("A BootstrapOnly rule's name may have at most %d characters (annotation %s<name>); the rule taints no Server: re-create it under a shorter name",
				metalv1alpha1.MaxBootstrapOnlyRuleNameLength, metalv1alpha1.BootstrapCompletedAnnotationPrefix))
		return ctrl.Result{}, nil
	}
	r.setReady(sc, metav1.ConditionTrue, metalv1alpha1.ReasonRuleEnforced,
		"The selected Servers that lack the rule's conditions carry its taint")
	return ctrl.Result{}, nil
}

// reconcileDelete lets the rule go once no Server carries its taint any more.
func (r *ServerReadinessRuleReconciler) reconcileDelete(ctx context.Context, sc *ruleScope) (ctrl.Result, error) {
	rule := sc.obj
	if !controllerutil.ContainsFinalizer(rule, metalv1alpha1.ServerReadinessRuleFinalizer) {
		sc.gone = true
		return ctrl.Result{}, nil
	}
	tainted, err := r.serversCarrying(ctx, rule.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	rule.Status.TaintedServers = int32(len(tainted))
	var waiting []string
	for _, s := range tainted {
		if s.DeletionTimestamp.IsZero() && s.Annotations[metalv1alpha1.OperationAnnotation] != metalv1alpha1.OperationAnnotationIgnore {
			waiting = append(waiting, s.Name)
		}
	}
	if len(waiting) > 0 {
		slices.Sort(waiting)
		r.setReady(sc, metav1.ConditionFalse, metalv1alpha1.ReasonRuleDeleting,
			fmt.Sprintf("The rule is being deleted and waits until %d Server(s) no longer carry its taint: %s", len(waiting), shortList(waiting)))
		// The Servers' updates wake the rule up; this is a safety net.
		return ctrl.Result{RequeueAfter: r.Options.StatusInterval}, nil
	}
	base := rule.DeepCopy()
	controllerutil.RemoveFinalizer(rule, metalv1alpha1.ServerReadinessRuleFinalizer)
	if err := r.Patch(ctx, rule, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("removing the finalizer: %w", err)
	}
	ctrl.LoggerFrom(ctx).Info("ServerReadinessRule released: no Server carries its taint")
	sc.gone = true
	return ctrl.Result{}, nil
}

// serversCarrying lists the Servers whose ReadinessTaintsAnnotation records the rule's taint,
// from the cache (index index.ServerReadinessRule).
func (r *ServerReadinessRuleReconciler) serversCarrying(ctx context.Context, rule string) ([]metalv1alpha1.Server, error) {
	var list metalv1alpha1.ServerList
	if err := r.List(ctx, &list, client.MatchingFields{index.ServerReadinessRule: rule}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing the servers carrying the rule's taint: %w", err)
	}
	return list.Items, nil
}

// setReady sets the Ready condition, with a warning event when it turns False (other than
// for deletion).
func (r *ServerReadinessRuleReconciler) setReady(sc *ruleScope, status metav1.ConditionStatus, reason, msg string) {
	rule := sc.obj
	prev := meta.FindStatusCondition(sc.orig.Status.Conditions, metalv1alpha1.ServerReadinessRuleReady)
	meta.SetStatusCondition(&rule.Status.Conditions, metav1.Condition{
		Type: metalv1alpha1.ServerReadinessRuleReady, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: rule.Generation,
	})
	if status == metav1.ConditionFalse && reason != metalv1alpha1.ReasonRuleDeleting && (prev == nil || prev.Reason != reason) {
		sc.eventf(nil, corev1.EventTypeWarning, reason, "Enforce", "%s", msg)
	}
}

// SetupWithManager registers both controllers and their watches.
func (r *ServerReadinessRuleReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := checkSetup("ServerReadinessRuleReconciler", &r.Options, map[string]bool{"Client": r.Client != nil, "Recorder": r.Recorder != nil}); err != nil {
		return err
	}
	r.writer = objectWriter[*metalv1alpha1.ServerReadinessRule]{client: r.Client, versions: newVersions(),
		status: func(o *metalv1alpha1.ServerReadinessRule) any { return &o.Status }}
	servers := &serverReadinessReconciler{Client: r.Client, recorder: r.Recorder}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("serverreadiness").
		For(&metalv1alpha1.Server{}, builder.WithPredicates(serverChangedForReadiness())).
		Watches(&metalv1alpha1.ServerReadinessRule{}, servers.enqueueServersForRule(), builder.WithPredicates(ruleChangedForServers())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Complete(servers)
	if err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("serverreadinessrule").
		For(&metalv1alpha1.ServerReadinessRule{}, builder.WithPredicates(ownChangePredicate(false))).
		Watches(&metalv1alpha1.Server{}, r.recountRulesForServer()).
		Complete(r)
}
