package binding

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

func testQuota(allocs ...fleetv1alpha1.QuotaAllocation) *fleetv1alpha1.ServerQuota {
	return &fleetv1alpha1.ServerQuota{
		Spec: fleetv1alpha1.ServerQuotaSpec{Hard: []fleetv1alpha1.QuotaLimit{
			{Name: "gpu", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"type": "gpu"}}, Max: 2},
			{Name: "all", Max: 3},
		}},
		Status: fleetv1alpha1.ServerQuotaStatus{Allocations: allocs},
	}
}

func alloc(uid, server string, limits ...string) fleetv1alpha1.QuotaAllocation {
	return fleetv1alpha1.QuotaAllocation{ClaimName: "c-" + uid, ClaimUID: uid, Server: server, Limits: limits}
}

func TestQuotaLimitsAndRoom(t *testing.T) {
	cases := []struct {
		name   string
		allocs []fleetv1alpha1.QuotaAllocation
		uid    string
		labels map[string]string
		limits []string
		full   string
	}{
		{name: "gpu server, empty quota", uid: "a", labels: map[string]string{"type": "gpu"}, limits: []string{"all", "gpu"}},
		{name: "cpu server matches only the catch-all", uid: "a", labels: map[string]string{"type": "cpu"}, limits: []string{"all"}},
		{name: "gpu limit full", uid: "c", labels: map[string]string{"type": "gpu"}, limits: []string{"all", "gpu"}, full: "gpu",
			allocs: []fleetv1alpha1.QuotaAllocation{alloc("a", "s1", "all", "gpu"), alloc("b", "s2", "all", "gpu")}},
		{name: "gpu limit full, but a cpu server fits", uid: "c", labels: map[string]string{"type": "cpu"}, limits: []string{"all"},
			allocs: []fleetv1alpha1.QuotaAllocation{alloc("a", "s1", "all", "gpu"), alloc("b", "s2", "all", "gpu")}},
		{name: "the claim's own allocation does not count against it", uid: "b", labels: map[string]string{"type": "gpu"}, limits: []string{"all", "gpu"},
			allocs: []fleetv1alpha1.QuotaAllocation{alloc("a", "s1", "all", "gpu"), alloc("b", "s2", "all", "gpu")}},
		{name: "catch-all full", uid: "d", labels: nil, limits: []string{"all"}, full: "all",
			allocs: []fleetv1alpha1.QuotaAllocation{alloc("a", "s1", "all"), alloc("b", "s2", "all"), alloc("c", "s3", "all")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			q := testQuota(tc.allocs...)
			limits := QuotaLimitsFor(q, tc.labels)
			g.Expect(limits).To(Equal(tc.limits))
			g.Expect(QuotaFull(q, tc.uid, limits)).To(Equal(tc.full))
		})
	}
}

func TestSetQuotaAllocationAndUsage(t *testing.T) {
	g := NewWithT(t)
	q := testQuota()
	g.Expect(SetQuotaAllocation(q, alloc("a", "s1", "all", "gpu"))).To(BeTrue())
	g.Expect(SetQuotaAllocation(q, alloc("a", "s1", "all", "gpu"))).To(BeFalse(), "unchanged")
	g.Expect(SetQuotaAllocation(q, alloc("b", "s2", "all"))).To(BeTrue())
	g.Expect(QuotaUsage(q)).To(Equal([]fleetv1alpha1.QuotaUsage{{Name: "gpu", Used: 1, Hard: 2}, {Name: "all", Used: 2, Hard: 3}}))
	g.Expect(SetQuotaAllocation(q, alloc("a", "s3", "all"))).To(BeTrue(), "moved to another server")
	g.Expect(QuotaUsage(q)[0].Used).To(BeZero())
	g.Expect(SetQuotaAllocation(q, alloc("b", "s2"))).To(BeTrue(), "no limits: removed")
	g.Expect(q.Status.Allocations).To(HaveLen(1))
	g.Expect(SetQuotaAllocation(q, alloc("b", "s2"))).To(BeFalse())
}

func TestAllocationReclaimable(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	grace := time.Minute
	claim := func(mutate ...func(*metalv1alpha1.ServerClaim)) *metalv1alpha1.ServerClaim {
		c := &metalv1alpha1.ServerClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c-a", UID: types.UID("a")}}
		for _, m := range mutate {
			m(c)
		}
		return c
	}
	young := alloc("a", "s1", "all")
	young.Since = metav1.Time{Time: now.Add(-time.Second)}
	old := young
	old.Since = metav1.Time{Time: now.Add(-2 * time.Minute)}
	deleting := metav1.Time{Time: now}
	cases := []struct {
		name  string
		a     fleetv1alpha1.QuotaAllocation
		claim *metalv1alpha1.ServerClaim
		held  bool
		want  bool
	}{
		{name: "claim gone", a: young, held: true, want: true},
		{name: "claim re-created (other uid)", a: young, held: true, claim: claim(func(c *metalv1alpha1.ServerClaim) { c.UID = "b" }), want: true},
		{name: "claim deleting", a: young, held: true, claim: claim(func(c *metalv1alpha1.ServerClaim) { c.DeletionTimestamp = &deleting }), want: true},
		{name: "lease ended", a: young, held: true, claim: claim(func(c *metalv1alpha1.ServerClaim) {
			c.Status.LeaseExpiresAt = &metav1.Time{Time: now.Add(-time.Second)}
		}), want: true},
		{name: "held, however old", a: old, held: true, claim: claim()},
		{name: "take pending, within the grace", a: young, claim: claim()},
		{name: "take never happened, past the grace", a: old, claim: claim(), want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(AllocationReclaimable(tc.a, tc.claim, tc.held, now, grace)).To(Equal(tc.want))
		})
	}
	g := NewWithT(t)
	g.Expect(AllocationServer(young, claim())).To(Equal("s1"))
	g.Expect(AllocationServer(young, claim(func(c *metalv1alpha1.ServerClaim) {
		c.Spec.ServerRef = &metalv1alpha1.LocalObjectReference{Name: "s9"}
	}))).To(Equal("s9"), "the claim recorded another server than the allocation names")
}
