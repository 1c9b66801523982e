package controller

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/index"
)

// leaseWarning is the lead of the LeaseExpiring warning in these tests.
const leaseWarning = 2 * time.Second

// leaseWorld is a namespace, an emulated BMC and a manager running the claim and server
// controllers, which the test can stop and start again (a restart across a lease's end, or
// across a power-on).
type leaseWorld struct {
	*claimWorld
	stop func()
	// serverOptions are the server controller's options (testServerOptions by default).
	serverOptions ServerOptions
}

func newLeaseWorld(t *testing.T, systems int) *leaseWorld {
	return newRestartableWorld(t, emulator.Options{Systems: systems, PowerDelay: 20 * time.Millisecond, InitialPower: bmc.PowerStateOn}, testServerOptions())
}

func newRestartableWorld(t *testing.T, emOpts emulator.Options, serverOpts ServerOptions) *leaseWorld {
	t.Helper()
	w := &leaseWorld{claimWorld: &claimWorld{t: t, ns: env.Namespace(t)}, serverOptions: serverOpts}
	w.em = newEmulator(t, emOpts)
	w.secret = newBMCSecret(t, "admin", "secret-password")
	// Whichever manager runs last stops after the test's objects are gone.
	t.Cleanup(func() { w.stop() })
	w.start()
	return w
}

// start starts a manager with both controllers; stop stops it and waits until it has
// stopped.
func (w *leaseWorld) start() {
	t := w.t
	t.Helper()
	mgr := env.NewManager(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	opts := testClaimOptions()
	opts.LeaseExpiryWarning = leaseWarning
	if err := setupClaimController(mgr, opts); err != nil {
		t.Fatal(err)
	}
	if err := setupServerControllerWith(mgr, w.serverOptions); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	w.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		})
	}
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
}

func withLease(d time.Duration) func(*metalv1alpha1.ServerClaim) {
	return func(c *metalv1alpha1.ServerClaim) { c.Spec.LeaseDuration = &metav1.Duration{Duration: d} }
}

// leasedAndOn creates a leased claim for s, marks its boot configuration Ready and waits until
// the server is on; it returns the claim as it was when Bound.
func (w *leaseWorld) leasedAndOn(s *metalv1alpha1.Server, lease time.Duration, mutate ...func(*metalv1alpha1.ServerClaim)) *metalv1alpha1.ServerClaim {
	w.t.Helper()
	g := NewWithT(w.t)
	c := newClaim(w.t, w.ns, append([]func(*metalv1alpha1.ServerClaim){withLease(lease)}, mutate...)...)
	g.Eventually(func(g Gomega) {
		g.Expect(getClaim(g, c).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
	}).Should(Succeed())
	setSBCState(g, w.ns, c.Name, metalv1alpha1.ServerBootConfigurationStateReady)
	g.Eventually(func(g Gomega) {
		g.Expect(getServer(g, s).Status.PowerState).To(Equal(metalv1alpha1.ServerOnPowerState))
	}).Should(Succeed())
	return getClaim(g, c)
}

// expectLeaseExpired waits until the claim reports LeaseExpired, keeps existing with its
// server recorded, and no boot configuration.
func expectLeaseExpired(g Gomega, c *metalv1alpha1.ServerClaim) {
	g.Eventually(func(g Gomega) {
		cur := getClaim(g, c)
		g.Expect(cur.Status.Phase).To(Equal(metalv1alpha1.PhaseUnbound))
		g.Expect(boundReason(cur)).To(Equal(metalv1alpha1.ReasonLeaseExpired))
		g.Expect(readyReason(cur)).To(Equal(metalv1alpha1.ReasonLeaseExpired))
		g.Expect(meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.ServerClaimLeaseExpiring)).To(BeNil())
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(c), &metalv1alpha1.ServerBootConfiguration{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the boot configuration outlived the lease")
	}).Should(Succeed())
}

// expectRecycled waits until s is Available and off again.
func expectRecycled(g Gomega, s *metalv1alpha1.Server) {
	g.Eventually(func(g Gomega) {
		cur := getServer(g, s)
		g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
	}).Should(Succeed())
}

// TestLeaseExpiryReleasesServer: a leased claim is warned (condition and one Warning event)
// before the end, and at the end its server is powered off and reclaimed by its policy as on
// deletion, while the claim stays, Unbound with reason LeaseExpired.
func TestLeaseExpiryReleasesServer(t *testing.T) {
	for _, policy := range []metalv1alpha1.ReclaimPolicy{metalv1alpha1.ReclaimPolicyRecycle, metalv1alpha1.ReclaimPolicyRetain} {
		t.Run(string(policy), func(t *testing.T) {
			g := NewWithT(t)
			w := newLeaseWorld(t, 1)
			s := w.server(0, func(s *metalv1alpha1.Server) { s.Spec.ReclaimPolicy = policy })
			lease := 4 * time.Second
			c := w.leasedAndOn(s, lease, byRef(s.Name))
			g.Expect(c.Status.LeaseStartedAt).NotTo(BeNil())
			g.Expect(c.Status.LeaseExpiresAt).NotTo(BeNil())
			g.Expect(c.Status.LeaseExpiresAt.Time).To(Equal(c.Status.LeaseStartedAt.Add(lease)))

			g.Eventually(func(g Gomega) {
				cond := meta.FindStatusCondition(getClaim(g, c).Status.Conditions, metalv1alpha1.ServerClaimLeaseExpiring)
				g.Expect(cond).NotTo(BeNil())
				g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
				g.Expect(getClaim(g, c).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
			}).Should(Succeed())

			expectLeaseExpired(g, c)
			g.Eventually(func(g Gomega) {
				cur := getServer(g, s)
				g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
				g.Expect(cur.Spec.BootConfigurationRef).To(BeNil())
				if policy == metalv1alpha1.ReclaimPolicyRetain {
					g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateReleased))
				} else {
					g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
					g.Expect(cur.Spec.ServerClaimRef).To(BeNil())
				}
			}).Should(Succeed())
			cur := getClaim(g, c)
			g.Expect(cur.Spec.ServerRef.Name).To(Equal(s.Name))
			g.Expect(cur.Finalizers).To(ContainElement(metalv1alpha1.ServerClaimFinalizer))

			count := func(reason string) int {
				n := 0
				for _, e := range eventsOf(g, c) {
					if e.Reason == reason {
						g.Expect(e.Type).To(Equal(corev1.EventTypeWarning))
						n++
					}
				}
				return n
			}
			g.Eventually(func() int { return count(metalv1alpha1.ReasonLeaseExpired) }).Should(Equal(1))
			g.Expect(count(metalv1alpha1.ReasonLeaseExpiring)).To(Equal(1))
			g.Expect(count(metalv1alpha1.ReasonBindingLost)).To(BeZero())
		})
	}
}

