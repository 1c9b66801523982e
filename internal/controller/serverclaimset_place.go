package controller

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/message"
)

// memberView is a set's members as observed in one reconcile.
type memberView struct {
	// byIndex are the members with an index below spec.replicas.
	byIndex map[int]*metalv1alpha1.ServerClaim
	// extra are the members at or above spec.replicas, or with a name that is not <set>-<index>.
	extra []*metalv1alpha1.ServerClaim
	// gated are the members of a pending plan; recorded those that name their server.
	gated, recorded []*metalv1alpha1.ServerClaim
	// missing are the indices below spec.replicas without a member; deleting counts the
	// members below spec.replicas being deleted.
	missing  []int
	deleting int
}

func (r *ServerClaimSetReconciler) observe(set *fleetv1alpha1.ServerClaimSet, members []*metalv1alpha1.ServerClaim) memberView {
	v := memberView{byIndex: map[int]*metalv1alpha1.ServerClaim{}}
	replicas := int(set.Spec.Replicas)
	for _, m := range members {
		i, ok := memberIndex(set, m)
		if !ok || i >= replicas {
			v.extra = append(v.extra, m)
			continue
		}
		v.byIndex[i] = m
	}
	for i := range replicas {
		m, ok := v.byIndex[i]
		switch {
		case !ok:
			v.missing = append(v.missing, i)
		case !m.DeletionTimestamp.IsZero():
			v.deleting++
		case m.Spec.ServerRef != nil:
			v.recorded = append(v.recorded, m)
		default:
			// Assigned, or (annotation removed by hand) neither: settle sees which.
			v.gated = append(v.gated, m)
		}
	}
	return v
}

// memberIndex is the index of a member named <set>-<index>.
func memberIndex(set *fleetv1alpha1.ServerClaimSet, m *metalv1alpha1.ServerClaim) (int, bool) {
	s, ok := strings.CutPrefix(m.Name, set.Name+"-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || strconv.Itoa(i) != s {
		return 0, false
	}
	return i, true
}

func memberName(set *fleetv1alpha1.ServerClaimSet, i int) string {
	return set.Name + "-" + strconv.Itoa(i)
}

