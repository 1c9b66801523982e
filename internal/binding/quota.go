package binding

import (
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// QuotaLimitsFor returns the names of the quota's limits whose selectors match the server
// labels, sorted. A limit with an invalid selector matches every server: it errs on the
// side of counting.
func QuotaLimitsFor(q *fleetv1alpha1.ServerQuota, serverLabels map[string]string) []string {
	var names []string
	for _, l := range q.Spec.Hard {
		if l.Selector != nil {
			sel, err := metav1.LabelSelectorAsSelector(l.Selector)
			if err == nil && !sel.Matches(labels.Set(serverLabels)) {
				continue
			}
		}
		names = append(names, l.Name)
	}
	slices.Sort(names)
	return names
}

// QuotaAllocationOf returns the claim's allocation in the quota, or nil.
func QuotaAllocationOf(q *fleetv1alpha1.ServerQuota, claimUID string) *fleetv1alpha1.QuotaAllocation {
	for i := range q.Status.Allocations {
		if q.Status.Allocations[i].ClaimUID == claimUID {
			return &q.Status.Allocations[i]
		}
	}
	return nil
}

// QuotaUsed counts, per limit, the allocations that count against it, leaving out the
// allocation of claim skipUID ("" leaves out none).
func QuotaUsed(q *fleetv1alpha1.ServerQuota, skipUID string) map[string]int32 {
	used := map[string]int32{}
	for _, a := range q.Status.Allocations {
		if skipUID != "" && a.ClaimUID == skipUID {
			continue
		}
		for _, name := range a.Limits {
			used[name]++
		}
	}
	return used
}

// QuotaFull returns the first of limits that has no room for one more server for the claim
// (its own allocation not counted, so a claim moving to another server frees its old share),
// or "" when all have room.
func QuotaFull(q *fleetv1alpha1.ServerQuota, claimUID string, limits []string) string {
	used := QuotaUsed(q, claimUID)
	for _, l := range q.Spec.Hard {
		if slices.Contains(limits, l.Name) && used[l.Name]+1 > l.Max {
			return l.Name
		}
	}
	return ""
}

// SetQuotaAllocation puts the allocation in the quota's status, replacing the claim's
// previous one; nil limits remove the claim's allocation. It reports whether anything changed.
func SetQuotaAllocation(q *fleetv1alpha1.ServerQuota, a fleetv1alpha1.QuotaAllocation) bool {
	cur := QuotaAllocationOf(q, a.ClaimUID)
	switch {
	case len(a.Limits) == 0 && cur == nil:
		return false
	case len(a.Limits) == 0:
		q.Status.Allocations = slices.DeleteFunc(q.Status.Allocations, func(x fleetv1alpha1.QuotaAllocation) bool {
			return x.ClaimUID == a.ClaimUID
		})
		return true
	case cur == nil:
		q.Status.Allocations = append(q.Status.Allocations, a)
		return true
	case cur.Server == a.Server && cur.ClaimName == a.ClaimName && slices.Equal(cur.Limits, a.Limits):
		return false
	}
	*cur = a
	return true
}

// QuotaUsage is the status count of every limit.
func QuotaUsage(q *fleetv1alpha1.ServerQuota) []fleetv1alpha1.QuotaUsage {
	used := QuotaUsed(q, "")
	out := make([]fleetv1alpha1.QuotaUsage, 0, len(q.Spec.Hard))
	for _, l := range q.Spec.Hard {
		out = append(out, fleetv1alpha1.QuotaUsage{Name: l.Name, Used: used[l.Name], Hard: l.Max})
	}
	return out
}

// AllocationReclaimable reports whether an allocation no longer counts: its claim is gone
// (nil, or another uid), being deleted or its lease ended; or no server holds the claim
// (held: the server the claim records in spec.serverRef, else the allocation's server,
// holds it) and the allocation is older than grace (a take that never happened, e.g. its
// manager was killed in between, or a binding lost). An allocation of a claim a server holds,
// as a proposal or bound, always counts, whichever server the allocation names.
func AllocationReclaimable(a fleetv1alpha1.QuotaAllocation, claim *metalv1alpha1.ServerClaim, held bool, now time.Time, grace time.Duration) bool {
	switch {
	case claim == nil || string(claim.UID) != a.ClaimUID:
		return true
	case !claim.DeletionTimestamp.IsZero(), LeaseEnded(claim, now):
		return true
	case held:
		return false
	}
	return now.Sub(a.Since.Time) >= grace
}

// AllocationServer is the server whose hold on the claim keeps an allocation counting: the
// one the claim records, else the one the allocation names.
func AllocationServer(a fleetv1alpha1.QuotaAllocation, claim *metalv1alpha1.ServerClaim) string {
	if claim != nil && claim.Spec.ServerRef != nil {
		return claim.Spec.ServerRef.Name
	}
	return a.Server
}
