package binding

import (
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

func freeServer(name string, lbls map[string]string, mutate ...func(*metalv1alpha1.Server)) *metalv1alpha1.Server {
	s := &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Status: metalv1alpha1.ServerStatus{
			State:      metalv1alpha1.ServerStateAvailable,
			PowerState: metalv1alpha1.ServerOffPowerState,
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func TestIsFree(t *testing.T) {
	now := metav1.Now()
	cases := []struct {
		name   string
		mutate func(*metalv1alpha1.Server)
		want   bool
	}{
		{"available and off", func(*metalv1alpha1.Server) {}, true},
		{"reserved", func(s *metalv1alpha1.Server) { s.Status.State = metalv1alpha1.ServerStateReserved }, false},
		{"powered on", func(s *metalv1alpha1.Server) { s.Status.PowerState = metalv1alpha1.ServerOnPowerState }, false},
		{"powering off", func(s *metalv1alpha1.Server) { s.Status.PowerState = metalv1alpha1.ServerPoweringOffPowerState }, false},
		{"bound", func(s *metalv1alpha1.Server) {
			s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: "ns", Name: "c"}
		}, false},
		{"cordoned", func(s *metalv1alpha1.Server) { s.Spec.Unclaimable = true }, false},
		{"deleting", func(s *metalv1alpha1.Server) { s.DeletionTimestamp = &now }, false},
		{"parked", func(s *metalv1alpha1.Server) {
			s.Annotations = map[string]string{metalv1alpha1.ParkedAnnotation: "true"}
		}, false},
		{"park requested", func(s *metalv1alpha1.Server) {
			s.Annotations = map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationPark}
		}, false},
		{"ignored by the server controller is still free", func(s *metalv1alpha1.Server) {
			s.Annotations = map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationIgnore}
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(IsFree(freeServer("s", nil, tc.mutate))).To(Equal(tc.want))
		})
	}
}

func TestCheck(t *testing.T) {
	claim := &metalv1alpha1.ServerClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "uid-1"}}
	sel := labels.SelectorFromSet(labels.Set{"type": "gpu"})
	cases := []struct {
		name   string
		server *metalv1alpha1.Server
		sel    labels.Selector
		want   string
	}{
		{"fits", freeServer("s", map[string]string{"type": "gpu"}), sel, ""},
		{"selector mismatch", freeServer("s", map[string]string{"type": "cpu"}), sel, metalv1alpha1.ReasonSelectorMismatch},
		{"claimed by other", freeServer("s", nil, func(s *metalv1alpha1.Server) {
			s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: "ns", Name: "other"}
		}), nil, metalv1alpha1.ReasonServerClaimedByOther},
		{"claimed by an older claim of the same name", freeServer("s", nil, func(s *metalv1alpha1.Server) {
			s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: "ns", Name: "c", UID: "uid-0"}
		}), nil, metalv1alpha1.ReasonServerClaimedByOther},
		{"cordoned", freeServer("s", nil, func(s *metalv1alpha1.Server) { s.Spec.Unclaimable = true }), nil, metalv1alpha1.ReasonServerCordoned},
		{"not available", freeServer("s", nil, func(s *metalv1alpha1.Server) { s.Status.State = metalv1alpha1.ServerStateInitial }), nil, metalv1alpha1.ReasonServerNotAvailable},
		{"powered on", freeServer("s", nil, func(s *metalv1alpha1.Server) { s.Status.PowerState = metalv1alpha1.ServerOnPowerState }), nil, metalv1alpha1.ReasonServerNotAvailable},
		{"parked", freeServer("s", nil, func(s *metalv1alpha1.Server) {
			s.Annotations = map[string]string{metalv1alpha1.ParkedAnnotation: "true"}
		}), nil, metalv1alpha1.ReasonServerParked},
		{"taint", freeServer("s", nil, func(s *metalv1alpha1.Server) {
			s.Spec.Taints = []metalv1alpha1.Taint{{Key: "dedicated", Value: "gpu", Effect: metalv1alpha1.TaintEffectNoBind}}
		}), nil, metalv1alpha1.ReasonTaintNotTolerated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			reason, msg := Check(tc.server, claim, tc.sel)
			g.Expect(reason).To(Equal(tc.want))
			if tc.want != "" {
				g.Expect(msg).To(ContainSubstring(tc.server.Name))
			}
		})
	}
}