// reconcileNormal deletes the members above spec.replicas, settles a pending plan, or plans
// the missing members, and reports.
func (r *ServerClaimSetReconciler) reconcileNormal(ctx context.Context, sc *setScope) (ctrl.Result, error) {
	set := sc.obj
	set.Status.ObservedGeneration = set.Generation
	key := setKey(set)
	members, err := r.members(ctx, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	if names, _, ok := r.created.Get(key); ok {
		if !allListed(names, members) {
			// Members this controller created are not in the cache yet: deciding now would
			// take them for missing.
			return ctrl.Result{RequeueAfter: cacheCatchUpDelay}, nil
		}
		r.created.Delete(key)
	}
	v := r.observe(set, members)
	for _, m := range v.extra {
		if err := r.deleteMember(ctx, m); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.report(ctx, sc, v); err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case len(v.gated) > 0:
		return r.settle(ctx, sc, v)
	case v.deleting > 0:
		// Members of a plan let go, or deleted by someone, are on their way out; their names
		// are free again once they are gone, and their deletions wake the set.
		return ctrl.Result{RequeueAfter: r.Options.RetryMin}, nil
	case len(v.missing) > 0:
		return r.place(ctx, sc, v)
	}
	r.holds.release(r.Pool, key)
	r.waiting.Delete(key)
	r.setBoundCondition(sc, v)
	return ctrl.Result{}, nil
}

func allListed(names []string, members []*metalv1alpha1.ServerClaim) bool {
	listed := make(map[string]bool, len(members))
	for _, m := range members {
		listed[m.Name] = true
	}
	for _, n := range names {
		if !listed[n] {
			return false
		}
	}
	return true
}

// place decides servers for every missing member at once (binding.PlanSet) from the free
// servers that fit the template, under the topology and around the servers of the members
// already bound, and creates the missing members, each assigned its server. When the plan is
// not whole, nothing is held and nothing created: the status says how many fit where.
func (r *ServerClaimSetReconciler) place(ctx context.Context, sc *setScope, v memberView) (ctrl.Result, error) {
	set := sc.obj
	key := setKey(set)
	tmpl := &metalv1alpha1.ServerClaim{Spec: set.Spec.Template}
	sel, err := claimSelector(tmpl)
	if err != nil {
		r.setCondition(sc, fleetv1alpha1.ServerClaimSetBound, metav1.ConditionFalse, fleetv1alpha1.ReasonInvalidTemplate,
			fmt.Sprintf("spec.template.serverSelector cannot be parsed: %v", err))
		return ctrl.Result{}, nil
	}
	held, err := r.serverLabels(ctx, v.recorded)
	if err != nil {
		return ctrl.Result{}, err
	}
	var matchLabels map[string]string
	if s := set.Spec.Template.ServerSelector; s != nil {
		matchLabels = s.MatchLabels
	}

	r.decide.Lock()
	defer r.decide.Unlock()
	r.holds.release(r.Pool, key)
	candidates := r.Pool.Free(sel, matchLabels, func(c binding.Candidate) bool {
		return binding.Tolerates(c.Taints, set.Spec.Template.Tolerations)
	})
	plan := binding.PlanSet(candidates, held, len(v.missing), levelsOf(set), set.Spec.WhenUnsatisfiable == fleetv1alpha1.BestEffort)
	if plan.Servers == nil {
		r.waiting.Store(key, true)
		r.setCondition(sc, fleetv1alpha1.ServerClaimSetBound, metav1.ConditionFalse, fleetv1alpha1.ReasonInsufficientCapacity,
			message.Truncate(plan.Shortfall(len(v.missing), 10)+"; nothing is held meanwhile", message.MaxCondition))
		c := meta.FindStatusCondition(sc.obj.Status.Conditions, fleetv1alpha1.ServerClaimSetBound)
		return ctrl.Result{RequeueAfter: backoffSince(c, r.Options.RetryMin, r.Options.RetryMax)}, nil
	}
	r.waiting.Delete(key)
	r.holds.add(r.Pool, key, plan.Servers)
	names := make([]string, 0, len(v.missing))
	id := utilrand.String(10)
	for i, idx := range v.missing {
		m, err := r.newMember(set, idx, plan.Servers[i], id)
		if err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Create(ctx, m); err != nil && !apierrors.IsAlreadyExists(err) {
			// The members created so far are a plan with members missing: the next
			// reconcile lets them go and decides again.
			r.created.Set(key, names)
			return ctrl.Result{}, fmt.Errorf("creating member %s: %w", m.Name, err)
		}
		names = append(names, m.Name)
	}
	r.created.Set(key, names)
	msg := fmt.Sprintf("Placed %d replicas; the members are taking their servers, none is powered until all hold theirs", len(names))
	if plan.Relaxed {
		msg += " (over some maxPerDomain: whenUnsatisfiable is BestEffort)"
		sc.eventf(nil, corev1.EventTypeWarning, fleetv1alpha1.ReasonTopologyRelaxed, "Place",
			"The topology cannot hold %d replicas under its limits (%d fit); placed them beyond, as evenly as possible", len(names), plan.Fit)
	}
	r.setCondition(sc, fleetv1alpha1.ServerClaimSetBound, metav1.ConditionFalse, fleetv1alpha1.ReasonBinding, msg)
	return ctrl.Result{RequeueAfter: r.Options.BindingTimeout}, nil
}

// newMember is the member claim <set>-<index>, assigned server by placement id.
func (r *ServerClaimSetReconciler) newMember(set *fleetv1alpha1.ServerClaimSet, i int, server, id string) (*metalv1alpha1.ServerClaim, error) {
	m := &metalv1alpha1.ServerClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: set.Namespace, Name: memberName(set, i),
			Annotations: map[string]string{fleetv1alpha1.AssignedServerAnnotation: server, fleetv1alpha1.PlacementAnnotation: id}},
		Spec: *set.Spec.Template.DeepCopy(),
	}
	if err := controllerutil.SetControllerReference(set, m, r.Scheme); err != nil {
		return nil, fmt.Errorf("owning member %s: %w", m.Name, err)
	}
	return m, nil
}

// serverLabels are the labels of the servers the members name, from the cache.
func (r *ServerClaimSetReconciler) serverLabels(ctx context.Context, members []*metalv1alpha1.ServerClaim) ([]map[string]string, error) {
	out := make([]map[string]string, 0, len(members))
	for _, m := range members {
		s := &metalv1alpha1.Server{}
		if err := r.Get(ctx, client.ObjectKey{Name: m.Spec.ServerRef.Name}, s); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, err
		}
		out = append(out, s.Labels)
	}
	return out, nil
}

