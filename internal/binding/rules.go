package binding

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/message"
)

// TakenUp reports whether the server controller has taken up the claim's binding: the
// server is Reserved for it, or it was and is now parked, in Error or Released; a server
// that booted for the claim took it up whatever its state. A binding not taken up can be
// undone by the claim controller alone.
func TakenUp(s *metalv1alpha1.Server, claim *metalv1alpha1.ServerClaim) bool {
	if s.Status.NetworkBootClaimUID != "" && s.Status.NetworkBootClaimUID == string(claim.UID) {
		return true
	}
	switch s.Status.State {
	case metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerStateReleased,
		metalv1alpha1.ServerStateParked, metalv1alpha1.ServerStateError:
		return true
	}
	return false
}

// ReadyCondition says whether the bound server is ready for the user, and if not, why.
func ReadyCondition(claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server, sbc *metalv1alpha1.ServerBootConfiguration, sbcProblem string) metav1.Condition {
	notReady := func(reason, msg string) metav1.Condition {
		return metav1.Condition{Type: metalv1alpha1.ServerClaimReady, Status: metav1.ConditionFalse, Reason: reason, Message: msg}
	}
	switch {
	case !s.DeletionTimestamp.IsZero():
		return notReady(metalv1alpha1.ReasonServerDeleting,
			fmt.Sprintf("Server %s is being deleted; it is held until this claim is deleted", s.Name))
	case IsParked(s):
		return notReady(metalv1alpha1.ReasonServerParked, fmt.Sprintf("Server %s is parked", s.Name))
	case s.Status.State == metalv1alpha1.ServerStateError:
		return notReady(metalv1alpha1.ReasonServerError, fmt.Sprintf("Server %s is in Error", s.Name)+ServerCause(s))
	case sbcProblem != "":
		return notReady(metalv1alpha1.ReasonBootConfigurationFailed, sbcProblem)
	case sbc == nil || sbc.Status.State == "" || sbc.Status.State == metalv1alpha1.ServerBootConfigurationStatePending:
		return notReady(metalv1alpha1.ReasonBootConfigurationPending,
			fmt.Sprintf("ServerBootConfiguration %s is not Ready yet", claim.Name))
	case sbc.Status.State == metalv1alpha1.ServerBootConfigurationStateError:
		msg := fmt.Sprintf("ServerBootConfiguration %s is in Error", claim.Name)
		for _, c := range sbc.Status.Conditions {
			if c.Status == metav1.ConditionFalse && c.Message != "" {
				msg += ": " + c.Message
				break
			}
		}
		return notReady(metalv1alpha1.ReasonBootConfigurationFailed, msg)
	case claim.Spec.Power == metalv1alpha1.PowerOn && s.Status.PowerState != metalv1alpha1.ServerOnPowerState &&
		meta.IsStatusConditionTrue(s.Status.Conditions, metalv1alpha1.ServerPowerOnQueued):
		return notReady(metalv1alpha1.ReasonPowerOnQueued, fmt.Sprintf("Server %s waits for its turn to power on", s.Name))
	case claim.Spec.Power == metalv1alpha1.PowerOn && s.Status.PowerState != metalv1alpha1.ServerOnPowerState:
		return notReady(metalv1alpha1.ReasonServerPoweringOn, fmt.Sprintf("Server %s is powered %s, powering On", s.Name, powerOf(s)))
	case claim.Spec.Power == metalv1alpha1.PowerOff && s.Status.PowerState != metalv1alpha1.ServerOffPowerState:
		return notReady(metalv1alpha1.ReasonServerPoweringOff, fmt.Sprintf("Server %s is powered %s, powering Off", s.Name, powerOf(s)))
	}
	return metav1.Condition{Type: metalv1alpha1.ServerClaimReady, Status: metav1.ConditionTrue, Reason: metalv1alpha1.ReasonReady,
		Message: fmt.Sprintf("Server %s booted its configuration and is powered %s", s.Name, powerOf(s))}
}

// ServerCause says why a server cannot use its BMC, from its BMCReachable condition, for a
// claim's conditions: ": BMC Unreachable (HTTP 503) since <time>: <the condition's
// message>", the whole cut to message.MaxCondition; "" while the condition is not False. It
// quotes nothing the server's condition does not already hold, and the status code only as
// the redfish client's error wording carries it ("... (503)").
func ServerCause(s *metalv1alpha1.Server) string {
	c := meta.FindStatusCondition(s.Status.Conditions, metalv1alpha1.ServerBMCReachable)
	if c == nil || c.Status != metav1.ConditionFalse {
		return ""
	}
	cause := ": BMC " + c.Reason
	if m := httpStatusPattern.FindStringSubmatch(c.Message); m != nil {
		cause += " (HTTP " + m[1] + ")"
	}
	cause += " since " + c.LastTransitionTime.UTC().Format(time.RFC3339)
	if c.Message != "" {
		cause += ": " + c.Message
	}
	return message.Truncate(cause, message.MaxCondition)
}

