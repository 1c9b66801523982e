package controller

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

// directClaimReconciler is a claim controller's decision logic without a manager: a test
// calls its steps one by one, each from the copies it chooses, as a second manager (or a
// frozen one) would.
func directClaimReconciler() *ServerClaimReconciler {
	return &ServerClaimReconciler{Client: env.Client, APIReader: env.Client, Scheme: env.Client.Scheme(),
		Recorder: discardRecorder{}, Options: testClaimOptions(),
		Pool: binding.NewPool(), expect: newExpectations(), versions: newVersions()}
}

// The patch that takes a server is fenced by the server's resourceVersion: a copy of the
// server read before another claim took it cannot take it again. Without the optimistic lock
// the second take overwrites the first claim's reference.
func TestClaimTakeIsFencedByServerVersion(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	s := newIdleServer(t, map[string]string{"fence": ns})
	first := getClaim(g, newClaim(t, ns, bySelector("fence", ns)))
	second := getClaim(g, newClaim(t, ns, bySelector("fence", ns)))
	stale := getServer(g, s)

	r := directClaimReconciler()
	taken, err := r.take(t.Context(), first, stale.DeepCopy())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(taken).To(BeTrue())

	taken, err = directClaimReconciler().take(t.Context(), second, stale.DeepCopy())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(taken).To(BeFalse(), "a copy older than the first take must not take the server")
	g.Expect(getServer(g, s).Spec.ServerClaimRef.UID).To(Equal(string(first.UID)))
}

// Two managers each took a different server for the same claim (each take fenced only by
// its own server). Recording a server on the claim is fenced by the claim's resourceVersion:
// the first record wins, the second fails and releases the server its manager took, and the
// claim names exactly one server, which references it.
func TestClaimRecordIsFencedByClaimVersion(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	lbls := map[string]string{"fence": ns}
	s1, s2 := newIdleServer(t, lbls), newIdleServer(t, lbls)
	c := newClaim(t, ns, bySelector("fence", ns))
	releaseFinalizer(t, c) // no claim controller runs to remove it
	read := getClaim(g, c) // what both managers read

	a, b := directClaimReconciler(), directClaimReconciler()
	for _, step := range []struct {
		r *ServerClaimReconciler
		s *metalv1alpha1.Server
	}{{a, s1}, {b, s2}} {
		taken, err := step.r.take(t.Context(), read.DeepCopy(), getServer(g, step.s))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(taken).To(BeTrue())
	}

	recorded, err := a.recordBinding(t.Context(), read.DeepCopy(), getServer(g, s1))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(recorded).To(BeTrue())
	recorded, err = b.recordBinding(t.Context(), read.DeepCopy(), getServer(g, s2))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(recorded).To(BeFalse(), "the claim changed since b read it: b's record must fail")

	g.Expect(getClaim(g, c).Spec.ServerRef.Name).To(Equal(s1.Name))
	g.Expect(getServer(g, s1).Spec.ServerClaimRef.UID).To(Equal(string(c.UID)))
	g.Expect(getServer(g, s2).Spec.ServerClaimRef).To(BeNil(), "the loser releases what it took")
	g.Expect(getServer(g, s2).Spec.BootConfigurationRef).To(BeNil())
	assertBindingInvariants(g, ns)
}