func levelsOf(set *fleetv1alpha1.ServerClaimSet) []binding.Level {
	levels := make([]binding.Level, 0, len(set.Spec.Topology))
	for _, l := range set.Spec.Topology {
		levels = append(levels, binding.Level{Key: l.Key, MaxPerDomain: int(l.MaxPerDomain)})
	}
	return levels
}

// proposal is where one member of a pending plan stands.
type proposal int

const (
	proposalPending proposal = iota // its server is still free: the member has not taken it yet
	proposalHeld                    // its server names the member by uid
	proposalLost                    // it cannot get its server
)

// settle decides on a pending plan: record every member's server once all hold theirs, wait
// while some have not taken theirs yet, or let the whole plan go when one cannot.
func (r *ServerClaimSetReconciler) settle(ctx context.Context, sc *setScope, v memberView) (ctrl.Result, error) {
	set := sc.obj
	held, pending := 0, 0
	var lost []string
	oldest := time.Duration(0)
	placements := map[string]bool{}
	for _, m := range v.gated {
		placements[m.Annotations[fleetv1alpha1.PlacementAnnotation]] = true
		oldest = max(oldest, time.Since(m.CreationTimestamp.Time))
		state, why, err := r.proposalOf(ctx, m)
		if err != nil {
			return ctrl.Result{}, err
		}
		switch state {
		case proposalHeld:
			held++
		case proposalPending:
			pending++
		default:
			lost = append(lost, why)
		}
	}
	switch {
	case len(placements) > 1:
		lost = append(lost, fmt.Sprintf("the members come from %d placement decisions", len(placements)))
	case len(v.missing) > 0 || v.deleting > 0:
		lost = append(lost, fmt.Sprintf("%d members of the plan are missing", len(v.missing)+v.deleting))
	case len(lost) == 0 && pending > 0 && oldest > r.Options.BindingTimeout:
		lost = append(lost, fmt.Sprintf("%d members did not take their servers within %s", pending, r.Options.BindingTimeout))
	}
	if len(lost) > 0 {
		return r.letGo(ctx, sc, v, lost)
	}
	if pending > 0 {
		r.setCondition(sc, fleetv1alpha1.ServerClaimSetBound, metav1.ConditionFalse, fleetv1alpha1.ReasonBinding,
			fmt.Sprintf("%d of %d members of the placement hold their servers; none is powered until all do", held, held+pending))
		// The servers' updates wake the set; this is a safety net.
		return ctrl.Result{RequeueAfter: r.Options.RetryMin}, nil
	}
	for _, m := range v.gated {
		server := m.Annotations[fleetv1alpha1.AssignedServerAnnotation]
		if _, err := patchLocked(ctx, r.Client, m, func(c *metalv1alpha1.ServerClaim) {
			delete(c.Annotations, fleetv1alpha1.AssignedServerAnnotation)
			delete(c.Annotations, fleetv1alpha1.PlacementAnnotation)
			c.Spec.ServerRef = &metalv1alpha1.LocalObjectReference{Name: server}
			controllerutil.AddFinalizer(c, metalv1alpha1.ServerClaimFinalizer)
		}); err != nil {
			return ctrl.Result{}, fmt.Errorf("recording the server of member %s: %w", m.Name, err)
		}
	}
	r.holds.release(r.Pool, setKey(set))
	r.setCondition(sc, fleetv1alpha1.ServerClaimSetBound, metav1.ConditionFalse, fleetv1alpha1.ReasonBinding,
		fmt.Sprintf("Every member of the placement holds its server (%d); binding them", len(v.gated)))
	return ctrl.Result{RequeueAfter: r.Options.RetryMin}, nil
}

