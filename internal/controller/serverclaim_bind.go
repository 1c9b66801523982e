package controller

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/cachelag"
	"github.com/metalfleet/metal-operator/internal/index"
)

// chooseHeld picks the server the claim keeps among those that reference it: the one it
// names, or, while it names none, the one this controller took (else the first by name).
// Servers that reference a claim naming nothing are never released here: another manager may
// be recording one of them on the claim, and only that record, fenced by the claim's
// resourceVersion, decides (see recordBinding).
func (r *ServerClaimReconciler) chooseHeld(claim *metalv1alpha1.ServerClaim, held []*metalv1alpha1.Server) *metalv1alpha1.Server {
	own, _ := r.expect.server(claim.UID)
	var chosen *metalv1alpha1.Server
	for _, s := range held {
		switch {
		case binding.Refused(s, claim):
			continue
		case claim.Spec.ServerRef != nil || s.Name == own:
			return s
		case chosen == nil || s.Name < chosen.Name:
			chosen = s
		}
	}
	return chosen
}

// releaseRefused releases the servers that reference the claim although it names another
// server: a lost race (another manager recorded its own pick first) or a binding undone by
// hand. The claim's spec.serverRef is immutable, so this holds whatever the cache's age.
func (r *ServerClaimReconciler) releaseRefused(ctx context.Context, claim *metalv1alpha1.ServerClaim, held []*metalv1alpha1.Server) error {
	for _, s := range held {
		if binding.Refused(s, claim) {
			if err := r.releaseExtra(ctx, claim, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// heldServers returns the servers whose claim reference names this claim (the index on the
// reference's namespace/name; binding.HeldBy then compares the uid where there is one), and
// the server this controller bound but the cache does not show yet.
func (r *ServerClaimReconciler) heldServers(ctx context.Context, claim *metalv1alpha1.ServerClaim) ([]*metalv1alpha1.Server, error) {
	seen := map[string]*metalv1alpha1.Server{}
	list := &metalv1alpha1.ServerList{}
	if err := r.List(ctx, list, client.MatchingFields{index.ServerClaimKey: index.NamespacedKey(claim.Namespace, claim.Name)}); err != nil {
		return nil, fmt.Errorf("listing servers by %s: %w", index.ServerClaimKey, err)
	}
	for i := range list.Items {
		s := &list.Items[i]
		if binding.HeldBy(s, claim) {
			seen[s.Name] = s
		}
	}
	if name, ok := r.expect.server(claim.UID); ok {
		if _, observed := seen[name]; observed {
			r.expect.observedServer(claim.UID)
		} else {
			s, err := r.pendingServer(ctx, claim, name)
			if err != nil {
				return nil, err
			}
			if s != nil {
				seen[name] = s
			}
		}
	}
	held := make([]*metalv1alpha1.Server, 0, len(seen))
	for _, s := range seen {
		held = append(held, s)
	}
	return held, nil
}

// pendingServer resolves an expectation the cache does not confirm yet: within the timeout
// the write is trusted and the cached server returned as held (with the claim reference the
// write set); past it, the server is read around the cache and the expectation dropped if
// the server does not hold the claim.
func (r *ServerClaimReconciler) pendingServer(ctx context.Context, claim *metalv1alpha1.ServerClaim, name string) (*metalv1alpha1.Server, error) {
	s := &metalv1alpha1.Server{}
	if r.expect.serverAge(claim.UID) > r.Options.ExpectationTimeout {
		if err := r.APIReader.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
			if apierrors.IsNotFound(err) {
				r.expect.observedServer(claim.UID)
				return nil, nil
			}
			return nil, fmt.Errorf("confirming the binding to server %s: %w", name, err)
		}
		r.expect.observedServer(claim.UID)
		if !binding.HeldBy(s, claim) {
			return nil, nil
		}
		return s, nil
	}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			r.expect.observedServer(claim.UID)
			return nil, nil
		}
		return nil, err
	}
	if !cachelag.Older(s.ResourceVersion, r.expect.serverVersion(claim.UID)) {
		// The cache shows the take or something after it (a refusal, another claim's take):
		// it is the truth now, and the expectation is moot.
		r.expect.observedServer(claim.UID)
		if !binding.HeldBy(s, claim) {
			return nil, nil
		}
		return s, nil
	}
	// The cache predates our write: present the server as our write left it, but not as
	// Reserved, since the server controller cannot have seen the binding yet.
	s.Spec.ServerClaimRef = claimRefOf(claim)
	s.Spec.BootConfigurationRef = bootConfigurationRefOf(claim)
	if s.Status.State == metalv1alpha1.ServerStateReserved {
		s.Status.State = metalv1alpha1.ServerStateAvailable
	}
	return s, nil
}

// bind looks for a server for an unbound claim and takes it.
func (r *ServerClaimReconciler) bind(ctx context.Context, claim *metalv1alpha1.ServerClaim, sel labels.Selector) (ctrl.Result, error) {
	if claim.Spec.ServerRef != nil {
		return r.bindByName(ctx, claim, sel)
	}
	excluded := map[string]bool{}
	matchLabels := map[string]string(nil)
	if claim.Spec.ServerSelector != nil {
		matchLabels = claim.Spec.ServerSelector.MatchLabels
	}
	score, err := r.placementScore(ctx, claim)
	if err != nil {
		return ctrl.Result{}, err
	}
	quotas, err := r.namespaceQuotas(ctx, claim.Namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	var overQuota *quotaExceededError
	quotaRefusals := 0
	const attempts = 4
	busy := false
	for range attempts {
		cand, ok, held := r.Pool.PickBest(sel, matchLabels, string(claim.UID), func(c binding.Candidate) bool {
			if excluded[c.Name] || !binding.Tolerates(c.Taints, claim.Spec.Tolerations) {
				return false
			}
			if qe := quotaBlocks(quotas, claim, c.Labels); qe != nil {
				overQuota = qe
				return false
			}
			return true
		}, score)
		if !ok {
			busy = held
			break
		}
		excluded[cand.Name] = true
		s, err := r.takeCandidate(ctx, claim, sel, cand.Name)
		if qe, ok := asQuotaExceeded(err); ok {
			overQuota, quotaRefusals = qe, quotaRefusals+1
			continue
		}
		if err != nil {
			return ctrl.Result{}, err
		}
		if s != nil {
			return r.ensureBound(ctx, claim, s)
		}
	}
	if overQuota != nil && !busy && quotaRefusals == len(excluded) {
		// Every fitting server it could have taken is over a quota's limit.
		return r.setUnbound(ctx, claim, metalv1alpha1.ReasonQuotaExceeded, overQuota.Error(), true)
	}
	if len(excluded) > 0 || busy {
		// Candidates were there but taken by others meanwhile, or are being tried by other
		// workers: look again soon, without writing a status that would be stale at once.
		return ctrl.Result{RequeueAfter: r.Options.UnboundRetryMin / 4}, nil
	}
	msg := "No Available, powered-off, uncordoned server matches the claim's selector and tolerations"
	if claim.Spec.ServerSelector == nil {
		msg = "No Available, powered-off, uncordoned server whose taints the claim tolerates"
	}
	return r.setUnbound(ctx, claim, metalv1alpha1.ReasonNoMatchingServer, msg, true)
}

// takeCandidate tries to take a server the pool handed out, and hands it back unless taken.
// It returns the server when the claim took it, nil when it was not free after all.
func (r *ServerClaimReconciler) takeCandidate(ctx context.Context, claim *metalv1alpha1.ServerClaim, sel labels.Selector, name string) (*metalv1alpha1.Server, error) {
	defer r.Pool.Done(name)
	s := &metalv1alpha1.Server{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			r.Pool.Forget(name)
			return nil, nil
		}
		return nil, err
	}
	if reason, _ := binding.Check(s, claim, sel); reason != "" {
		r.Pool.Observe(s)
		return nil, nil
	}
	taken, err := r.take(ctx, claim, s)
	if err != nil || !taken {
		return nil, err
	}
	return s, nil
}

// bindByName binds the server named by spec.serverRef, or says why it cannot.
func (r *ServerClaimReconciler) bindByName(ctx context.Context, claim *metalv1alpha1.ServerClaim, sel labels.Selector) (ctrl.Result, error) {
	name := claim.Spec.ServerRef.Name
	s := &metalv1alpha1.Server{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return r.setUnbound(ctx, claim, metalv1alpha1.ReasonServerNotFound,
				fmt.Sprintf("Server %s does not exist", name), true)
		}
		return ctrl.Result{}, err
	}
	if reason, msg := binding.Check(s, claim, sel); reason != "" {
		return r.setUnbound(ctx, claim, reason, msg, true)
	}
	taken, err := r.take(ctx, claim, s)
	if qe, ok := asQuotaExceeded(err); ok {
		return r.setUnbound(ctx, claim, metalv1alpha1.ReasonQuotaExceeded, qe.Error(), true)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if !taken {
		return ctrl.Result{RequeueAfter: r.Options.UnboundRetryMin / 4}, nil
	}
	return r.ensureBound(ctx, claim, s)
}

// take writes the binding onto the server: claim reference (with uid) and boot
// configuration reference in one patch, guarded by the server's resourceVersion as the
// cache saw it. It returns false when the server changed meanwhile (someone else may have
// taken it): the caller picks again.
//
// Before it, the claim consumes its share of the namespace's ServerQuotas (consumeQuotas):
// a *quotaExceededError when a limit has no room.
func (r *ServerClaimReconciler) take(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) (bool, error) {
	if err := r.consumeQuotas(ctx, claim, s); err != nil {
		return false, err
	}
	base := s.DeepCopy()
	s.Spec.ServerClaimRef = claimRefOf(claim)
	s.Spec.BootConfigurationRef = bootConfigurationRefOf(claim)
	err := r.Patch(ctx, s, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	switch {
	case err == nil:
		r.expect.setServer(claim.UID, s.Name, s.ResourceVersion)
		r.Pool.Taken(s.Name, s.ResourceVersion)
		ctrl.LoggerFrom(ctx).V(1).Info("Took server", "Server", klog.KObj(s))
		return true, nil
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		r.Pool.Drop(s.Name) // the cache is behind; the informer puts it back if it is still free
		return false, nil
	default:
		return false, fmt.Errorf("binding server %s: %w", s.Name, err)
	}
}

// ensureBound completes a binding and reports it: the claim records the server (the fence,
// see recordBinding), the boot configuration is made, then the claim's status.
func (r *ServerClaimReconciler) ensureBound(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(claim, metalv1alpha1.ServerClaimFinalizer) || claim.Spec.ServerRef == nil {
		recorded, err := r.recordBinding(ctx, claim, s)
		if err != nil {
			return ctrl.Result{}, err
		}
		if !recorded {
			return ctrl.Result{RequeueAfter: r.Options.UnboundRetryMin / 4}, nil
		}
	}
	if err := r.syncAllocations(ctx, claim, s); err != nil {
		return ctrl.Result{}, err
	}
	sbc, sbcProblem, err := r.ensureBootConfiguration(ctx, claim, s)
	if err != nil {
		return ctrl.Result{}, err
	}

	if !binding.TakenUp(s, claim) {
		// The server controller has not taken up the binding yet. Its Reserved write wakes
		// this claim; only if it is slow does the claim say what it waits for.
		waited := time.Since(claim.CreationTimestamp.Time)
		if age, ok := r.expect.takenFor(claim.UID); ok {
			waited = age
		}
		if claim.Status.Phase == "" && waited < r.Options.ServerReservedGrace {
			return ctrl.Result{RequeueAfter: r.Options.ServerReservedGrace - waited}, nil
		}
		state := string(s.Status.State)
		if state == "" {
			state = "not yet reconciled"
		}
		return r.setWaiting(ctx, claim, fmt.Sprintf("Server %s is %s; waiting for it to be Reserved", s.Name, state))
	}

	ready := binding.ReadyCondition(claim, s, sbc, sbcProblem)
	return r.setBound(ctx, claim, s, ready)
}

// recordBinding writes the claim's side of the binding: its finalizer and spec.serverRef.
// Recording a server on a claim that names none is the decision that the claim takes it, and
// it is fenced by the claim's resourceVersion as this reconcile read it, as the server patch
// that took the server was fenced by the server's: of two managers that each took a server
// for the same claim, exactly one records its server, and the other finds the claim naming
// another server and releases its own (Refused). It returns false when the claim was not
// recorded; the caller looks again shortly.
func (r *ServerClaimReconciler) recordBinding(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) (bool, error) {
	base := claim.DeepCopy()
	controllerutil.AddFinalizer(claim, metalv1alpha1.ServerClaimFinalizer)
	patch := client.MergeFrom(base)
	if claim.Spec.ServerRef == nil {
		claim.Spec.ServerRef = &metalv1alpha1.LocalObjectReference{Name: s.Name}
		patch = client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	}
	err := r.Patch(ctx, claim, patch)
	switch {
	case err == nil:
		r.versions.Expect(versionKey(claim), claim.ResourceVersion)
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil // gone: its servers are released as orphans
	case !apierrors.IsConflict(err):
		return false, fmt.Errorf("recording server %s on the claim: %w", s.Name, err)
	}
	// The claim changed since it was read; perhaps another manager recorded its own server.
	live := &metalv1alpha1.ServerClaim{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(claim), live); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if live.UID == claim.UID && binding.Refused(s, live) {
		ctrl.LoggerFrom(ctx).V(1).Info("Claim recorded another server; releasing ours",
			"Server", klog.KObj(s), "recorded", live.Spec.ServerRef.Name)
		return false, r.clearServerRefs(ctx, live, s)
	}
	return false, nil
}

func claimSelector(claim *metalv1alpha1.ServerClaim) (labels.Selector, error) {
	if claim.Spec.ServerSelector == nil {
		return nil, nil
	}
	return metav1.LabelSelectorAsSelector(claim.Spec.ServerSelector)
}

func claimRefOf(claim *metalv1alpha1.ServerClaim) *metalv1alpha1.ImmutableObjectReference {
	return &metalv1alpha1.ImmutableObjectReference{Namespace: claim.Namespace, Name: claim.Name, UID: string(claim.UID)}
}

func bootConfigurationRefOf(claim *metalv1alpha1.ServerClaim) *metalv1alpha1.ObjectReference {
	return &metalv1alpha1.ObjectReference{Namespace: claim.Namespace, Name: claim.Name}
}
