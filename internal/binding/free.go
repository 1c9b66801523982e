package binding

import (
	"k8s.io/apimachinery/pkg/labels"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// IsFree reports whether a server may be bound by some claim, before looking at the claim:
// Available, observed powered Off, not bound, not cordoned, not being deleted, not parked
// and not asked to park, and holding no claim's data it owes a wipe for (WipeOwed: the
// server controller wipes it, or records that its policy needs none, before it is free).
// Taints and selectors are the claim's business (see Check).
func IsFree(s *metalv1alpha1.Server) bool {
	return s.DeletionTimestamp.IsZero() &&
		!WipeOwed(s) &&
		s.Spec.ServerClaimRef == nil &&
		!s.Spec.Unclaimable &&
		s.Status.State == metalv1alpha1.ServerStateAvailable &&
		s.Status.PowerState == metalv1alpha1.ServerOffPowerState &&
		!IsParked(s)
}

// IsParked reports whether a server is parked (the marker, or the state) or has a park
// request pending: what binding decisions go by. The server controller's own park and
// unpark steps go by the marker alone (HasParkedMarker).
func IsParked(s *metalv1alpha1.Server) bool {
	return HasParkedMarker(s) ||
		s.Annotations[metalv1alpha1.OperationAnnotation] == metalv1alpha1.OperationAnnotationPark ||
		s.Status.State == metalv1alpha1.ServerStateParked
}

// HeldBy reports whether the server's claim reference names the claim: same namespace and
// name and, when the reference carries a uid, the same uid. A reference without uid (set by
// hand, or by an older writer) is held by whichever claim has that name, unless the server
// booted for another claim.
func HeldBy(s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim) bool {
	ref := s.Spec.ServerClaimRef
	if ref == nil || ref.Namespace != c.Namespace || ref.Name != c.Name {
		return false
	}
	if ref.UID != "" {
		return ref.UID == string(c.UID)
	}
	return !bootedForAnother(s, c)
}

// bootedForAnother reports whether the server network-booted for a claim other than c: a
// reference without uid then means that claim, gone since, not a claim re-created under its
// name, which must never inherit the running machine.
func bootedForAnother(s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim) bool {
	return s.Status.NetworkBootClaimUID != "" && s.Status.NetworkBootClaimUID != string(c.UID)
}

// Confirmed reports whether both sides of a binding agree: the server's claim reference
// names the claim (HeldBy) and the claim names the server in spec.serverRef. Only a confirmed
// binding is taken up (Reserved), powered and booted. A server that references a claim that
// names nothing yet holds a proposal; see Refused for one the claim turned down.
func Confirmed(s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim) bool {
	return HeldBy(s, c) && c.Spec.ServerRef != nil && c.Spec.ServerRef.Name == s.Name
}

// Refused reports whether the claim names a server other than s. spec.serverRef is
// immutable once set, so a refusal seen in any copy of the claim, however stale, is final:
// s may be released from the claim without asking anyone. A claim that names nothing has
// refused nothing, and a server is never released from it on that ground (a second manager
// may be about to record that very server on the claim).
func Refused(s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim) bool {
	return c.Spec.ServerRef != nil && c.Spec.ServerRef.Name != s.Name
}

// Check says why the claim cannot bind this server now, as a condition reason and message,
// or returns an empty reason when it can: the first of Rules that excludes the server. sel
// is the claim's parsed selector (nil = none).
func Check(s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim, sel labels.Selector) (reason, message string) {
	for _, r := range rules {
		if reason, message := r.Excludes(s, c, sel); reason != "" {
			return reason, message
		}
	}
	return "", ""
}