func TestPoolPickRespectsSelectorAndFits(t *testing.T) {
	g := NewWithT(t)
	p := NewPool()
	p.Observe(freeServer("gpu-1", map[string]string{"type": "gpu", "zone": "a"}))
	p.Observe(freeServer("gpu-2", map[string]string{"type": "gpu", "zone": "b"}))
	p.Observe(freeServer("cpu-1", map[string]string{"type": "cpu", "zone": "a"}))
	p.Observe(freeServer("busy", map[string]string{"type": "gpu"}, func(s *metalv1alpha1.Server) {
		s.Status.State = metalv1alpha1.ServerStateReserved
	}))
	g.Expect(poolLen(p)).To(Equal(3))

	ml := map[string]string{"type": "gpu", "zone": "b"}
	c, ok, _ := p.Pick(labels.SelectorFromSet(ml), ml, "claim", nil)
	g.Expect(ok).To(BeTrue())
	g.Expect(c.Name).To(Equal("gpu-2"))
	p.Done(c.Name)

	// A selector with expressions only walks the whole pool and still filters.
	sel, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "type", Operator: metav1.LabelSelectorOpIn, Values: []string{"cpu"}},
	}})
	g.Expect(err).NotTo(HaveOccurred())
	for seed := range 20 {
		c, ok, _ = p.Pick(sel, nil, fmt.Sprint(seed), nil)
		g.Expect(ok).To(BeTrue())
		g.Expect(c.Name).To(Equal("cpu-1"))
		p.Done(c.Name)
	}

	// fits excludes candidates.
	_, ok, _ = p.Pick(labels.SelectorFromSet(ml), ml, "claim", func(c Candidate) bool { return c.Name != "gpu-2" })
	g.Expect(ok).To(BeFalse())

	// A label pair no free server has: nothing, without walking.
	none := map[string]string{"type": "tpu"}
	_, ok, _ = p.Pick(labels.SelectorFromSet(none), none, "claim", nil)
	g.Expect(ok).To(BeFalse())
}

func TestPoolTracksServerChanges(t *testing.T) {
	g := NewWithT(t)
	p := NewPool()
	s := freeServer("s", map[string]string{"a": "1"})
	p.Observe(s)
	g.Expect(poolContains(p, "s")).To(BeTrue())

	// Labels change: the old bucket no longer finds it.
	s2 := freeServer("s", map[string]string{"a": "2"})
	p.Observe(s2)
	old := map[string]string{"a": "1"}
	_, ok, _ := p.Pick(labels.SelectorFromSet(old), old, "x", nil)
	g.Expect(ok).To(BeFalse())
	cur := map[string]string{"a": "2"}
	c, ok, _ := p.Pick(labels.SelectorFromSet(cur), cur, "x", nil)
	g.Expect(ok).To(BeTrue())
	p.Done(c.Name)

	// Bound: gone.
	s3 := freeServer("s", map[string]string{"a": "2"}, func(s *metalv1alpha1.Server) {
		s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: "ns", Name: "c"}
	})
	p.Observe(s3)
	g.Expect(poolContains(p, "s")).To(BeFalse())
	g.Expect(poolLen(p)).To(BeZero())
	p.Forget("s") // idempotent
	g.Expect(poolLen(p)).To(BeZero())
}

// Many claims picking at once spread over the candidates instead of all taking the same one.
func TestPoolSpreadsConcurrentClaims(t *testing.T) {
	g := NewWithT(t)
	p := NewPool()
	for i := range 100 {
		p.Observe(freeServer(fmt.Sprintf("s-%03d", i), map[string]string{"pool": "x"}))
	}
	first := map[string]int{}
	for i := range 100 {
		c, ok, _ := p.Pick(nil, nil, fmt.Sprintf("claim-uid-%d", i), nil)
		g.Expect(ok).To(BeTrue())
		first[c.Name]++
		p.Done(c.Name) // picked one after the other, not held together
	}
	// With a uniform spread, 100 claims over 100 servers hit about 63 distinct ones; taking
	// the first server for all would hit 1.
	g.Expect(len(first)).To(BeNumerically(">", 40))

	// The same seed picks the same server: the walk is deterministic.
	a, _, _ := p.Pick(nil, nil, "same", nil)
	p.Done(a.Name)
	b, _, _ := p.Pick(nil, nil, "same", nil)
	g.Expect(a.Name).To(Equal(b.Name))
}

