package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
)

// conditionResolution is the resolution of a condition's LastTransitionTime once it went
// through the API server; timeouts measured from it are rounded up by as much.
const conditionResolution = time.Second

// ensureOff drives the server towards a BMC-confirmed Off without waiting: a graceful shutdown
// first, recorded in condition condType (True, reason PowerOffIssued), and a forced one once
// PowerOffTimeout has passed since (reason ForceOffIssued). It reports whether the BMC reports
// the server off. The condition is set False by observe once the server is off.
func (r *ServerReconciler) ensureOff(ctx context.Context, sc *serverScope, condType string) (bool, error) {
	s := sc.obj
	meta.RemoveStatusCondition(&s.Status.Conditions, metalv1alpha1.ServerPowerOnQueued) // never waits
	if sc.power == bmc.PowerStateOff {
		return true, nil
	}
	supersede(s, metalv1alpha1.ServerPoweringOn)
	cond := findCondition(s, condType)
	requested := cond != nil && cond.Status == metav1.ConditionTrue
	uri := s.Spec.SystemURI
	switch {
	case !requested && sc.power == bmc.PowerStatePoweringOn:
		// Let the running power-on end first; the BMC would refuse a shutdown now.
		return false, nil
	case !requested:
		if err := sc.bmc.PowerOff(ctx, uri); err != nil {
			return false, fmt.Errorf("requesting a graceful shutdown: %w", err)
		}
		startCondition(s, condType, metalv1alpha1.ReasonPowerOffIssued,
			fmt.Sprintf("Graceful shutdown requested; the server is forced off if it is not off within %s", r.Options.PowerOffTimeout))
	case r.timedOut(cond):
		if err := sc.bmc.ForcePowerOff(ctx, uri); err != nil {
			return false, fmt.Errorf("forcing the server off: %w", err)
		}
		startCondition(s, condType, metalv1alpha1.ReasonForceOffIssued,
			fmt.Sprintf("The server was not off within %s of the request; forced off", r.Options.PowerOffTimeout))
		sc.eventf(nil, corev1.EventTypeWarning, "ForcedPowerOff", "PowerOff",
			"The server did not shut down within %s; it was forced off", r.Options.PowerOffTimeout)
	}
	return false, nil
}

// ensureOn drives the server towards a BMC-confirmed On without waiting (a plain power-on: it
// boots from disk), recorded in condition PoweringOn. A power-on that did not take effect
// within PowerOffTimeout is sent again. It reports whether the BMC reports the server on.
func (r *ServerReconciler) ensureOn(ctx context.Context, sc *serverScope) (bool, error) {
	s := sc.obj
	if sc.power == bmc.PowerStateOn {
		return true, nil
	}
	supersede(s, metalv1alpha1.ServerPoweringOff, metalv1alpha1.ServerWaitingForPowerOff)
	if sc.power == bmc.PowerStatePoweringOn || sc.power == bmc.PowerStatePoweringOff {
		// A transition is running; the BMC would refuse a power-on now.
		return false, nil
	}
	if cond := findCondition(s, metalv1alpha1.ServerPoweringOn); cond != nil && cond.Status == metav1.ConditionTrue && !r.timedOut(cond) {
		return false, nil
	}
	if ok, _, err := r.powerQueue.admit(ctx, s); !ok || err != nil {
		return false, err // queued: looked at again after TransitionPollInterval
	}
	if err := sc.bmc.PowerOn(ctx, s.Spec.SystemURI); err != nil {
		return false, fmt.Errorf("powering on: %w", err)
	}
	startCondition(s, metalv1alpha1.ServerPoweringOn, metalv1alpha1.ReasonPowerOnIssued, "Power-on requested")
	return false, nil
}

// timedOut reports whether PowerOffTimeout has passed since cond's last transition.
func (r *ServerReconciler) timedOut(cond *metav1.Condition) bool {
	return time.Since(cond.LastTransitionTime.Time) >= r.Options.PowerOffTimeout+conditionResolution
}

// findCondition returns the condition of type t, or nil.
func findCondition(s *metalv1alpha1.Server, t string) *metav1.Condition {
	return meta.FindStatusCondition(s.Status.Conditions, t)
}

// setCondition sets a condition; its LastTransitionTime changes only with its status. The
// observed generation is left out on purpose: a spec change alone (a claim reference) must
// not rewrite every condition.
func setCondition(s *metalv1alpha1.Server, t string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason, Message: msg})
}

// startCondition sets a condition True with LastTransitionTime now, even if it was True
// already: it records when a request was (re)issued, for the timeouts.
func startCondition(s *metalv1alpha1.Server, t, reason, msg string) {
	restartCondition(s, t, metav1.ConditionTrue, reason, msg)
}

// restartCondition sets a condition with LastTransitionTime now, whatever it was: it records
// when something started (a request, an agent boot attempt), for its timeout.
func restartCondition(s *metalv1alpha1.Server, t string, status metav1.ConditionStatus, reason, msg string) {
	meta.RemoveStatusCondition(&s.Status.Conditions, t)
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{
		Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.Now(),
	})
}

// settleCondition sets a True in-flight condition False: what it waited for happened.
func settleCondition(s *metalv1alpha1.Server, t, reason, msg string) {
	if c := findCondition(s, t); c != nil && c.Status == metav1.ConditionTrue {
		setCondition(s, t, metav1.ConditionFalse, reason, msg)
	}
}

// supersede sets True in-flight conditions False: the power is now driven the other way.
func supersede(s *metalv1alpha1.Server, types ...string) {
	for _, t := range types {
		settleCondition(s, t, metalv1alpha1.ReasonPowerSuperseded, "Superseded by a power change the other way")
	}
}

// serverPowerState maps a BMC power state to the API's; unknown values map to "".
func serverPowerState(p bmc.PowerState) metalv1alpha1.ServerPowerState {
	switch p {
	case bmc.PowerStateOn, bmc.PowerStateOff, bmc.PowerStatePaused, bmc.PowerStatePoweringOn, bmc.PowerStatePoweringOff:
		return metalv1alpha1.ServerPowerState(p)
	}
	return ""
}

// serverIndicatorLED maps a BMC LED state to the API's; "" when the BMC reports none.
func serverIndicatorLED(l bmc.IndicatorLED) metalv1alpha1.IndicatorLED {
	switch l {
	case bmc.IndicatorLEDLit, bmc.IndicatorLEDBlinking, bmc.IndicatorLEDOff:
		return metalv1alpha1.IndicatorLED(l)
	case "":
		return ""
	}
	return metalv1alpha1.UnknownIndicatorLED
}
