package racetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// gate stops a manager's writes while frozen, as if its process had been stopped between
// its reads and its writes (a leader paused past its lease) and then resumed: every write
// it had decided on goes out after the thaw, from what it read before.
type gate struct{ mu sync.RWMutex }

func (g *gate) freeze() { g.mu.Lock() }
func (g *gate) thaw()   { g.mu.Unlock() }
func (g *gate) pass() {
	g.mu.RLock()
	defer g.mu.RUnlock()
}

// gatedClient writes through a gate; reads go to the cache as usual.
type gatedClient struct {
	client.Client
	gate *gate
}

func (c gatedClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.gate.pass()
	return c.Client.Create(ctx, obj, opts...)
}

func (c gatedClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.gate.pass()
	return c.Client.Update(ctx, obj, opts...)
}

func (c gatedClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.gate.pass()
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c gatedClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.gate.pass()
	return c.Client.Delete(ctx, obj, opts...)
}

func (c gatedClient) Status() client.SubResourceWriter {
	return gatedStatus{SubResourceWriter: c.Client.Status(), gate: c.gate}
}

type gatedStatus struct {
	client.SubResourceWriter
	gate *gate
}

func (s gatedStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.gate.pass()
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

func (s gatedStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.gate.pass()
	return s.SubResourceWriter.Update(ctx, obj, opts...)
}

// claimPhases counts the namespace's claims by phase.
func claimPhases(g Gomega, ns string) map[metalv1alpha1.Phase]int {
	list := &metalv1alpha1.ServerClaimList{}
	g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
	phases := map[metalv1alpha1.Phase]int{}
	for _, c := range list.Items {
		phases[c.Status.Phase]++
	}
	return phases
}

// Two managers run at once without leader election, each with the claim and the server
// controller, and race 40 selector claims for 20 emulated servers. While they race, no
// claim is taken up by two servers, no server is named by two claims, and no Bound claim's
// server references another claim; afterwards exactly 20 claims are Bound, each to the
// server it names, and deleting the claims returns every server.
func TestTwoManagersRace(t *testing.T) {
	const servers, claims = 20, 40
	g := NewWithT(t)
	a := startFullManager(t, nil)
	b := startFullManager(t, nil)
	defer a.stop(t)
	defer b.stop(t)
	emulatedFleet(t, servers, "duo")
	for round := range 2 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			g := NewWithT(t)
			ns := env.Namespace(t)
			stop := watchViolations(t, ns)
			createClaims(t, ns, "duo", 0, claims)
			g.Eventually(func(g Gomega) {
				settled(g, ns, servers)
				g.Expect(claimPhases(g, ns)).To(Equal(map[metalv1alpha1.Phase]int{
					metalv1alpha1.PhaseBound: servers, metalv1alpha1.PhaseUnbound: claims - servers}))
			}, 60*time.Second, 100*time.Millisecond).Should(Succeed())
			g.Consistently(func(g Gomega) { settled(g, ns, servers) }, time.Second, 100*time.Millisecond).Should(Succeed())
			g.Expect(env.Client.DeleteAllOf(context.Background(), &metalv1alpha1.ServerClaim{}, client.InNamespace(ns))).To(Succeed())
			serversSettle(g, "duo", metalv1alpha1.ServerStateAvailable)
			g.Expect(stop()).To(BeEmpty())
		})
	}
	deleteFleet(g, "duo")
}

// A manager is frozen in the middle of a burst (its decided writes held back), a second one
// binds every claim, and then the first thaws and sends everything it had decided on from
// its stale reads. Its takes and records fail on their optimistic locks; nothing it does
// breaks an invariant, and the bindings the second manager made stand.
func TestFrozenManagerThawed(t *testing.T) {
	eachRound(t, "frozen", func(t *testing.T, g *WithT, round int, ns, pool string) {
		servers(t, 20, pool)
		stop := watchViolations(t, ns)
		var frozen gate
		first := startManagerWith(t, &frozen, nil)
		createClaims(t, ns, pool, 0, 40)
		g.Eventually(func(g Gomega) {
			g.Expect(bound(g, ns)).To(BeNumerically(">=", 2+round*4))
		}, 60*time.Second, 5*time.Millisecond).Should(Succeed())
		frozen.freeze()
		second := startManager(t)
		staysSettled(g, ns, 20)
		frozen.thaw()
		staysSettled(g, ns, 20)
		first.stop(t)
		staysSettled(g, ns, 20)
		g.Expect(stop()).To(BeEmpty())
		cleanupClaims(t, ns)
		second.stop(t)
	})
}
