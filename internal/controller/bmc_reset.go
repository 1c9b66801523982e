package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/metrics"
)

// BMC resets: the reset operations of the operation annotation on a BMC, and the automatic
// reset of a BMC whose Redfish service keeps failing. Both send a Redfish Manager.Reset and
// return at once; the next reconciles judge whether the BMC came back.
//
// Condition Reset:
//
//	True  UserRequested, AutoResetting  a reset was sent at status.lastResetTime; the BMC is
//	                                    given ResetWaitingInterval to answer again
//	False ResetComplete                 the BMC answered after the reset
//	False ResetTimedOut                 it did not within ResetWaitingInterval
//	False ResetFailed                   the reset could not be sent, or the BMC refused it
//	False ResetLimitReached             a reset was due, but MaxResetsPerHour resets were
//	                                    sent within the last hour
//
// What a reset is for: a BMC whose Redfish service answers but fails – HTTP 5xx (Ready=False,
// Unreachable) or an answer no other reason describes (BMCError) – for longer than
// FailureResetDelay: a hung service that restarting the manager cures. A BMC that does not
// answer at all (connection refused, timeout, no such name) cannot take a Redfish reset, and
// a network or power fault is not cured by one; wrong credentials or certificates are for the
// user to fix. Every reset sent, the user's included, is recorded in status.resetTimes, so
// that the bound per hour holds across restarts of the manager.

// bmcResetOperations maps the operation annotation values that reset a BMC to the reset
// type sent. The reference resets over SSH for force-ssh-reset-bmc; this operator has no
// SSH client and sends the forced Redfish reset instead, which is what the reference's SSH
// commands (racreset, resetsp, reset /map1) do on the vendors it supports.
var bmcResetOperations = map[string]bmc.ResetType{
	metalv1alpha1.OperationAnnotationGracefulRestartBMC: bmc.ResetGracefulRestart,
	metalv1alpha1.OperationAnnotationForceResetBMC:      bmc.ResetForceRestart,
}

// handleOperation acts on the operation annotation of a BMC: a BMC reset is sent and the
// annotation removed; a server reset value is removed with a Warning (it belongs on a
// Server); any other value is left alone. done reports that the reconcile ends here.
func (r *BMCReconciler) handleOperation(ctx context.Context, sc *bmcScope, conn bmc.ManagerController) (ctrl.Result, bool, error) {
	op, ok := sc.obj.Annotations[metalv1alpha1.OperationAnnotation]
	if !ok {
		return ctrl.Result{}, false, nil
	}
	t, isBMCReset := bmcResetOperations[op]
	if _, isServerReset := resetOperations[op]; !isBMCReset && !isServerReset {
		return ctrl.Result{}, false, nil
	}
	// The annotation goes first: a reset is sent at most once for it.
	if err := r.writer.patchSpec(ctx, sc, func(o *metalv1alpha1.BMC) { delete(o.Annotations, metalv1alpha1.OperationAnnotation) }); err != nil {
		return ctrl.Result{}, true, err
	}
	if !isBMCReset {
		sc.eventf(nil, corev1.EventTypeWarning, "UnsupportedOperation", "Operation",
			"Operation %q resets a server, not a BMC: set it on the Server; the annotation was removed", op)
		return ctrl.Result{}, false, nil
	}
	// A failed reset is recorded as Reset=False/ResetFailed; either way the BMC is read again
	// in the next reconcile, so that one reconcile sends at most one reset.
	_ = r.sendReset(ctx, sc, conn, t, metalv1alpha1.ReasonUserRequested)
	return ctrl.Result{RequeueAfter: r.retryMin()}, true, nil
}

// sendReset sends a reset of type t to the BMC and records it: Reset=True with reason,
// status.lastResetTime and status.resetTimes, or Reset=False/ResetFailed.
func (r *BMCReconciler) sendReset(ctx context.Context, sc *bmcScope, conn bmc.ManagerController, t bmc.ResetType, reason string) error {
	obj := sc.obj
	now := metav1.Now()
	err := conn.ResetManager(ctx, t)
	if errors.Is(err, bmc.ErrNotSupported) && t == bmc.ResetGracefulRestart && reason == metalv1alpha1.ReasonAutoResetting {
		// A BMC that offers only the forced reset gets that.
		t = bmc.ResetForceRestart
		err = conn.ResetManager(ctx, t)
	}
	if !errors.Is(err, bmc.ErrNotSupported) {
		// Sent, whatever came of it: it counts towards the bound per hour.
		times := append(recentResets(obj, now.Time), now)
		obj.Status.ResetTimes = times[max(0, len(times)-maxResetTimes):]
	}
	if err != nil {
		metrics.BMCResets.WithLabelValues(reason, "failed").Inc()
		msg := fmt.Sprintf("Reset %s of the BMC failed: %s", t, access.Message(err))
		r.setCondition(obj, metalv1alpha1.BMCReset, metav1.ConditionFalse, metalv1alpha1.ReasonResetFailed, msg)
		sc.eventf(nil, corev1.EventTypeWarning, metalv1alpha1.ReasonResetFailed, "Reset", "%s", msg)
		return err
	}
	metrics.BMCResets.WithLabelValues(reason, "sent").Inc()
	obj.Status.LastResetTime = &now
	why := "as the operation annotation asked"
	if reason == metalv1alpha1.ReasonAutoResetting {
		why = "after its Redfish service failed for longer than " + r.Options.FailureResetDelay.String()
	}
	r.setCondition(obj, metalv1alpha1.BMCReset, metav1.ConditionTrue, reason,
		fmt.Sprintf("Reset %s sent %s; waiting up to %s for the BMC to come back", t, why, r.Options.ResetWaitingInterval))
	sc.eventf(nil, corev1.EventTypeNormal, "BMCReset", "Reset", "Reset %s sent %s", t, why)
	return nil
}