// proposalOf says where a member of a pending plan stands, and why when it lost its server.
func (r *ServerClaimSetReconciler) proposalOf(ctx context.Context, m *metalv1alpha1.ServerClaim) (proposal, string, error) {
	assigned, ok := index.SetAssignment(m)
	if !ok {
		return proposalLost, fmt.Sprintf("member %s has no assigned server", m.Name), nil
	}
	s := &metalv1alpha1.Server{}
	if err := r.Get(ctx, client.ObjectKey{Name: assigned}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return proposalLost, fmt.Sprintf("server %s of member %s is gone", assigned, m.Name), nil
		}
		return 0, "", err
	}
	ref := s.Spec.ServerClaimRef
	switch {
	case ref != nil && ref.UID == string(m.UID):
		return proposalHeld, "", nil
	case m.Status.Phase == metalv1alpha1.PhaseUnbound:
		reason := ""
		if c := meta.FindStatusCondition(m.Status.Conditions, metalv1alpha1.ServerClaimBound); c != nil {
			reason = c.Reason
		}
		return proposalLost, fmt.Sprintf("member %s cannot take server %s (%s)", m.Name, assigned, reason), nil
	case binding.IsFree(s):
		return proposalPending, "", nil
	}
	return proposalLost, fmt.Sprintf("server %s of member %s is no longer free", assigned, m.Name), nil
}

// letGo deletes the members of a pending plan, which lets the servers they took go (a
// member that names no server holds only proposals, undone once it is gone), and decides
// again after a jittered backoff, so that two sets that met on the same servers do not meet
// again in step.
func (r *ServerClaimSetReconciler) letGo(ctx context.Context, sc *setScope, v memberView, why []string) (ctrl.Result, error) {
	for _, m := range v.gated {
		if err := r.deleteMember(ctx, m); err != nil {
			return ctrl.Result{}, err
		}
	}
	r.holds.release(r.Pool, setKey(sc.obj))
	slices.Sort(why)
	msg := message.Truncate("The placement was let go and is decided again: "+shortList(why), message.MaxCondition)
	r.setCondition(sc, fleetv1alpha1.ServerClaimSetBound, metav1.ConditionFalse, fleetv1alpha1.ReasonPlacementConflict, msg)
	backoff := r.Options.RetryMin/2 + rand.N(r.Options.RetryMin) //nolint:gosec // jitter, not a secret
	return ctrl.Result{RequeueAfter: backoff}, nil
}

// report counts the members (existing, bound, ready) and the bound ones per domain.
func (r *ServerClaimSetReconciler) report(ctx context.Context, sc *setScope, v memberView) error {
	set := sc.obj
	var bound, ready int32
	levels := levelsOf(set)
	domains := map[string]int32{}
	for _, m := range v.byIndex {
		if m.Status.Phase != metalv1alpha1.PhaseBound || m.Spec.ServerRef == nil {
			continue
		}
		bound++
		if meta.IsStatusConditionTrue(m.Status.Conditions, metalv1alpha1.ServerClaimReady) {
			ready++
		}
		if len(levels) == 0 {
			continue
		}
		s := &metalv1alpha1.Server{}
		if err := r.Get(ctx, client.ObjectKey{Name: m.Spec.ServerRef.Name}, s); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return err
		}
		if d, ok := binding.DomainOf(s.Labels, levels); ok {
			domains[d]++
		}
	}
	set.Status.Replicas = int32(len(v.byIndex))
	set.Status.Bound, set.Status.Ready = bound, ready
	set.Status.Domains = nil
	for _, d := range slices.Sorted(maps.Keys(domains)) {
		if len(set.Status.Domains) == maxStatusDomains {
			break
		}
		set.Status.Domains = append(set.Status.Domains, fleetv1alpha1.DomainStatus{Domain: d, Replicas: domains[d]})
	}
	set.Status.Phase = metalv1alpha1.PhaseUnbound
	if bound == set.Spec.Replicas {
		set.Status.Phase = metalv1alpha1.PhaseBound
	}
	if ready == set.Spec.Replicas {
		r.setCondition(sc, fleetv1alpha1.ServerClaimSetReady, metav1.ConditionTrue, fleetv1alpha1.ReasonReady,
			fmt.Sprintf("All %d replicas are Ready", ready))
	} else {
		r.setCondition(sc, fleetv1alpha1.ServerClaimSetReady, metav1.ConditionFalse, fleetv1alpha1.ReasonMembersNotReady,
			fmt.Sprintf("%d of %d replicas are Ready", ready, set.Spec.Replicas))
	}
	return nil
}

// maxStatusDomains bounds status.domains (the API's MaxItems).
const maxStatusDomains = 1024

