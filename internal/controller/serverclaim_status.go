package controller

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/metrics"
)

// setUnbound records why the claim holds no server, with one status write at most and only
// when something changed. A claim that lost its server drops its boot configuration, so that
// two configurations never point at one server. retry asks for a look again after a backoff
// that grows with the time the claim has been unbound.
func (r *ServerClaimReconciler) setUnbound(ctx context.Context, claim *metalv1alpha1.ServerClaim, reason, msg string, retry bool) (ctrl.Result, error) {
	wasBound := claim.Status.Phase == metalv1alpha1.PhaseBound
	if wasBound {
		if err := r.deleteBootConfiguration(ctx, claim); err != nil {
			return ctrl.Result{}, err
		}
	}
	base := claim.DeepCopy()
	claim.Status.Phase = metalv1alpha1.PhaseUnbound
	claim.Status.ObservedGeneration = claim.Generation
	boundChanged := meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
		Type: metalv1alpha1.ServerClaimBound, Status: metav1.ConditionFalse, Reason: reason, Message: msg,
		ObservedGeneration: claim.Generation,
	})
	meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
		Type: metalv1alpha1.ServerClaimReady, Status: metav1.ConditionFalse, Reason: reason, Message: msg,
		ObservedGeneration: claim.Generation,
	})
	if err := r.patchStatus(ctx, claim, base); err != nil {
		return ctrl.Result{}, err
	}
	if wasBound {
		r.Recorder.Eventf(claim, nil, "Warning", metalv1alpha1.ReasonBindingLost, "Unbind", "Lost its server: %s", msg)
	} else if boundChanged {
		r.Recorder.Eventf(claim, nil, "Warning", reason, "Bind", "%s", msg)
	}
	if !retry {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: r.unboundBackoff(claim)}, nil
}

// setWaiting records that the claim's binding is written and waits for the server
// controller. Unlike setUnbound it keeps the boot configuration: the claim holds the server.
func (r *ServerClaimReconciler) setWaiting(ctx context.Context, claim *metalv1alpha1.ServerClaim, msg string) (ctrl.Result, error) {
	base := claim.DeepCopy()
	claim.Status.Phase = metalv1alpha1.PhaseUnbound
	claim.Status.ObservedGeneration = claim.Generation
	for _, t := range []string{metalv1alpha1.ServerClaimBound, metalv1alpha1.ServerClaimReady} {
		meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
			Type: t, Status: metav1.ConditionFalse, Reason: metalv1alpha1.ReasonWaitingForServer, Message: msg,
			ObservedGeneration: claim.Generation,
		})
	}
	if err := r.patchStatus(ctx, claim, base); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.unboundBackoff(claim)}, nil
}

// unboundBackoff grows with how long the claim has been unbound, between the configured
// bounds: a claim that just failed looks again soon, one that has waited for hours rarely.
// It is a quarter of backoffSince the Bound condition turned False.
func (r *ServerClaimReconciler) unboundBackoff(claim *metalv1alpha1.ServerClaim) time.Duration {
	return backoffSince(falseCondition(claim.Status.Conditions, metalv1alpha1.ServerClaimBound),
		4*r.Options.UnboundRetryMin, 4*r.Options.UnboundRetryMax) / 4
}

// setBound records a binding and its readiness. Like a PersistentVolumeClaim, a claim bound
// at once says so in its phase and Bound condition only; the Bound event marks the end of a
// wait the claim reported in its status (a Bound=False condition: a rejection, a lost
// binding, or a slow server controller), so that a burst of claims costs no event per
// binding.
func (r *ServerClaimReconciler) setBound(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server, ready metav1.Condition) (ctrl.Result, error) {
	wasBound := claim.Status.Phase == metalv1alpha1.PhaseBound
	waited := meta.IsStatusConditionFalse(claim.Status.Conditions, metalv1alpha1.ServerClaimBound)
	base := claim.DeepCopy()
	claim.Status.Phase = metalv1alpha1.PhaseBound
	claim.Status.ObservedGeneration = claim.Generation
	meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
		Type: metalv1alpha1.ServerClaimBound, Status: metav1.ConditionTrue, Reason: metalv1alpha1.ReasonBound,
		Message: fmt.Sprintf("Bound to server %s", s.Name), ObservedGeneration: claim.Generation,
	})
	ready.ObservedGeneration = claim.Generation
	wasReady := meta.IsStatusConditionTrue(claim.Status.Conditions, metalv1alpha1.ServerClaimReady)
	meta.SetStatusCondition(&claim.Status.Conditions, ready)
	warned := r.setLeaseStatus(claim, time.Now())
	if err := r.patchStatus(ctx, claim, base); err != nil {
		return ctrl.Result{}, err
	}
	if warned {
		c := meta.FindStatusCondition(claim.Status.Conditions, metalv1alpha1.ServerClaimLeaseExpiring)
		r.Recorder.Eventf(claim, s, "Warning", metalv1alpha1.ReasonLeaseExpiring, "Lease", "%s", c.Message)
	}
	if !wasBound {
		r.expect.reported(claim.UID)
		if waited {
			r.Recorder.Eventf(claim, s, "Normal", metalv1alpha1.ReasonBound, "Bind", "Bound to server %s", s.Name)
		}
		metrics.ObserveBound(claim)
	}
	if !wasReady && ready.Status == metav1.ConditionTrue {
		r.Recorder.Eventf(claim, s, "Normal", metalv1alpha1.ReasonReady, "Ready", "%s", ready.Message)
		metrics.ObserveReady(claim)
	}
	return ctrl.Result{}, nil
}

// patchStatus writes the claim's status if it differs from base, under the optimistic lock:
// a status decided from an older copy of the claim (a second manager, or one that stalled)
// must not overwrite a newer one.
func (r *ServerClaimReconciler) patchStatus(ctx context.Context, claim, base *metalv1alpha1.ServerClaim) error {
	return r.writer.patchStatus(ctx, &scope[*metalv1alpha1.ServerClaim]{orig: base, obj: claim})
}
