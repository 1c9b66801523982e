package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/readiness"
)

// Event reasons of the readiness controllers, on Servers.
const (
	eventReadinessTaintAdded   = "ReadinessTaintAdded"
	eventReadinessTaintRemoved = "ReadinessTaintRemoved"
)

// serverReadinessReconciler applies the readiness rules to one Server (see
// ServerReadinessRuleReconciler).
type serverReadinessReconciler struct {
	client.Client
	recorder events.EventRecorder
}

// Reconcile evaluates every rule on one Server and writes the taints and annotations they
// ask for.
func (r *serverReadinessReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	s := &metalv1alpha1.Server{}
	if err := r.Get(ctx, req.NamespacedName, s); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("reading the server: %w", err)
	}
	if ignored(s) || !s.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	// The rules are only read (PlanServer and the events): no copy of each per Server.
	var rules metalv1alpha1.ServerReadinessRuleList
	if err := r.List(ctx, &rules, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the readiness rules: %w", err)
	}
	plan := readiness.PlanServer(s, rules.Items)
	if !plan.Changed(s) {
		return ctrl.Result{}, nil
	}
	obj := s.DeepCopy()
	if _, err := patchLocked(ctx, r.Client, obj, func(o *metalv1alpha1.Server) {
		o.Spec.Taints = plan.Taints
		o.Annotations = plan.Annotations
	}); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		// A conflict: the Server changed since the cache showed it; decide again on the new copy.
		return conflictOr(ctrl.Result{}, fmt.Errorf("writing the readiness taints: %w", err), readinessConflictRetry)
	}
	r.announce(ctx, obj, plan, rules.Items)
	return ctrl.Result{}, nil
}

// announce logs and records an event for each taint added or removed.
func (r *serverReadinessReconciler) announce(ctx context.Context, s *metalv1alpha1.Server, plan readiness.Plan, rules []metalv1alpha1.ServerReadinessRule) {
	log := ctrl.LoggerFrom(ctx)
	for _, c := range plan.Changes {
		var related runtime.Object // an untyped nil when the rule is gone
		if i := slices.IndexFunc(rules, func(x metalv1alpha1.ServerReadinessRule) bool { return x.Name == c.Rule }); i >= 0 {
			related = &rules[i]
		}
		taint := taintText(c.Taint)
		if c.Added {
			log.V(1).Info("Added readiness taint", "ServerReadinessRule", c.Rule, "taint", taint)
			r.recorder.Eventf(s, related, corev1.EventTypeNormal, eventReadinessTaintAdded, "Taint",
				"ServerReadinessRule %s added taint %s: %s", c.Rule, taint, shortList(c.Unmet))
			continue
		}
		log.V(1).Info("Removed readiness taint", "ServerReadinessRule", c.Rule, "taint", taint, "why", c.Why)
		r.recorder.Eventf(s, related, corev1.EventTypeNormal, eventReadinessTaintRemoved, "Untaint",
			"ServerReadinessRule %s removed taint %s: %s", c.Rule, taint, c.Why)
	}
}

// taintText renders a taint as key=value:effect.
func taintText(t metalv1alpha1.Taint) string {
	return fmt.Sprintf("%s=%s:%s", t.Key, t.Value, t.Effect)
}

// serverChangedForReadiness lets through the Server changes a rule's verdict or a rule's
// record depends on: creation, labels, annotations, taints, the start of deletion, and the
// type or status of a condition. The server controller's other status writes are ignored.
func serverChangedForReadiness() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*metalv1alpha1.Server)
			n, ok2 := e.ObjectNew.(*metalv1alpha1.Server)
			if !ok1 || !ok2 {
				return true
			}
			return !maps.Equal(o.Labels, n.Labels) || !maps.Equal(o.Annotations, n.Annotations) ||
				!slices.Equal(o.Spec.Taints, n.Spec.Taints) || !o.DeletionTimestamp.Equal(n.DeletionTimestamp) ||
				!slices.EqualFunc(o.Status.Conditions, n.Status.Conditions, func(a, b metav1.Condition) bool {
					return a.Type == b.Type && a.Status == b.Status
				})
		},
		DeleteFunc: func(event.DeleteEvent) bool { return false },
	}
}