// TestLeaseExtendAndShorten: raising spec.leaseDuration moves the end (and drops the warning),
// and the claim outlives the old end; lowering it below the time already used ends the lease
// at once.
func TestLeaseExtendAndShorten(t *testing.T) {
	g := NewWithT(t)
	w := newLeaseWorld(t, 1)
	s := w.server(0)
	c := w.leasedAndOn(s, 3*time.Second, byRef(s.Name))
	oldEnd := c.Status.LeaseExpiresAt.Time
	start := c.Status.LeaseStartedAt.Time

	patchObject(g, c, func(c *metalv1alpha1.ServerClaim) { c.Spec.LeaseDuration = &metav1.Duration{Duration: time.Hour} })
	g.Eventually(func(g Gomega) {
		cur := getClaim(g, c)
		g.Expect(cur.Status.LeaseExpiresAt).NotTo(BeNil())
		g.Expect(cur.Status.LeaseExpiresAt.Time).To(Equal(start.Add(time.Hour)))
		g.Expect(cur.Status.LeaseStartedAt.Time).To(Equal(start))
		g.Expect(meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.ServerClaimLeaseExpiring)).To(BeNil())
	}).Should(Succeed())
	// Past the old end (and its one-second resolution), the claim and its server stay.
	g.Consistently(func(g Gomega) {
		g.Expect(getClaim(g, c).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
		g.Expect(getServer(g, s).Status.State).To(Equal(metalv1alpha1.ServerStateReserved))
	}, time.Until(oldEnd)+2*time.Second).Should(Succeed())

	// Lowered below the time already used: the lease ends now.
	patchObject(g, c, func(c *metalv1alpha1.ServerClaim) { c.Spec.LeaseDuration = &metav1.Duration{Duration: time.Second} })
	expectLeaseExpired(g, c)
	g.Expect(getClaim(g, c).Status.LeaseExpiresAt.Time).To(Equal(start.Add(time.Second)))
	expectRecycled(g, s)

	// Raising it after the end revives nothing.
	patchObject(g, c, func(c *metalv1alpha1.ServerClaim) { c.Spec.LeaseDuration = &metav1.Duration{Duration: 10 * time.Hour} })
	g.Consistently(func(g Gomega) {
		g.Expect(boundReason(getClaim(g, c))).To(Equal(metalv1alpha1.ReasonLeaseExpired))
		g.Expect(getServer(g, s).Spec.ServerClaimRef).To(BeNil())
	}).Should(Succeed())
}

// TestLeaseEndsAcrossRestart: no manager runs when the lease ends; the next one to start ends
// it from the claim's status alone.
func TestLeaseEndsAcrossRestart(t *testing.T) {
	g := NewWithT(t)
	w := newLeaseWorld(t, 1)
	s := w.server(0)
	c := w.leasedAndOn(s, 3*time.Second, byRef(s.Name))
	end := c.Status.LeaseExpiresAt.Time
	w.stop()

	// Nobody acts while no manager runs, past the end.
	g.Consistently(func(g Gomega) {
		g.Expect(getClaim(g, c).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
		cur := getServer(g, s)
		g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateReserved))
		g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.ServerOnPowerState))
	}, time.Until(end)+time.Second).Should(Succeed())

	w.start()
	expectLeaseExpired(g, c)
	expectRecycled(g, s)
}

// TestLeaseExpiredNeverRebinds: a selector claim whose lease ended binds nothing again, not
// the server it had (free again, and named by its spec.serverRef) nor a new matching one.
func TestLeaseExpiredNeverRebinds(t *testing.T) {
	g := NewWithT(t)
	w := newLeaseWorld(t, 2)
	label := func(s *metalv1alpha1.Server) { s.Labels = map[string]string{"lease": w.ns} }
	first := w.server(0, label)
	c := w.leasedAndOn(first, 2*time.Second, bySelector("lease", w.ns))
	expectLeaseExpired(g, c)
	waitState(t, first, metalv1alpha1.ServerStateAvailable)

	second := w.server(1, label)
	uid := getClaim(g, c).UID
	g.Consistently(func(g Gomega) {
		g.Expect(boundReason(getClaim(g, c))).To(Equal(metalv1alpha1.ReasonLeaseExpired))
		for _, s := range []*metalv1alpha1.Server{first, second} {
			cur := getServer(g, s)
			if ref := cur.Spec.ServerClaimRef; ref != nil {
				g.Expect(types.UID(ref.UID)).NotTo(Equal(uid), "server %s took the expired claim", s.Name)
			}
			g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		}
	}, 2*time.Second).Should(Succeed())

	// The claim can still be deleted as usual.
	deleteAndWait(t, c)
}
