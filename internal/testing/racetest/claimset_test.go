package racetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmanager "sigs.k8s.io/controller-runtime/pkg/manager"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/controller"
	"github.com/metalfleet/metal-operator/internal/testing/invariants"
)

const setRackLabel = "metadata.metal.ironcore.dev/rack"

// startSetManager starts the claim controller and the ServerClaimSet controller.
func startSetManager(t *testing.T) *manager {
	t.Helper()
	return startManagerWith(t, nil, func(mgr ctrlmanager.Manager, c client.Client) error {
		opts := controller.DefaultServerClaimSetOptions()
		opts.RetryMin = 100 * time.Millisecond
		opts.RetryMax = time.Second
		opts.BindingTimeout = 5 * time.Second
		return (&controller.ServerClaimSetReconciler{Client: c, Scheme: mgr.GetScheme(),
			Recorder: mgr.GetEventRecorder("serverclaimset-controller"), Options: opts}).SetupWithManager(mgr)
	})
}

// watchSetViolations samples the binding invariants and the sets' all-or-nothing invariant
// every 20 ms until stopped, and returns every violation seen.
func watchSetViolations(t *testing.T, ns string) (stop func() []string) {
	return sample(func(ctx context.Context) []string {
		var v []string
		if r, err := invariants.CheckSets(ctx, env.Client, ns); err == nil {
			v = append(v, r.Violations...)
		}
		if r, err := invariants.Check(ctx, env.Client, ns); err == nil {
			v = append(v, r.Violations...)
		}
		return v
	})
}

func newSet(name, ns, pool string) *fleetv1alpha1.ServerClaimSet {
	return &fleetv1alpha1.ServerClaimSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: fleetv1alpha1.ServerClaimSetSpec{
			Replicas: 8,
			Template: metalv1alpha1.ServerClaimSpec{Power: metalv1alpha1.PowerOn, Image: "my-osimage:latest",
				ServerSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"race": pool}}},
			Topology: []fleetv1alpha1.TopologyLevel{{Key: setRackLabel, MaxPerDomain: 2}},
		},
	}
}

// killWhen stops the manager as soon as the namespace's member claims (created, and those
// naming their server) satisfy cond.
func killWhen(t *testing.T, g *WithT, m *manager, cond func(created, recorded int) bool, ns string) {
	t.Helper()
	g.Eventually(func(g Gomega) bool { return cond(recordedMembers(g, ns)) }, 30*time.Second, 2*time.Millisecond).Should(BeTrue())
	m.stop(t)
}

// recordedMembers counts the namespace's claims, and those that name their server.
func recordedMembers(g Gomega, ns string) (created, recorded int) {
	list := &metalv1alpha1.ServerClaimList{}
	g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
	for _, c := range list.Items {
		created++
		if c.Spec.ServerRef != nil {
			recorded++
		}
	}
	return created, recorded
}

// Three sets of 8 (at most 2 per rack) race for 20 servers in 5 racks, and the manager is
// killed twice on the way: once while the first placements are being taken, once after the
// first members were recorded. Two sets end bound whole, one waits with nothing held, no
// set is ever partly bound, and the binding invariants hold throughout.
func TestClaimSetsRaceWithManagerKills(t *testing.T) {
	eachRound(t, "sets", func(t *testing.T, g *WithT, round int, ns, pool string) {
		for i := range 20 {
			env.IdleServer(t, map[string]string{"race": pool, setRackLabel: fmt.Sprintf("rack-%d", i%5)})
		}
		stop := watchSetViolations(t, ns)
		first := startSetManager(t)
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				g.Expect(env.Client.Create(context.Background(), newSet(fmt.Sprintf("set-%d", i), ns, pool))).To(Succeed())
			})
		}
		wg.Wait()
		// Killed while the first placements are taken, then after members were recorded.
		killWhen(t, g, first, func(created, _ int) bool { return created >= 1+round*4 }, ns)
		second := startSetManager(t)
		killWhen(t, g, second, func(_, recorded int) bool { return recorded >= 1+round*3 }, ns)

		third := startSetManager(t)
		defer third.stop(t)
		var report invariants.SetReport
		settledSets := func(g Gomega) {
			var err error
			report, err = invariants.CheckSets(context.Background(), env.Client, ns)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(report.Whole).To(HaveLen(2), "%+v", report)
			g.Expect(report.Waiting).To(HaveLen(1), "%+v", report)
			g.Expect(report.Partial).To(BeEmpty())
			r, err := invariants.Check(context.Background(), env.Client, ns)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r.Unsettled).To(BeEmpty(), r.String())
			g.Expect(r.Bound).To(Equal(16))
		}
		g.Eventually(settledSets, 60*time.Second, 100*time.Millisecond).Should(Succeed())
		g.Consistently(settledSets, time.Second, 100*time.Millisecond).Should(Succeed())

		waiting := &fleetv1alpha1.ServerClaimSet{}
		g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: report.Waiting[0]}, waiting)).To(Succeed())
		c := meta.FindStatusCondition(waiting.Status.Conditions, fleetv1alpha1.ServerClaimSetBound)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(fleetv1alpha1.ReasonInsufficientCapacity), c.Message)
		g.Expect(stop()).To(BeEmpty())

		// Deleting the sets deletes their members while the manager runs.
		g.Expect(env.Client.DeleteAllOf(context.Background(), &fleetv1alpha1.ServerClaimSet{}, client.InNamespace(ns))).To(Succeed())
		g.Eventually(func(g Gomega) {
			created, _ := recordedMembers(g, ns)
			g.Expect(created).To(BeZero())
		}, 30*time.Second, 50*time.Millisecond).Should(Succeed())
	})
}