func BenchmarkPoolPick(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			p := NewPool()
			for i := range n {
				p.Observe(freeServer(fmt.Sprintf("s-%d", i), map[string]string{"type": "gpu", "rack": fmt.Sprint(i % 50)}))
			}
			ml := map[string]string{"type": "gpu"}
			sel := labels.SelectorFromSet(ml)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				c, ok, _ := p.Pick(sel, ml, fmt.Sprint(i), nil)
				if !ok {
					b.Fatal("no pick")
				}
				p.Done(c.Name)
			}
		})
	}
}

// TestPoolHoldsPicked: a picked server is not handed to another claim until the picker is
// done with it, so workers of one process do not race for one server.
func TestPoolHoldsPicked(t *testing.T) {
	g := NewWithT(t)
	p := NewPool()
	p.Observe(freeServer("a", nil))
	p.Observe(freeServer("b", nil))
	first, ok, _ := p.Pick(nil, nil, "same-seed", nil)
	g.Expect(ok).To(BeTrue())
	second, ok, _ := p.Pick(nil, nil, "same-seed", nil)
	g.Expect(ok).To(BeTrue())
	g.Expect(second.Name).NotTo(Equal(first.Name))
	_, ok, busy := p.Pick(nil, nil, "same-seed", nil)
	g.Expect(ok).To(BeFalse(), "both servers are held")
	g.Expect(busy).To(BeTrue(), "nothing to pick, but not because nothing matches")
	_, ok, busy = p.Pick(labels.SelectorFromSet(labels.Set{"x": "z"}), nil, "same-seed", nil)
	g.Expect(ok || busy).To(BeFalse(), "a held server that does not match does not make the pool busy")

	// An event about a held server keeps it held.
	p.Observe(freeServer(first.Name, map[string]string{"x": "y"}))
	_, ok, _ = p.Pick(nil, nil, "same-seed", nil)
	g.Expect(ok).To(BeFalse())

	p.Done(first.Name)
	again, ok, _ := p.Pick(nil, nil, "same-seed", nil)
	g.Expect(ok).To(BeTrue())
	g.Expect(again.Name).To(Equal(first.Name))
	g.Expect(poolLen(p)).To(Equal(2), "held servers stay in the pool")
}

// TestPoolTakenIgnoresOlderEvents: once this process took a server, an informer event
// older than that write (delivered late) does not put it back; the write's own version and
// later ones count again. The same holds for any event older than one already seen, e.g. a
// copy read from the cache before a newer event arrived.
func TestPoolTakenIgnoresOlderEvents(t *testing.T) {
	g := NewWithT(t)
	p := NewPool()
	withRV := func(rv string) func(*metalv1alpha1.Server) {
		return func(s *metalv1alpha1.Server) { s.ResourceVersion = rv }
	}
	p.Observe(freeServer("a", nil, withRV("5")))
	c, ok, _ := p.Pick(nil, nil, "seed", nil)
	g.Expect(ok).To(BeTrue())
	p.Taken(c.Name, "7")
	p.Done(c.Name)
	g.Expect(poolContains(p, "a")).To(BeFalse())

	p.Observe(freeServer("a", nil, withRV("6")))
	g.Expect(poolContains(p, "a")).To(BeFalse(), "an event older than the take is stale")

	bound := freeServer("a", nil, withRV("7"), func(s *metalv1alpha1.Server) {
		s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: "ns", Name: "c"}
	})
	p.Observe(bound)
	g.Expect(poolContains(p, "a")).To(BeFalse())

	// Released later: a newer version is believed; an older copy afterwards is not.
	p.Observe(freeServer("a", nil, withRV("9")))
	g.Expect(poolContains(p, "a")).To(BeTrue())
	p.Observe(bound)
	g.Expect(poolContains(p, "a")).To(BeTrue(), "a stale copy does not drop a free server")

	// A failed write drops it until a newer event; a deleted server leaves nothing behind.
	p.Drop("a")
	p.Observe(freeServer("a", nil, withRV("9")))
	g.Expect(poolContains(p, "a")).To(BeTrue(), "the same version again: the cache caught up")
	p.Forget("a")
	g.Expect(p.versions.Len()).To(BeZero())
	g.Expect(p.held).To(BeEmpty())
	p.Observe(freeServer("a", nil, withRV("3")))
	g.Expect(poolContains(p, "a")).To(BeTrue(), "a server created again under the name starts afresh")

	// Versions that are not numbers cannot be ordered: every event is followed.
	p.Observe(freeServer("b", nil, withRV("x")))
	p.Observe(freeServer("b", nil, withRV("w")))
	g.Expect(poolContains(p, "b")).To(BeTrue())
}

func poolLen(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.servers)
}

func poolContains(p *Pool, name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.servers[name]
	return ok
}