// maxResetTimes is the most resets status.resetTimes holds (its MaxItems): more than that
// within an hour can only be the user's, and the oldest are dropped.
const maxResetTimes = 64

// recentResets returns the resets of status.resetTimes within the hour before now.
func recentResets(obj *metalv1alpha1.BMC, now time.Time) []metav1.Time {
	var out []metav1.Time
	for _, t := range obj.Status.ResetTimes {
		if now.Sub(t.Time) < time.Hour {
			out = append(out, t)
		}
	}
	return out
}

// failedReset is failed for a BMC that was reached: while a reset is pending it waits for
// the BMC to come back; otherwise it resets a BMC whose service has been failing for longer
// than FailureResetDelay.
func (r *BMCReconciler) failedReset(ctx context.Context, sc *bmcScope, conn bmc.ManagerController, err error) (ctrl.Result, error) {
	res, ferr := r.failed(ctx, sc, err)
	if ferr != nil {
		return res, ferr
	}
	if wait, pending := r.resetPending(sc); pending {
		return ctrl.Result{RequeueAfter: min(res.RequeueAfter, wait)}, nil
	}
	if after := r.autoReset(ctx, sc, conn, err); after > 0 {
		res.RequeueAfter = min(res.RequeueAfter, after)
	}
	return res, nil
}

// resetPending reports whether the BMC was reset less than ResetWaitingInterval ago, with the
// time left; once that has passed, it records that the reset timed out.
func (r *BMCReconciler) resetPending(sc *bmcScope) (time.Duration, bool) {
	obj := sc.obj
	c := bmcCondition(obj, metalv1alpha1.BMCReset)
	if c.Status != metav1.ConditionTrue {
		return 0, false
	}
	since := c.LastTransitionTime.Time
	if obj.Status.LastResetTime != nil {
		since = obj.Status.LastResetTime.Time
	}
	if left := r.Options.ResetWaitingInterval - time.Since(since); left > 0 {
		return left, true
	}
	msg := fmt.Sprintf("The BMC did not answer within %s after the reset", r.Options.ResetWaitingInterval)
	r.setCondition(obj, metalv1alpha1.BMCReset, metav1.ConditionFalse, metalv1alpha1.ReasonResetTimedOut, msg)
	sc.eventf(nil, corev1.EventTypeWarning, metalv1alpha1.ReasonResetTimedOut, "Reset", "%s", msg)
	return 0, false
}

// resetComplete records that the BMC answers again after a reset.
func (r *BMCReconciler) resetComplete(sc *bmcScope) {
	obj := sc.obj
	if bmcCondition(obj, metalv1alpha1.BMCReset).Status != metav1.ConditionTrue {
		return
	}
	r.setCondition(obj, metalv1alpha1.BMCReset, metav1.ConditionFalse, metalv1alpha1.ReasonResetComplete,
		"The BMC answers again after the reset")
	sc.eventf(nil, corev1.EventTypeNormal, metalv1alpha1.ReasonResetComplete, "Reset", "The BMC answers again after the reset")
}

// resettable reports whether err is a failure a reset of the BMC may cure: the BMC answered
// with HTTP 5xx, or with something no other reason describes.
func resettable(ctx context.Context, err error) bool {
	reason, _ := bmcFailureReason(ctx, err)
	return reason == metalv1alpha1.ReasonBMCError ||
		(reason == metalv1alpha1.ReasonBMCUnreachable && access.StatusCode(err) >= 500)
}

// autoReset resets the BMC if its service has been failing (Ready=False) for longer than
// FailureResetDelay and fewer than MaxResetsPerHour resets were sent within the last hour.
// It returns when to look again for it (0: nothing to wait for).
func (r *BMCReconciler) autoReset(ctx context.Context, sc *bmcScope, conn bmc.ManagerController, err error) time.Duration {
	obj := sc.obj
	delay := r.Options.FailureResetDelay
	ready := falseCondition(obj.Status.Conditions, metalv1alpha1.BMCReady)
	if delay <= 0 || ready == nil || !resettable(ctx, err) {
		return 0
	}
	now := time.Now()
	if failing := now.Sub(ready.LastTransitionTime.Time); failing < delay {
		return delay - failing
	}
	if recent := recentResets(obj, now); len(recent) >= r.Options.MaxResetsPerHour {
		next := recent[0].Add(time.Hour)
		prev := bmcCondition(obj, metalv1alpha1.BMCReset)
		msg := fmt.Sprintf("The BMC has been failing since %s, but it was reset %d time(s) within the last hour; the next reset is allowed at %s",
			ready.LastTransitionTime.UTC().Format(time.RFC3339), len(recent), next.UTC().Format(time.RFC3339))
		r.setCondition(obj, metalv1alpha1.BMCReset, metav1.ConditionFalse, metalv1alpha1.ReasonResetLimitReached, msg)
		if prev.Reason != metalv1alpha1.ReasonResetLimitReached {
			sc.eventf(nil, corev1.EventTypeWarning, metalv1alpha1.ReasonResetLimitReached, "Reset", "%s", msg)
		}
		return next.Sub(now)
	}
	if r.sendReset(ctx, sc, conn, bmc.ResetGracefulRestart, metalv1alpha1.ReasonAutoResetting) != nil {
		return 0
	}
	return r.Options.ResetWaitingInterval
}
