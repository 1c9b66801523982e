package controller

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
)

// Leases (spec.leaseDuration). The lease starts when the claim is first reported Bound with a
// lease (status.leaseStartedAt, written with the Bound status, no extra write) and ends at
// status.leaseExpiresAt = start + duration, recomputed from the spec on every reconcile, so
// raising the duration moves the end and a restart across the end still ends it:
//
//	Bound, lease running -- within --lease-expiry-warning of the end --> condition
//	    LeaseExpiring=True, one Warning event
//	any -- the end passed (binding.LeaseEnded) --> endLease: Bound=False LeaseExpired,
//	    boot configuration deleted, a binding the server never took up undone; the server
//	    controller sees the claim as gone (liveClaim) and releases the server as on deletion
//	LeaseExpired -- forever: the claim never binds again (reconcileNormal stops here)

// setLeaseStatus brings the lease fields of a bound claim's status up to date, in the copy
// the caller writes: the start (now, truncated to the API's resolution, if the lease has
// none), the end, and the LeaseExpiring condition. It reports whether the warning was just
// raised (the caller emits its event after the write).
func (r *ServerClaimReconciler) setLeaseStatus(claim *metalv1alpha1.ServerClaim, now time.Time) (warned bool) {
	if claim.Spec.LeaseDuration == nil {
		return false
	}
	if claim.Status.LeaseStartedAt == nil {
		claim.Status.LeaseStartedAt = &metav1.Time{Time: now.Truncate(time.Second)}
	}
	end, _ := binding.LeaseEnd(claim)
	if binding.LeaseEnded(claim, now) {
		return false // endLease records it on the next look
	}
	claim.Status.LeaseExpiresAt = &metav1.Time{Time: end}
	warn, _ := binding.LeaseWarning(claim, now, r.Options.LeaseExpiryWarning)
	if !warn {
		meta.RemoveStatusCondition(&claim.Status.Conditions, metalv1alpha1.ServerClaimLeaseExpiring)
		return false
	}
	return meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
		Type: metalv1alpha1.ServerClaimLeaseExpiring, Status: metav1.ConditionTrue,
		Reason: metalv1alpha1.ReasonLeaseExpiring, ObservedGeneration: claim.Generation,
		Message: fmt.Sprintf("The lease ends at %s; raise spec.leaseDuration to extend it", end.UTC().Format(time.RFC3339)),
	})
}

// leaseWake shortens a successful result's requeue to the claim's next lease event (the
// warning or the end), so that the end is acted on in time whatever else the claim waits for.
func (r *ServerClaimReconciler) leaseWake(claim *metalv1alpha1.ServerClaim, res ctrl.Result, err error) (ctrl.Result, error) {
	if err != nil {
		return res, err
	}
	_, next := binding.LeaseWarning(claim, time.Now(), r.Options.LeaseExpiryWarning)
	if next <= 0 {
		return res, nil
	}
	next += time.Second // past the end's one-second resolution
	if res.RequeueAfter == 0 || next < res.RequeueAfter {
		res.RequeueAfter = next
	}
	return res, nil
}

// endLease ends a claim's lease, as deletion ends a claim, but keeps the claim: its boot
// configuration is deleted, a binding its server never took up is undone here, and a taken-up
// server is released by the server controller, which sees a claim whose lease ended as gone
// (power off, reclaim policy). The status says LeaseExpired from then on; it is written first
// of all on the next looks too, so the claim is never bound again.
func (r *ServerClaimReconciler) endLease(ctx context.Context, claim *metalv1alpha1.ServerClaim) (ctrl.Result, error) {
	if err := r.deleteBootConfiguration(ctx, claim); err != nil {
		return ctrl.Result{}, err
	}
	held, err := r.heldServers(ctx, claim)
	if err != nil {
		return ctrl.Result{}, err
	}
	released := ""
	for _, s := range held {
		if binding.TakenUp(s, claim) {
			released = s.Name
			continue
		}
		if err := r.clearServerRefs(ctx, claim, s); err != nil {
			return ctrl.Result{}, err
		}
	}

	base := claim.DeepCopy()
	reported := binding.LeaseExpiredReported(claim)
	if end, ok := binding.LeaseEnd(claim); ok && !reported &&
		(claim.Status.LeaseExpiresAt == nil || end.Before(claim.Status.LeaseExpiresAt.Time)) {
		claim.Status.LeaseExpiresAt = &metav1.Time{Time: end} // a lowered duration: the end it gives
	}
	msg := "The lease ended"
	if end := claim.Status.LeaseExpiresAt; end != nil {
		msg += " at " + end.UTC().Format(time.RFC3339)
	}
	msg += "; the claim is never bound again"
	claim.Status.Phase = metalv1alpha1.PhaseUnbound
	claim.Status.ObservedGeneration = claim.Generation
	meta.RemoveStatusCondition(&claim.Status.Conditions, metalv1alpha1.ServerClaimLeaseExpiring)
	for _, t := range []string{metalv1alpha1.ServerClaimBound, metalv1alpha1.ServerClaimReady} {
		meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
			Type: t, Status: metav1.ConditionFalse, Reason: metalv1alpha1.ReasonLeaseExpired, Message: msg,
			ObservedGeneration: claim.Generation,
		})
	}
	if err := r.patchStatus(ctx, claim, base); err != nil {
		return ctrl.Result{}, err
	}
	if !reported {
		note := msg
		if released != "" {
			note = fmt.Sprintf("%s; server %s is powered off and reclaimed by its policy", msg, released)
		}
		r.Recorder.Eventf(claim, nil, "Warning", metalv1alpha1.ReasonLeaseExpired, "Release", "%s", note)
	}
	return ctrl.Result{}, nil
}
