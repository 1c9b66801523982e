package binding

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// LeaseEnd is when the claim's lease ends as its spec asks now, and whether it has a lease
// that has started: status.leaseStartedAt plus spec.leaseDuration.
func LeaseEnd(c *metalv1alpha1.ServerClaim) (time.Time, bool) {
	if c.Spec.LeaseDuration == nil || c.Status.LeaseStartedAt == nil {
		return time.Time{}, false
	}
	return c.Status.LeaseStartedAt.Add(c.Spec.LeaseDuration.Duration), true
}

// LeaseEnded reports whether the claim's lease is over at now, for good: its Bound
// condition says LeaseExpired, or the end recorded in status.leaseExpiresAt has passed
// (raising the duration afterwards does not revive it), or the end the spec asks for has
// passed (a duration lowered below the time already used ends the lease at once).
func LeaseEnded(c *metalv1alpha1.ServerClaim, now time.Time) bool {
	if LeaseExpiredReported(c) {
		return true
	}
	if rec := c.Status.LeaseExpiresAt; rec != nil && !now.Before(rec.Time) {
		return true
	}
	end, ok := LeaseEnd(c)
	return ok && !now.Before(end)
}

// LeaseExpiredReported reports whether the claim's status says its lease ended (Bound
// condition with reason LeaseExpired).
func LeaseExpiredReported(c *metalv1alpha1.ServerClaim) bool {
	cond := meta.FindStatusCondition(c.Status.Conditions, metalv1alpha1.ServerClaimBound)
	return cond != nil && cond.Reason == metalv1alpha1.ReasonLeaseExpired
}

// LeaseWarning says whether the claim's lease ends within lead of now (and has not ended),
// and how long until the next lease event a controller must act on: the start of the
// warning, or the end. The wait is 0 when the claim has no running lease.
func LeaseWarning(c *metalv1alpha1.ServerClaim, now time.Time, lead time.Duration) (warn bool, next time.Duration) {
	end, ok := LeaseEnd(c)
	if !ok || LeaseEnded(c, now) {
		return false, 0
	}
	left := end.Sub(now)
	if left <= lead {
		return true, left
	}
	return false, left - lead
}