// A stale copy of a claim that names nothing never releases a server the claim may be
// recording right now: chooseHeld keeps every proposal until the claim names one, and
// releaseRefused releases only servers the claim turned down.
func TestClaimReleasesOnlyRefusedServers(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	lbls := map[string]string{"fence": ns}
	s1, s2 := newIdleServer(t, lbls), newIdleServer(t, lbls)
	c := newClaim(t, ns, bySelector("fence", ns))
	read := getClaim(g, c)
	r := directClaimReconciler()
	for _, s := range []*metalv1alpha1.Server{s1, s2} {
		taken, err := directClaimReconciler().take(t.Context(), read.DeepCopy(), getServer(g, s))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(taken).To(BeTrue())
	}
	held := []*metalv1alpha1.Server{getServer(g, s1), getServer(g, s2)}
	g.Expect(r.releaseRefused(t.Context(), read, held)).To(Succeed())
	g.Expect(getServer(g, s1).Spec.ServerClaimRef).NotTo(BeNil())
	g.Expect(getServer(g, s2).Spec.ServerClaimRef).NotTo(BeNil())

	recorded := read.DeepCopy()
	recorded.Spec.ServerRef = &metalv1alpha1.LocalObjectReference{Name: s2.Name}
	g.Expect(r.chooseHeld(recorded, held).Name).To(Equal(s2.Name))
	g.Expect(r.releaseRefused(t.Context(), recorded, held)).To(Succeed())
	g.Expect(getServer(g, s1).Spec.ServerClaimRef).To(BeNil())
	g.Expect(getServer(g, s2).Spec.ServerClaimRef).NotTo(BeNil())
}

// Manager A took s1 for claim c; its record did not land (conflict on an unrelated write),
// so its expectation c->s1 survives. Manager B records s0 on c; s1 is refused and released
// (server controller, BindingRefused); claim d takes s1. A reconciles c within
// ExpectationTimeout with a current cache: the expectation is moot (the cache shows a version
// at or after A's take), and releasing is decided on the live server, so d keeps s1.
func TestClaimStaleExpectationNeverReleasesAnotherClaimsServer(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	lbls := map[string]string{"fence": ns}
	s0, s1 := newIdleServer(t, lbls), newIdleServer(t, lbls)
	c := newClaim(t, ns, bySelector("fence", ns))
	d := newClaim(t, ns, bySelector("fence", ns))
	releaseFinalizer(t, c)
	releaseFinalizer(t, d)

	a, b := directClaimReconciler(), directClaimReconciler()
	taken, err := a.take(t.Context(), getClaim(g, c), getServer(g, s1))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(taken).To(BeTrue())

	taken, err = b.take(t.Context(), getClaim(g, c), getServer(g, s0))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(taken).To(BeTrue())
	recorded, err := b.recordBinding(t.Context(), getClaim(g, c), getServer(g, s0))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(recorded).To(BeTrue())

	// The server controller refuses s1 (c names s0) and d takes it.
	staleS1 := getServer(g, s1) // what a lagging cache of A's would still show: s1 is c's
	patchObject(g, s1, func(o *metalv1alpha1.Server) { o.Spec.ServerClaimRef, o.Spec.BootConfigurationRef = nil, nil })
	taken, err = directClaimReconciler().take(t.Context(), getClaim(g, d), getServer(g, s1))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(taken).To(BeTrue())

	// A reconciles c: the cache (here: the API) shows s1 held by d, so heldServers falls back
	// to pendingServer for A's expectation.
	claim := getClaim(g, c)
	name, ok := a.expect.server(claim.UID)
	g.Expect(ok).To(BeTrue())
	s, err := a.pendingServer(t.Context(), claim, name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s).To(BeNil(), "a cache at or past the take is the truth: s1 is d's")
	// A copy from before d's take that still says s1 is c's cannot release it: the write is
	// fenced by that copy's resourceVersion.
	stale := staleS1.DeepCopy()
	g.Expect(a.releaseRefused(t.Context(), claim, []*metalv1alpha1.Server{stale})).To(MatchError(ContainSubstring("releasing server")))

	ref := getServer(g, s1).Spec.ServerClaimRef
	g.Expect(ref).NotTo(BeNil(), "d's binding of s1 was removed by c's manager")
	g.Expect(ref.UID).To(Equal(string(d.UID)))
}

