package controller

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// startQuotaControllers starts the claim and the quota controller; the test plays the
// server controller.
func startQuotaControllers(t *testing.T) {
	t.Helper()
	startManager(t, func(mgr manager.Manager) error {
		if err := setupClaimController(mgr, testClaimOptions()); err != nil {
			return err
		}
		o := DefaultServerQuotaOptions()
		o.AllocationGrace = 30 * time.Second
		return (&ServerQuotaReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
			Recorder: mgr.GetEventRecorder("serverquota-controller"), Options: o}).SetupWithManager(mgr)
	})
}

func newQuota(t *testing.T, ns, name string, limits ...fleetv1alpha1.QuotaLimit) *fleetv1alpha1.ServerQuota {
	t.Helper()
	q := &fleetv1alpha1.ServerQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: fleetv1alpha1.ServerQuotaSpec{Hard: limits}}
	create(t, q)
	return q
}

func getQuota(g Gomega, q *fleetv1alpha1.ServerQuota) *fleetv1alpha1.ServerQuota {
	cur := &fleetv1alpha1.ServerQuota{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(q), cur)).To(Succeed())
	return cur
}

// holders returns the claims (by name) of ns that servers hold, but for those named in except.
func holders(g Gomega, ns string, except ...string) map[string]bool {
	list := &metalv1alpha1.ServerList{}
	g.Expect(env.Client.List(context.Background(), list)).To(Succeed())
	out := map[string]bool{}
	for _, s := range list.Items {
		if ref := s.Spec.ServerClaimRef; ref != nil && ref.Namespace == ns {
			out[ref.Name] = true
		}
	}
	for _, name := range except {
		delete(out, name)
	}
	return out
}

// TestServerQuotaLimitsBindings: claims over a limit stay Unbound with QuotaExceeded naming
// the quota, servers the limit does not select are not limited, a deleted claim frees its
// share at once, and lowering the max unbinds nothing.
func TestServerQuotaLimitsBindings(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	startQuotaControllers(t)
	gpu := "gpu-" + ns
	q := newQuota(t, ns, "gpus", fleetv1alpha1.QuotaLimit{Name: "gpu", Max: 2,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"type": gpu}}})
	for range 4 {
		newIdleServer(t, map[string]string{"type": gpu})
	}
	cpu := newIdleServer(t, map[string]string{"type": "cpu-" + ns})
	var claims []*metalv1alpha1.ServerClaim
	for range 4 {
		claims = append(claims, newClaim(t, ns, bySelector("type", gpu)))
	}

	g.Eventually(func(g Gomega) {
		g.Expect(holders(g, ns)).To(HaveLen(2))
		over := 0
		for _, c := range claims {
			cur := getClaim(g, c)
			if boundReason(cur) == metalv1alpha1.ReasonQuotaExceeded {
				over++
				cond := meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.ServerClaimBound)
				g.Expect(cond.Message).To(ContainSubstring("ServerQuota gpus: limit gpu allows 2"))
			}
		}
		g.Expect(over).To(Equal(2))
		cur := getQuota(g, q)
		g.Expect(cur.Status.Used).To(Equal([]fleetv1alpha1.QuotaUsage{{Name: "gpu", Used: 2, Hard: 2}}))
		g.Expect(cur.Status.Allocations).To(HaveLen(2))
	}).Should(Succeed())

	// A server the limit does not select is not limited, and takes no share.
	other := newClaim(t, ns, byRef(cpu.Name))
	g.Eventually(func(g Gomega) { g.Expect(holders(g, ns)).To(HaveKey(other.Name)) }).Should(Succeed())
	g.Expect(getQuota(g, q).Status.Allocations).To(HaveLen(2))

	// Deleting a holder frees its share at once; a waiting claim takes it.
	var gone *metalv1alpha1.ServerClaim
	for _, c := range claims {
		if holders(g, ns)[c.Name] {
			gone = c
			break
		}
	}
	deleteAndWait(t, gone)
	g.Eventually(func(g Gomega) {
		for _, a := range getQuota(g, q).Status.Allocations {
			g.Expect(a.ClaimName).NotTo(Equal(gone.Name))
		}
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(holders(g, ns, other.Name)).To(HaveLen(2))
		g.Expect(getQuota(g, q).Status.Used[0].Used).To(Equal(int32(2)))
	}).Should(Succeed())

	// Lowering the max unbinds nothing; the status shows used above hard.
	patchObject(g, q, func(q *fleetv1alpha1.ServerQuota) { q.Spec.Hard[0].Max = 1 })
	g.Eventually(func(g Gomega) {
		cur := getQuota(g, q)
		g.Expect(cur.Status.Used).To(Equal([]fleetv1alpha1.QuotaUsage{{Name: "gpu", Used: 2, Hard: 1}}))
		cond := meta.FindStatusCondition(cur.Status.Conditions, fleetv1alpha1.ServerQuotaExceeded)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(cond.Reason).To(Equal(fleetv1alpha1.ReasonUsedAboveMax))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) { g.Expect(holders(g, ns, other.Name)).To(HaveLen(2)) }).Should(Succeed())
}

// TestServerQuotaReclaimsAllocations: the quota controller drops the allocation of a claim
// that is gone and of a take that never happened within the grace, and keeps one still
// within it.
func TestServerQuotaReclaimsAllocations(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	startQuotaControllers(t)
	q := newQuota(t, ns, "all", fleetv1alpha1.QuotaLimit{Name: "any", Max: 5})
	free := newIdleServer(t, map[string]string{"quota": ns}, func(s *metalv1alpha1.Server) { s.Spec.Unclaimable = true })
	// Claims by name on a cordoned server: they exist and hold nothing.
	stale := newClaim(t, ns, byRef(free.Name))
	pending := newClaim(t, ns, byRef(free.Name))
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(time.Now().Add(d).Truncate(time.Second)) }
	g.Eventually(func(g Gomega) {
		cur := getQuota(g, q)
		base := cur.DeepCopy()
		cur.Status.Allocations = []fleetv1alpha1.QuotaAllocation{
			{ClaimName: "gone", ClaimUID: "00000000-0000-0000-0000-000000000001", Server: free.Name, Limits: []string{"any"}, Since: at(0)},
			{ClaimName: stale.Name, ClaimUID: string(getClaim(g, stale).UID), Server: free.Name, Limits: []string{"any"}, Since: at(-5 * time.Minute)},
			{ClaimName: pending.Name, ClaimUID: string(getClaim(g, pending).UID), Server: free.Name, Limits: []string{"any"}, Since: at(0)},
		}
		g.Expect(env.Client.Status().Patch(context.Background(), cur, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))).To(Succeed())
	}).Should(Succeed())

	names := func(g Gomega) []string {
		var out []string
		for _, a := range getQuota(g, q).Status.Allocations {
			out = append(out, a.ClaimName)
		}
		return out
	}
	g.Eventually(names).Should(Equal([]string{pending.Name}))
	g.Consistently(names).Should(Equal([]string{pending.Name}))
	g.Expect(getQuota(g, q).Status.Used).To(Equal([]fleetv1alpha1.QuotaUsage{{Name: "any", Used: 1, Hard: 5}}))
}