// httpStatusPattern finds the HTTP status in a BMC error as the redfish client words it
// ("redfish: GET /redfish/v1/Systems/1: unavailable (503): ..."): the first three-digit
// number in parentheses, followed by a colon or the end.
var httpStatusPattern = regexp.MustCompile(`\(([1-5][0-9]{2})\)(?::|$)`)

func powerOf(s *metalv1alpha1.Server) string {
	if s.Status.PowerState == "" {
		return "unknown"
	}
	return string(s.Status.PowerState)
}

// RecoveryState is where a server goes back to once its BMC works again, once it is
// unparked, or when its status was wiped: Reserved while it holds a binding that is taken up
// (it booted for the claim it references) or confirmed (the caller read the claim, and it
// names the server); else Initial if it was never discovered, else Available, where a
// proposal is decided again (a server never goes Reserved for a claim that did not record
// it).
func RecoveryState(s *metalv1alpha1.Server, confirmed bool) metalv1alpha1.ServerState {
	switch {
	case s.Spec.ServerClaimRef != nil && (confirmed || BootedForReference(s)):
		return metalv1alpha1.ServerStateReserved
	case s.Status.Manufacturer == "" && len(s.Status.Processors) == 0:
		return metalv1alpha1.ServerStateInitial
	}
	return metalv1alpha1.ServerStateAvailable
}

// BootedForReference reports whether the server network-booted for the claim its reference
// names (by uid; a reference without uid names the claim the server last booted for).
func BootedForReference(s *metalv1alpha1.Server) bool {
	ref, booted := s.Spec.ServerClaimRef, s.Status.NetworkBootClaimUID
	return ref != nil && booted != "" && (ref.UID == "" || ref.UID == booted)
}

// ClaimIsLive reports whether claim is the one the server's claim reference means, is not
// being deleted, and is not bound to another server.
func ClaimIsLive(s *metalv1alpha1.Server, claim *metalv1alpha1.ServerClaim) bool {
	ref := s.Spec.ServerClaimRef
	switch {
	case ref.UID != "" && string(claim.UID) != ref.UID:
		return false
	case ref.UID == "" && bootedForAnother(s, claim):
		return false
	case !claim.DeletionTimestamp.IsZero():
		return false
	case claim.Spec.ServerRef != nil && claim.Spec.ServerRef.Name != s.Name:
		return false
	}
	return true
}

// CopyLabels gives a server the BMC's labels: added or updated, and removed when the BMC no
// longer has a label it gave the server (annotation BMCLabelsAnnotation remembers which: those
// it added or changed). A label the server had with the same value before the BMC had it is
// not the BMC's and stays.
func CopyLabels(s *metalv1alpha1.Server, labels map[string]string) {
	given := map[string]bool{}
	if list := s.Annotations[metalv1alpha1.BMCLabelsAnnotation]; list != "" {
		for k := range strings.SplitSeq(list, ",") {
			given[k] = true
			if _, ok := labels[k]; !ok {
				delete(s.Labels, k)
			}
		}
	}
	var keys []string
	for k, v := range labels {
		cur, ok := s.Labels[k]
		if given[k] || !ok || cur != v {
			keys = append(keys, k)
		}
		if ok && cur == v {
			continue
		}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[k] = v
	}
	slices.Sort(keys)
	if len(keys) == 0 {
		delete(s.Annotations, metalv1alpha1.BMCLabelsAnnotation)
		return
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[metalv1alpha1.BMCLabelsAnnotation] = strings.Join(keys, ",")
}

// HasParkedMarker reports whether the server carries the parked marker (whatever its
// value): the server controller sets it when it parks a server and removes it on unpark.
func HasParkedMarker(s *metalv1alpha1.Server) bool {
	_, ok := s.Annotations[metalv1alpha1.ParkedAnnotation]
	return ok
}

// WipeOwed reports whether a server holds what a claim left on its disks: it booted for a
// claim (status.networkBootClaimUID) and no wipe that succeeded or was skipped on purpose is
// recorded for that claim. A server that never booted for its claim has nothing to wipe.
func WipeOwed(s *metalv1alpha1.Server) bool {
	booted := s.Status.NetworkBootClaimUID
	if booted == "" {
		return false
	}
	w := s.Status.LastWipe
	return w == nil || w.ClaimUID != booted ||
		(w.Result != metalv1alpha1.WipeResultSucceeded && w.Result != metalv1alpha1.WipeResultSkipped &&
			w.Result != metalv1alpha1.WipeResultNotRequired)
}