// ruleChangedForServers lets through the rule changes its Servers act on: creation, deletion
// and its start, a spec change, and the ignore annotation. Its finalizer and status writes are
// ignored.
func ruleChangedForServers() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return o.GetGeneration() != n.GetGeneration() ||
				!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
				o.GetAnnotations()[metalv1alpha1.OperationAnnotation] != n.GetAnnotations()[metalv1alpha1.OperationAnnotation]
		},
	}
}

// enqueueServersForRule maps a rule to the Servers it selects and those carrying its taint
// (index index.ServerReadinessRule), from the cache. A rule's selector does not change, so an
// update is mapped once, from the new object.
func (r *serverReadinessReconciler) enqueueServersForRule() handler.EventHandler {
	add := func(ctx context.Context, obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		rule, ok := obj.(*metalv1alpha1.ServerReadinessRule)
		if !ok {
			return
		}
		for _, name := range r.serversOfRule(ctx, rule) {
			q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: name}})
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
	}
}

// serversOfRule names the Servers a rule selects and those carrying its taint.
func (r *serverReadinessReconciler) serversOfRule(ctx context.Context, rule *metalv1alpha1.ServerReadinessRule) []string {
	log := ctrl.LoggerFrom(ctx)
	seen := map[string]bool{}
	list := func(opts ...client.ListOption) {
		var servers metalv1alpha1.ServerList
		if err := r.List(ctx, &servers, append(opts, client.UnsafeDisableDeepCopy)...); err != nil {
			// A map function cannot return an error; the Servers' own events still evaluate them.
			log.Error(err, "Listing the servers of a readiness rule", "ServerReadinessRule", rule.Name)
			return
		}
		for i := range servers.Items {
			seen[servers.Items[i].Name] = true
		}
	}
	if sel, err := readiness.Selector(rule); err == nil {
		list(client.MatchingLabelsSelector{Selector: sel})
	}
	list(client.MatchingFields{index.ServerReadinessRule: rule.Name})
	return slices.Sorted(maps.Keys(seen))
}

// recountRulesForServer schedules, StatusInterval later, a recount of the rules a Server
// change may count differently: those selecting it before or after the change and those
// whose taint it carries before or after. Scheduled recounts of a rule coalesce, so a rule is
// recounted at most once per StatusInterval however many of its Servers change.
func (r *ServerReadinessRuleReconciler) recountRulesForServer() handler.EventHandler {
	recount := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], servers ...*metalv1alpha1.Server) {
		var rules metalv1alpha1.ServerReadinessRuleList
		if err := r.List(ctx, &rules, client.UnsafeDisableDeepCopy); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing readiness rules to recount")
			return
		}
		for i := range rules.Items {
			rule := &rules.Items[i]
			sel, err := readiness.Selector(rule)
			for _, s := range servers {
				_, carries := metalv1alpha1.ReadinessTaints(s.Annotations)[rule.Name]
				if carries || (err == nil && sel.Matches(labels.Set(s.Labels))) {
					q.AddAfter(reconcile.Request{NamespacedName: types.NamespacedName{Name: rule.Name}}, r.Options.StatusInterval)
					break
				}
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if s, ok := e.Object.(*metalv1alpha1.Server); ok {
				recount(ctx, q, s)
			}
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			o, ok1 := e.ObjectOld.(*metalv1alpha1.Server)
			n, ok2 := e.ObjectNew.(*metalv1alpha1.Server)
			if !ok1 || !ok2 {
				return
			}
			if maps.Equal(o.Labels, n.Labels) && o.DeletionTimestamp.Equal(n.DeletionTimestamp) &&
				o.Annotations[metalv1alpha1.ReadinessTaintsAnnotation] == n.Annotations[metalv1alpha1.ReadinessTaintsAnnotation] &&
				o.Annotations[metalv1alpha1.OperationAnnotation] == n.Annotations[metalv1alpha1.OperationAnnotation] {
				return
			}
			recount(ctx, q, o, n)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if s, ok := e.Object.(*metalv1alpha1.Server); ok {
				recount(ctx, q, s)
			}
		},
	}
}
