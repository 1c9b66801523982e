package controller

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

// maxOverlap is the most intervals [start, end) open at once.
func maxOverlap(intervals [][2]time.Time) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, iv := range intervals {
		edges = append(edges, edge{iv[0], 1}, edge{iv[1], -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].delta < edges[j].delta // an end before a start at the same instant
		}
		return edges[i].at.Before(edges[j].at)
	})
	open, most := 0, 0
	for _, e := range edges {
		open += e.delta
		most = max(most, open)
	}
	return most
}

// TestPowerOnStaggeredPerRack: 100 claims on 10 racks of 10 servers, at most 5 power-ons at
// once per rack. The emulated BMCs' boot history (each boot ends a power-on transition of
// PowerDelay) never shows more than 5 transitions at once in a rack, and every server ends
// up on; claims waiting for their turn say PowerOnQueued.
func TestPowerOnStaggeredPerRack(t *testing.T) {
	const racks, perRack, limit = 10, 10, 5
	const delay = 3 * time.Second
	g := NewWithT(t)
	ns := env.Namespace(t)
	em := newEmulator(t, emulator.Options{Systems: racks * perRack, PowerDelay: delay, InitialPower: bmc.PowerStateOff})
	secret := newBMCSecret(t, "admin", "secret-password")
	startManager(t, func(mgr manager.Manager) error {
		if err := setupClaimController(mgr, testClaimOptions()); err != nil {
			return err
		}
		opts := testServerOptions()
		opts.MaxConcurrentReconciles = 16
		opts.PowerOffTimeout = 10 * time.Second
		opts.MaxConcurrentPowerOns = limit
		opts.PowerDomainLabel = metalv1alpha1.RackLabel
		return setupServerControllerWith(mgr, opts)
	})

	servers := make([]*metalv1alpha1.Server, racks*perRack)
	rackOf := map[string]string{}
	for i := range servers {
		rack := fmt.Sprintf("rack-%d", i%racks)
		servers[i] = newServer(t, em, secret, i, func(s *metalv1alpha1.Server) {
			s.Labels = map[string]string{metalv1alpha1.RackLabel: rack}
		})
		rackOf[em.Systems()[i].UUID] = rack
	}
	g.Eventually(func(g Gomega) {
		for _, s := range servers {
			g.Expect(getServer(g, s).Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		}
	}, time.Minute).Should(Succeed())

	var queuedSeen atomic.Bool
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		for ctx.Err() == nil {
			list := &metalv1alpha1.ServerClaimList{}
			if env.Client.List(ctx, list, client.InNamespace(ns)) == nil {
				for i := range list.Items {
					if readyReason(&list.Items[i]) == metalv1alpha1.ReasonPowerOnQueued {
						queuedSeen.Store(true)
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	claims := make([]*metalv1alpha1.ServerClaim, len(servers))
	for i, s := range servers {
		claims[i] = newClaim(t, ns, byRef(s.Name))
	}
	g.Eventually(func(g Gomega) {
		for _, c := range claims {
			g.Expect(getClaim(g, c).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
		}
	}, time.Minute, 100*time.Millisecond).Should(Succeed())
	// Every boot configuration turns Ready at about the same moment: every server wants to
	// power on at once.
	var wg sync.WaitGroup
	for _, c := range claims {
		wg.Go(func() { setSBCState(g, ns, c.Name, metalv1alpha1.ServerBootConfigurationStateReady) })
	}
	wg.Wait()
	g.Eventually(func(g Gomega) {
		for _, c := range claims {
			g.Expect(readyReason(getClaim(g, c))).To(Equal(metalv1alpha1.ReasonReady))
		}
	}, 2*time.Minute, 100*time.Millisecond).Should(Succeed())
	stop()

	perRackIntervals := map[string][][2]time.Time{}
	for _, sys := range em.Systems() {
		boots := em.BootHistory(sys.UUID)
		g.Expect(boots).To(HaveLen(1), "system %s", sys.UUID)
		end := boots[0].At
		perRackIntervals[rackOf[sys.UUID]] = append(perRackIntervals[rackOf[sys.UUID]], [2]time.Time{end.Add(-delay), end})
	}
	most := 0
	for rack, ivs := range perRackIntervals {
		n := maxOverlap(ivs)
		g.Expect(n).To(BeNumerically("<=", limit), "rack %s had %d power-ons at once", rack, n)
		most = max(most, n)
	}
	g.Expect(most).To(Equal(limit), "the limit was never reached: the test did not exercise the queue")
	g.Expect(queuedSeen.Load()).To(BeTrue(), "no claim ever said PowerOnQueued")
}

// TestPowerOnQueueAcrossRestart: the power-on a stopped manager left running still holds
// its domain's only slot for the next manager, and a later power-on waits for the interval.
func TestPowerOnQueueAcrossRestart(t *testing.T) {
	const delay = 4 * time.Second
	g := NewWithT(t)
	opts := testServerOptions()
	opts.PowerOffTimeout = 20 * time.Second
	opts.MaxConcurrentPowerOns = 1
	opts.PowerOnInterval = 2 * time.Second
	opts.PowerDomainLabel = metalv1alpha1.RackLabel
	w := newRestartableWorld(t, emulator.Options{Systems: 3, PowerDelay: delay, InitialPower: bmc.PowerStateOff}, opts)
	rack := func(s *metalv1alpha1.Server) { s.Labels = map[string]string{metalv1alpha1.RackLabel: "r1"} }
	first, second := w.server(0, rack), w.server(1, rack)

	a := newClaim(t, w.ns, byRef(first.Name))
	g.Eventually(func(g Gomega) { g.Expect(getClaim(g, a).Status.Phase).To(Equal(metalv1alpha1.PhaseBound)) }).Should(Succeed())
	setSBCState(g, w.ns, a.Name, metalv1alpha1.ServerBootConfigurationStateReady)
	g.Eventually(func(g Gomega) {
		cond := condition(getServer(g, first), metalv1alpha1.ServerPoweringOn)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
	}).Should(Succeed())
	w.stop()

	w.start()
	b := newClaim(t, w.ns, byRef(second.Name))
	g.Eventually(func(g Gomega) { g.Expect(getClaim(g, b).Status.Phase).To(Equal(metalv1alpha1.PhaseBound)) }).Should(Succeed())
	setSBCState(g, w.ns, b.Name, metalv1alpha1.ServerBootConfigurationStateReady)
	g.Eventually(func(g Gomega) {
		g.Expect(readyReason(getClaim(g, b))).To(Equal(metalv1alpha1.ReasonPowerOnQueued))
		g.Expect(condition(getServer(g, second), metalv1alpha1.ServerPowerOnQueued)).NotTo(BeNil())
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(readyReason(getClaim(g, b))).To(Equal(metalv1alpha1.ReasonReady))
		g.Expect(condition(getServer(g, second), metalv1alpha1.ServerPowerOnQueued)).To(BeNil())
	}, 30*time.Second).Should(Succeed())

	bootA, bootB := w.em.BootHistory(first.Spec.SystemUUID), w.em.BootHistory(second.Spec.SystemUUID)
	g.Expect(bootA).To(HaveLen(1))
	g.Expect(bootB).To(HaveLen(1))
	// B started only after A's transition, which the first manager started, ended (A's boot).
	g.Expect(bootB[0].At.Add(-delay)).To(BeTemporally(">=", bootA[0].At))
}

func TestMaxOverlap(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	cases := []struct {
		name string
		ivs  [][2]time.Time
		want int
	}{
		{name: "none", want: 0},
		{name: "disjoint", ivs: [][2]time.Time{{at(0), at(1)}, {at(2), at(3)}}, want: 1},
		{name: "touching is not overlapping", ivs: [][2]time.Time{{at(0), at(1)}, {at(1), at(2)}}, want: 1},
		{name: "nested", ivs: [][2]time.Time{{at(0), at(10)}, {at(1), at(2)}, {at(1), at(3)}}, want: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { NewWithT(t).Expect(maxOverlap(tc.ivs)).To(Equal(tc.want)) })
	}
}