// setBoundCondition says whether every member is bound, once no plan is pending.
func (r *ServerClaimSetReconciler) setBoundCondition(sc *setScope, v memberView) {
	set := sc.obj
	if set.Status.Bound == set.Spec.Replicas {
		r.setCondition(sc, fleetv1alpha1.ServerClaimSetBound, metav1.ConditionTrue, fleetv1alpha1.ReasonBound,
			fmt.Sprintf("All %d replicas hold their servers", set.Status.Bound))
		return
	}
	r.setCondition(sc, fleetv1alpha1.ServerClaimSetBound, metav1.ConditionFalse, fleetv1alpha1.ReasonBinding,
		fmt.Sprintf("%d of %d replicas are bound; the others are binding the servers they recorded", set.Status.Bound, set.Spec.Replicas))
}

// setCondition sets a condition of the set; a change of the Bound condition's reason is an
// event (a warning while the set cannot be placed).
func (r *ServerClaimSetReconciler) setCondition(sc *setScope, t string, status metav1.ConditionStatus, reason, msg string) {
	prev := meta.FindStatusCondition(sc.orig.Status.Conditions, t)
	meta.SetStatusCondition(&sc.obj.Status.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason,
		Message: msg, ObservedGeneration: sc.obj.Generation})
	if t != fleetv1alpha1.ServerClaimSetBound || (prev != nil && prev.Reason == reason) {
		return
	}
	switch reason {
	case fleetv1alpha1.ReasonBound:
		sc.eventf(nil, corev1.EventTypeNormal, reason, "Bind", "%s", msg)
	case fleetv1alpha1.ReasonInsufficientCapacity, fleetv1alpha1.ReasonPlacementConflict, fleetv1alpha1.ReasonInvalidTemplate:
		sc.eventf(nil, corev1.EventTypeWarning, reason, "Place", "%s", msg)
	}
}

// serverEventHandler keeps the shared pool current and maps a server event to the set whose
// member its claim reference names (through the cached claim's controller reference), and a
// server turning free to the sets waiting for capacity.
func (r *ServerClaimSetReconciler) serverEventHandler() handler.EventHandler {
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q claimQueue) {
			s := e.Object.(*metalv1alpha1.Server)
			r.Pool.Observe(s)
			r.enqueueSetOf(ctx, s, q)
			if binding.IsFree(s) {
				r.wakeWaiting(q)
			}
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q claimQueue) {
			old, s := e.ObjectOld.(*metalv1alpha1.Server), e.ObjectNew.(*metalv1alpha1.Server)
			r.Pool.Observe(s)
			freed := binding.IsFree(s) && !binding.IsFree(old)
			// A set cares about its servers' claim references, states and labels (domains),
			// not about the power polls and inventory of servers it holds.
			if binding.IsFree(s) != binding.IsFree(old) || !equality.Semantic.DeepEqual(old.Spec.ServerClaimRef, s.Spec.ServerClaimRef) ||
				old.Status.State != s.Status.State || !maps.Equal(old.Labels, s.Labels) {
				r.enqueueSetOf(ctx, old, q)
				r.enqueueSetOf(ctx, s, q)
			}
			if freed {
				r.wakeWaiting(q)
			}
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q claimQueue) {
			s, ok := e.Object.(*metalv1alpha1.Server)
			if !ok {
				return
			}
			r.Pool.Forget(s.Name)
			r.enqueueSetOf(ctx, s, q)
		},
	}
}

func (r *ServerClaimSetReconciler) enqueueSetOf(ctx context.Context, s *metalv1alpha1.Server, q claimQueue) {
	ref := s.Spec.ServerClaimRef
	if ref == nil {
		return
	}
	claim := &metalv1alpha1.ServerClaim{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, claim); err != nil {
		return
	}
	if set, ok := index.ClaimSetOf(claim); ok {
		q.Add(setRequest(claim.Namespace, set))
	}
}

// wakeWaitingSets bounds the sets one freed server wakes; the others decide on their backoff.
const wakeWaitingSets = 16

func (r *ServerClaimSetReconciler) wakeWaiting(q claimQueue) {
	n := 0
	r.waiting.Range(func(k, _ any) bool {
		ns, name, _ := strings.Cut(k.(string), "/")
		q.Add(setRequest(ns, name))
		n++
		return n < wakeWaitingSets
	})
}
