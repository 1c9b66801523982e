package controller

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

const (
	testBMCUser     = "admin"
	testBMCPassword = "s3cret-bmc-password"
)

// testServerOptions are short intervals for tests: a power-off is forced after 1s (2s with
// the condition time's resolution), a settled server is looked at every 300ms.
func testServerOptions() ServerOptions {
	return ServerOptions{
		ResyncInterval:          300 * time.Millisecond,
		PowerOffTimeout:         time.Second,
		TransitionPollInterval:  50 * time.Millisecond,
		MaxConcurrentReconciles: 4,
		BMCRequestTimeout:       2 * time.Second,
	}
}

// startServerController starts a manager running the server controller only.
//
// Servers are cluster-scoped, so every running server controller reconciles every server,
// whichever test created it: tests that start one must not call t.Parallel.
func startServerController(t *testing.T) manager.Manager {
	t.Helper()
	return startManager(t, func(mgr manager.Manager) error { return setupServerController(mgr, testServerOptions()) })
}

// setupServerController registers a server controller reaching BMCs over Redfish.
func setupServerController(mgr manager.Manager, opts ServerOptions) error {
	return (&ServerReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Connector: &access.RedfishConnector{Reader: mgr.GetClient(), Timeout: opts.BMCRequestTimeout},
		Recorder:  mgr.GetEventRecorder("server-controller"),
		Options:   opts,
	}).SetupWithManager(mgr)
}

// serverFixture is one test's world: a namespace, an emulator with its BMCSecret, and a
// manager running the server controller.
type serverFixture struct {
	t      *testing.T
	ns     string
	em     *emulator.Emulator
	secret *metalv1alpha1.BMCSecret
	mgr    manager.Manager
}

// newServerFixture starts the world for one test. Objects created afterwards are deleted
// while the manager still runs; the emulator stops after the manager.
func newServerFixture(t *testing.T, opts emulator.Options) *serverFixture {
	t.Helper()
	ns := env.Namespace(t)
	opts.Username, opts.Password = testBMCUser, testBMCPassword
	if opts.PowerDelay == 0 {
		opts.PowerDelay = 20 * time.Millisecond
	}
	em := newEmulator(t, opts)
	secret := newBMCSecret(t, testBMCUser, testBMCPassword)
	mgr := startServerController(t)
	return &serverFixture{t: t, ns: ns, em: em, secret: secret, mgr: mgr}
}

// uuid returns the UUID of the emulator's system i.
func (f *serverFixture) uuid(i int) string { return f.em.Systems()[i].UUID }

// newServer creates a server for the emulator's system i.
func (f *serverFixture) newServer(i int, mutate ...func(*metalv1alpha1.Server)) *metalv1alpha1.Server {
	return newServer(f.t, f.em, f.secret, i, mutate...)
}

// availableServer creates a server for system i and waits until it is Available and off.
func (f *serverFixture) availableServer(i int, mutate ...func(*metalv1alpha1.Server)) *metalv1alpha1.Server {
	f.t.Helper()
	s := f.newServer(i, mutate...)
	waitState(f.t, s, metalv1alpha1.ServerStateAvailable)
	NewWithT(f.t).Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
	}).Should(Succeed())
	return s
}

// newClaim creates a ServerClaim (there is no claim controller: the test binds it itself).
func (f *serverFixture) newClaim(name string, power metalv1alpha1.Power) *metalv1alpha1.ServerClaim {
	f.t.Helper()
	c := &metalv1alpha1.ServerClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec:       metalv1alpha1.ServerClaimSpec{Power: power, Image: "example.org/os:1"},
	}
	create(f.t, c)
	return c
}

// bind does what the claim controller does: one locked patch setting the claim and boot
// configuration references, the claim's ServerBootConfiguration in the given state, and the
// claim recording the server (the fence that confirms the binding).
func (f *serverFixture) bind(s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim, sbcState metalv1alpha1.ServerBootConfigurationState) *metalv1alpha1.ServerBootConfiguration {
	f.t.Helper()
	sbc := f.propose(s, c, sbcState)
	f.record(s, c)
	return sbc
}

// propose is the first half of bind: the server references the claim, the claim does not
// name the server yet.
func (f *serverFixture) propose(s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim, sbcState metalv1alpha1.ServerBootConfigurationState) *metalv1alpha1.ServerBootConfiguration {
	f.t.Helper()
	g := NewWithT(f.t)
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(c), sbc)
	if apierrors.IsNotFound(err) {
		sbc = &metalv1alpha1.ServerBootConfiguration{
			ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Name},
			Spec: metalv1alpha1.ServerBootConfigurationSpec{
				ServerRef: metalv1alpha1.LocalObjectReference{Name: s.Name},
				Image:     c.Spec.Image,
			},
		}
		create(f.t, sbc)
		setBootConfigurationState(g, sbc, sbcState)
	} else {
		g.Expect(err).NotTo(HaveOccurred())
	}
	patchServer(g, s, func(o *metalv1alpha1.Server) {
		o.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: c.Namespace, Name: c.Name, UID: string(c.UID)}
		o.Spec.BootConfigurationRef = &metalv1alpha1.ObjectReference{Namespace: c.Namespace, Name: c.Name}
	})
	return sbc
}

// record is the second half of bind: the claim names the server.
func (f *serverFixture) record(s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim) {
	f.t.Helper()
	patchObject(NewWithT(f.t), c, func(o *metalv1alpha1.ServerClaim) {
		o.Spec.ServerRef = &metalv1alpha1.LocalObjectReference{Name: s.Name}
	})
}