// A took s1 for c, but s1's reference is cleared by hand and d takes s1 before A's next
// reconcile of c (within ExpectationTimeout): the expectation must not present s1 as c's, or
// A would record s1 on c, which can never get it (two claims naming s1).
func TestClaimStaleExpectationNeverRecordsAnotherClaimsServer(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	lbls := map[string]string{"fence": ns}
	s1 := newIdleServer(t, lbls)
	c := newClaim(t, ns, bySelector("fence", ns))
	d := newClaim(t, ns, bySelector("fence", ns))
	releaseFinalizer(t, c)
	releaseFinalizer(t, d)

	a := directClaimReconciler()
	taken, err := a.take(t.Context(), getClaim(g, c), getServer(g, s1))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(taken).To(BeTrue())
	patchObject(g, s1, func(o *metalv1alpha1.Server) { o.Spec.ServerClaimRef, o.Spec.BootConfigurationRef = nil, nil })
	taken, err = directClaimReconciler().take(t.Context(), getClaim(g, d), getServer(g, s1))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(taken).To(BeTrue())

	claim := getClaim(g, c)
	name, _ := a.expect.server(claim.UID)
	s, err := a.pendingServer(t.Context(), claim, name)
	g.Expect(err).NotTo(HaveOccurred())
	if s != nil {
		if held := a.chooseHeld(claim, []*metalv1alpha1.Server{s}); held != nil {
			_, _ = a.recordBinding(t.Context(), claim, held)
		}
	}
	g.Expect(getClaim(g, c).Spec.ServerRef).To(BeNil(), "c recorded s1, which d holds")
}

// The server controller takes up only a binding both sides confirm: a server whose claim
// names nothing yet stays Available and off; once the claim names it, it is Reserved and
// boots; a second server proposed for the same claim is released (BindingRefused) without
// ever being powered on.
func TestServerTakesUpOnlyConfirmedBindings(t *testing.T) {
	g := NewWithT(t)
	f := newServerFixture(t, emulator.Options{Systems: 2})
	s := f.availableServer(0)
	other := f.availableServer(1)
	c := f.newClaim("fenced", metalv1alpha1.PowerOn)

	f.propose(s, c, metalv1alpha1.ServerBootConfigurationStateReady)
	g.Consistently(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		g.Expect(s.Spec.ServerClaimRef).NotTo(BeNil())
	}).Should(Succeed())
	g.Expect(f.em.PowerState(f.uuid(0))).To(Equal(bmc.PowerStateOff))
	g.Expect(f.em.BootHistory(f.uuid(0))).To(BeEmpty())

	f.record(s, c)
	waitState(t, s, metalv1alpha1.ServerStateReserved)
	g.Eventually(func(g Gomega) {
		g.Expect(get(g, s).(*metalv1alpha1.Server).Status.PowerState).To(Equal(metalv1alpha1.ServerOnPowerState))
	}).Should(Succeed())

	f.propose(other, c, metalv1alpha1.ServerBootConfigurationStateReady)
	g.Eventually(func(g Gomega) {
		get(g, other)
		g.Expect(other.Spec.ServerClaimRef).To(BeNil())
		g.Expect(other.Spec.BootConfigurationRef).To(BeNil())
	}).Should(Succeed())
	expectEvent(t, other, corev1.EventTypeNormal, metalv1alpha1.ReasonBindingRefused)
	g.Expect(get(g, other).(*metalv1alpha1.Server).Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
	g.Expect(f.em.PowerState(f.uuid(1))).To(Equal(bmc.PowerStateOff))
	g.Expect(f.em.BootHistory(f.uuid(1))).To(BeEmpty(), "a refused server never boots")
}

// releaseFinalizer removes the claim's finalizer when the test ends, before the claim is
// deleted: tests that call the claim controller's steps by hand have no controller to do it.
func releaseFinalizer(t *testing.T, c *metalv1alpha1.ServerClaim) {
	t.Cleanup(func() {
		patchObject(NewWithT(t), c, func(o *metalv1alpha1.ServerClaim) { o.Finalizers = nil })
	})
}

// discardRecorder drops events: the direct reconciler's tests look at objects, not events.
type discardRecorder struct{}

func (discardRecorder) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {
}