// reserveAndBoot binds a new claim (power On) to an Available server, marks its boot
// configuration Ready and waits until the server is on after its network boot.
func (f *serverFixture) reserveAndBoot(s *metalv1alpha1.Server, claimName string) *metalv1alpha1.ServerClaim {
	f.t.Helper()
	g := NewWithT(f.t)
	c := f.newClaim(claimName, metalv1alpha1.PowerOn)
	f.bind(s, c, metalv1alpha1.ServerBootConfigurationStateReady)
	waitState(f.t, s, metalv1alpha1.ServerStateReserved)
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOnPowerState))
		g.Expect(s.Status.NetworkBootClaimUID).To(Equal(string(c.UID)))
	}).Should(Succeed())
	g.Expect(f.em.PowerState(s.Spec.SystemUUID)).To(Equal(bmc.PowerStateOn))
	return c
}

func setBootConfigurationState(g Gomega, sbc *metalv1alpha1.ServerBootConfiguration, state metalv1alpha1.ServerBootConfigurationState) {
	g.Eventually(func() error {
		cur := &metalv1alpha1.ServerBootConfiguration{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(sbc), cur); err != nil {
			return err
		}
		base := cur.DeepCopy()
		cur.Status.State = state
		return env.Client.Status().Patch(context.Background(), cur, client.MergeFrom(base))
	}).Should(Succeed())
}

// patchServer changes a server as a user would (merge patch, retried on conflicts).
func patchServer(g Gomega, s *metalv1alpha1.Server, mutate func(*metalv1alpha1.Server)) {
	patchObject(g, s, mutate)
}

// patchObject changes an object as a user would: a merge patch of what mutate changed on a
// fresh copy, under the optimistic lock, read and tried again on a conflict.
func patchObject[T any, P interface {
	*T
	client.Object
}](g Gomega, obj P, mutate func(P)) {
	g.Eventually(func() error {
		cur := P(new(T))
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), cur); err != nil {
			return err
		}
		base := cur.DeepCopyObject().(client.Object)
		mutate(cur)
		return env.Client.Patch(context.Background(), cur, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	}).Should(Succeed())
}

// annotate sets the operation annotation.
func annotate(g Gomega, s *metalv1alpha1.Server, op string) {
	patchServer(g, s, func(o *metalv1alpha1.Server) {
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[metalv1alpha1.OperationAnnotation] = op
	})
}

// wipeStatus replaces the server's status with an empty one.
func wipeStatus(g Gomega, s *metalv1alpha1.Server) {
	g.Eventually(func() error {
		cur := &metalv1alpha1.Server{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(s), cur); err != nil {
			return err
		}
		cur.Status = metalv1alpha1.ServerStatus{}
		return env.Client.Status().Update(context.Background(), cur)
	}).Should(Succeed())
}

func waitState(t *testing.T, s *metalv1alpha1.Server, state metalv1alpha1.ServerState) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.State).To(Equal(state))
	}).Should(Succeed(), "server %s never reached %s", s.Name, state)
}

// settledVersion waits until the server is not written for longer than two resyncs and
// returns its resource version.
func settledVersion(g Gomega, s *metalv1alpha1.Server) string {
	var rv string
	g.Eventually(func(g Gomega) {
		get(g, s)
		prev := s.ResourceVersion
		g.Consistently(func(g Gomega) {
			get(g, s)
			g.Expect(s.ResourceVersion).To(Equal(prev))
		}).WithTimeout(700 * time.Millisecond).Should(Succeed())
		rv = prev
	}).Should(Succeed())
	return rv
}

// condition returns the server's condition of type t (nil if absent).
func condition(s *metalv1alpha1.Server, t string) *metav1.Condition {
	return meta.FindStatusCondition(s.Status.Conditions, t)
}

// haveCondition matches a condition with the given status and reason.
func expectCondition(g Gomega, s *metalv1alpha1.Server, t string, status metav1.ConditionStatus, reason string) *metav1.Condition {
	c := condition(s, t)
	g.Expect(c).NotTo(BeNil(), "condition %s", t)
	g.Expect(c.Status).To(Equal(status), "condition %s: %s", t, c.Message)
	g.Expect(c.Reason).To(Equal(reason), "condition %s: %s", t, c.Message)
	return c
}

// serverEvents returns the events recorded about a server.
func serverEvents(g Gomega, s *metalv1alpha1.Server) []eventsv1.Event {
	return clusterObjectEvents(g, "Server", s.Name)
}

// clusterObjectEvents returns the events recorded about a cluster-scoped object (they land in
// the default namespace).
func clusterObjectEvents(g Gomega, kind, name string) []eventsv1.Event {
	var list eventsv1.EventList
	g.Expect(env.Client.List(context.Background(), &list, client.InNamespace(metav1.NamespaceDefault))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Regarding.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// expectEvent waits for an event with the given reason about the server and returns it.
func expectEvent(t *testing.T, s *metalv1alpha1.Server, eventType, reason string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	NewWithT(t).Eventually(func(g Gomega) {
		var seen []string
		for _, e := range serverEvents(g, s) {
			if e.Reason == reason && e.Type == eventType {
				found = e
				return
			}
			seen = append(seen, e.Type+"/"+e.Reason+"@"+e.Regarding.ResourceVersion)
		}
		g.Expect(false).To(BeTrue(), "no %s event %s for server %s; seen %v", eventType, reason, s.Name, seen)
	}).Should(Succeed())
	return found
}

// bootTargets returns the boot sources of a system's boots, oldest first.
func bootTargets(em *emulator.Emulator, uuid string) []bmc.BootTarget {
	var out []bmc.BootTarget
	for _, b := range em.BootHistory(uuid) {
		out = append(out, b.Target)
	}
	return out
}
