package controller

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/testing/invariants"
)

// testClaimOptions make the claim controller's timers short for tests.
func testClaimOptions() ServerClaimOptions {
	o := DefaultServerClaimOptions()
	o.UnboundRetryMin = 100 * time.Millisecond
	o.UnboundRetryMax = time.Second
	o.ServerReservedGrace = 300 * time.Millisecond
	o.ExpectationTimeout = 5 * time.Second
	return o
}

func setupClaimController(mgr manager.Manager, opts ServerClaimOptions) error {
	return (&ServerClaimReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder("serverclaim-controller"),
		Options:   opts,
	}).SetupWithManager(mgr)
}

// startClaimController starts a manager running only the claim controller: the test plays
// the server controller's part (status writes) explicitly.
func startClaimController(t *testing.T) {
	t.Helper()
	startManager(t, func(mgr manager.Manager) error { return setupClaimController(mgr, testClaimOptions()) })
}

func newIdleServer(t *testing.T, lbls map[string]string, mutate ...func(*metalv1alpha1.Server)) *metalv1alpha1.Server {
	return env.IdleServer(t, lbls, mutate...)
}

func setServerStatus(g Gomega, s *metalv1alpha1.Server, state metalv1alpha1.ServerState, power metalv1alpha1.ServerPowerState) {
	env.SetServerStatus(g, s, state, power)
}

// reserveAndExpectBound plays the server controller's part of a binding: once the claim
// controller wrote the binding onto s, it marks s Reserved (with the given power), and waits
// for the claim to report Bound.
func reserveAndExpectBound(g Gomega, s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim, power metalv1alpha1.ServerPowerState) {
	g.Eventually(func(g Gomega) {
		g.Expect(getServer(g, s).Spec.ServerClaimRef).NotTo(BeNil())
	}).Should(Succeed())
	setServerStatus(g, s, metalv1alpha1.ServerStateReserved, power)
	g.Eventually(func(g Gomega) {
		g.Expect(getClaim(g, c).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
	}).Should(Succeed())
}

func newClaim(t *testing.T, ns string, mutate ...func(*metalv1alpha1.ServerClaim)) *metalv1alpha1.ServerClaim {
	t.Helper()
	c := &metalv1alpha1.ServerClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "claim-"},
		Spec:       metalv1alpha1.ServerClaimSpec{Power: metalv1alpha1.PowerOn, Image: "my-osimage:latest"},
	}
	for _, m := range mutate {
		m(c)
	}
	create(t, c)
	return c
}

func byRef(name string) func(*metalv1alpha1.ServerClaim) {
	return func(c *metalv1alpha1.ServerClaim) { c.Spec.ServerRef = &metalv1alpha1.LocalObjectReference{Name: name} }
}

func bySelector(kv ...string) func(*metalv1alpha1.ServerClaim) {
	return func(c *metalv1alpha1.ServerClaim) {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		c.Spec.ServerSelector = &metav1.LabelSelector{MatchLabels: m}
	}
}

func getClaim(g Gomega, c *metalv1alpha1.ServerClaim) *metalv1alpha1.ServerClaim {
	cur := &metalv1alpha1.ServerClaim{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(c), cur)).To(Succeed())
	return cur
}

func getServer(g Gomega, s *metalv1alpha1.Server) *metalv1alpha1.Server {
	cur := &metalv1alpha1.Server{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(s), cur)).To(Succeed())
	return cur
}

// boundReason is the reason of the claim's Bound condition ("" without one).
func boundReason(c *metalv1alpha1.ServerClaim) string {
	if cond := meta.FindStatusCondition(c.Status.Conditions, metalv1alpha1.ServerClaimBound); cond != nil {
		return cond.Reason
	}
	return ""
}

// expectUnbound waits for the claim to report Unbound with the reason, and checks that no
// server holds it.
func expectUnbound(t *testing.T, c *metalv1alpha1.ServerClaim, reason string) {
	t.Helper()
	g := NewWithT(t)
	g.Eventually(func(g Gomega) {
		cur := getClaim(g, c)
		g.Expect(cur.Status.Phase).To(Equal(metalv1alpha1.PhaseUnbound))
		g.Expect(boundReason(cur)).To(Equal(reason))
	}).Should(Succeed())
	list := &metalv1alpha1.ServerList{}
	g.Expect(env.Client.List(t.Context(), list)).To(Succeed())
	cur := getClaim(g, c)
	for _, s := range list.Items {
		if ref := s.Spec.ServerClaimRef; ref != nil {
			g.Expect(ref.UID).NotTo(Equal(string(cur.UID)), "server %s holds the unbound claim", s.Name)
		}
	}
}

// TestClaimBindsByRefAndReportsBound: the seed's reference claim against a free server. The
// binding is written in one server patch (claim ref with uid and boot configuration ref), the
// claim gets its finalizer, the boot configuration is created owned by the claim, and the
// claim turns Bound once the server is Reserved (not before).
func TestClaimBindsByRefAndReportsBound(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	startClaimController(t)
	s := newIdleServer(t, nil)
	c := newClaim(t, ns, byRef(s.Name), func(c *metalv1alpha1.ServerClaim) {
		c.Spec.IgnitionSecretRef = &metalv1alpha1.LocalObjectReference{Name: "my-ignition-secret"}
	})

	g.Eventually(func(g Gomega) {
		cur := getServer(g, s)
		g.Expect(cur.Spec.ServerClaimRef).To(Equal(&metalv1alpha1.ImmutableObjectReference{
			Namespace: ns, Name: c.Name, UID: string(c.UID)}))
		g.Expect(cur.Spec.BootConfigurationRef).To(Equal(&metalv1alpha1.ObjectReference{Namespace: ns, Name: c.Name}))
	}).Should(Succeed())

	sbc := &metalv1alpha1.ServerBootConfiguration{}
	g.Eventually(func() error {
		return env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: c.Name}, sbc)
	}).Should(Succeed())
	g.Expect(sbc.Spec.ServerRef.Name).To(Equal(s.Name))
	g.Expect(sbc.Spec.Image).To(Equal("my-osimage:latest"))
	g.Expect(sbc.Spec.IgnitionSecretRef).To(Equal(&metalv1alpha1.LocalObjectReference{Name: "my-ignition-secret"}))
	owner := metav1.GetControllerOf(sbc)
	g.Expect(owner).NotTo(BeNil())
	g.Expect(owner.UID).To(Equal(c.UID))
	g.Expect(*owner.BlockOwnerDeletion).To(BeTrue())

	g.Eventually(func(g Gomega) {
		cur := getClaim(g, c)
		g.Expect(cur.Finalizers).To(ContainElement(metalv1alpha1.ServerClaimFinalizer))
		// Not Reserved yet: after the grace period the claim says what it waits for.
		g.Expect(cur.Status.Phase).To(Equal(metalv1alpha1.PhaseUnbound))
		g.Expect(boundReason(cur)).To(Equal(metalv1alpha1.ReasonWaitingForServer))
	}).Should(Succeed())

	setServerStatus(g, s, metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerOffPowerState)
	g.Eventually(func(g Gomega) {
		cur := getClaim(g, c)
		g.Expect(cur.Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
		g.Expect(boundReason(cur)).To(Equal(metalv1alpha1.ReasonBound))
		ready := meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.ServerClaimReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(metalv1alpha1.ReasonBootConfigurationPending))
		g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
	}).Should(Succeed())

	// The boot configuration turns Ready: the claim waits for power next, then is Ready.
	setSBCState(g, ns, c.Name, metalv1alpha1.ServerBootConfigurationStateReady)
	g.Eventually(func(g Gomega) {
		ready := meta.FindStatusCondition(getClaim(g, c).Status.Conditions, metalv1alpha1.ServerClaimReady)
		g.Expect(ready.Reason).To(Equal(metalv1alpha1.ReasonServerPoweringOn))
	}).Should(Succeed())
	setServerStatus(g, s, metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerOnPowerState)
	g.Eventually(func(g Gomega) {
		g.Expect(meta.IsStatusConditionTrue(getClaim(g, c).Status.Conditions, metalv1alpha1.ServerClaimReady)).To(BeTrue())
	}).Should(Succeed())

	// Deletion: the boot configuration goes, the finalizer goes; the server's release is the
	// server controller's (it keeps the claim ref here since it was Reserved).
	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(t.Context(), client.ObjectKeyFromObject(c), &metalv1alpha1.ServerClaim{}))
	}).Should(BeTrue())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: c.Name}, &metalv1alpha1.ServerBootConfiguration{}))
	}).Should(BeTrue())
}

func setSBCState(g Gomega, ns, name string, state metalv1alpha1.ServerBootConfigurationState) {
	g.Eventually(func() error {
		sbc := &metalv1alpha1.ServerBootConfiguration{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, sbc); err != nil {
			return err
		}
		base := sbc.DeepCopy()
		sbc.Status.State = state
		return env.Client.Status().Patch(context.Background(), sbc, client.MergeFrom(base))
	}).Should(Succeed())
}

// TestClaimSelectorFillsServerRef: a selector claim gets spec.serverRef filled with the
// server it binds, which matches the selector; a second matching claim gets another one.
func TestClaimSelectorFillsServerRef(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	startClaimController(t)
	gpu1 := newIdleServer(t, map[string]string{"hardwareType": "gpu-node", "location": "datacenter-1"})
	gpu2 := newIdleServer(t, map[string]string{"hardwareType": "gpu-node", "location": "datacenter-1"})
	newIdleServer(t, map[string]string{"hardwareType": "cpu-node", "location": "datacenter-1"})

	c1 := newClaim(t, ns, bySelector("hardwareType", "gpu-node", "location", "datacenter-1"))
	c2 := newClaim(t, ns, bySelector("hardwareType", "gpu-node", "location", "datacenter-1"))
	var names []string
	for _, c := range []*metalv1alpha1.ServerClaim{c1, c2} {
		g.Eventually(func(g Gomega) {
			cur := getClaim(g, c)
			g.Expect(cur.Spec.ServerRef).NotTo(BeNil())
			names = append(names, cur.Spec.ServerRef.Name)
		}).Should(Succeed())
	}
	g.Expect(names).To(ConsistOf(gpu1.Name, gpu2.Name))

	// A third gpu claim finds nothing and says so.
	c3 := newClaim(t, ns, bySelector("hardwareType", "gpu-node"))
	expectUnbound(t, c3, metalv1alpha1.ReasonNoMatchingServer)
}

// TestClaimRejections: every reason a claim cannot bind, with nothing bound lost.
func TestClaimRejections(t *testing.T) {
	ns := env.Namespace(t)
	startClaimController(t)

	t.Run("serverRef to a missing server", func(t *testing.T) {
		c := newClaim(t, ns, byRef("does-not-exist"))
		expectUnbound(t, c, metalv1alpha1.ReasonServerNotFound)
	})
	t.Run("selector matching nothing", func(t *testing.T) {
		c := newClaim(t, ns, bySelector("hardwareType", "unicorn"))
		expectUnbound(t, c, metalv1alpha1.ReasonNoMatchingServer)
	})
	t.Run("server not Available", func(t *testing.T) {
		g := NewWithT(t)
		s := newIdleServer(t, nil)
		setServerStatus(g, s, metalv1alpha1.ServerStateInitial, metalv1alpha1.ServerOffPowerState)
		c := newClaim(t, ns, byRef(s.Name))
		expectUnbound(t, c, metalv1alpha1.ReasonServerNotAvailable)
		// Once Available, the same claim binds: the server event wakes it.
		setServerStatus(g, s, metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState)
		g.Eventually(func(g Gomega) {
			g.Expect(getServer(g, s).Spec.ServerClaimRef).NotTo(BeNil())
		}).Should(Succeed())
	})
	t.Run("server powered on", func(t *testing.T) {
		g := NewWithT(t)
		s := newIdleServer(t, nil)
		setServerStatus(g, s, metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOnPowerState)
		c := newClaim(t, ns, byRef(s.Name))
		expectUnbound(t, c, metalv1alpha1.ReasonServerNotAvailable)
	})
	t.Run("cordoned server by ref, then uncordoned", func(t *testing.T) {
		g := NewWithT(t)
		s := newIdleServer(t, nil, func(s *metalv1alpha1.Server) { s.Spec.Unclaimable = true })
		c := newClaim(t, ns, byRef(s.Name))
		expectUnbound(t, c, metalv1alpha1.ReasonServerCordoned)
		g.Consistently(func(g Gomega) {
			g.Expect(getServer(g, s).Spec.ServerClaimRef).To(BeNil())
		}).Should(Succeed())
		patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.Unclaimable = false })
		g.Eventually(func(g Gomega) {
			g.Expect(getServer(g, s).Spec.ServerClaimRef).NotTo(BeNil())
		}).Should(Succeed())
	})
	t.Run("cordoned server skipped by selector", func(t *testing.T) {
		g := NewWithT(t)
		s := newIdleServer(t, map[string]string{"cordon-test": "yes"}, func(s *metalv1alpha1.Server) { s.Spec.Unclaimable = true })
		c := newClaim(t, ns, bySelector("cordon-test", "yes"))
		expectUnbound(t, c, metalv1alpha1.ReasonNoMatchingServer)
		g.Consistently(func(g Gomega) {
			g.Expect(getServer(g, s).Spec.ServerClaimRef).To(BeNil())
		}).Should(Succeed())
	})
	t.Run("taint not tolerated, then tolerated by another claim", func(t *testing.T) {
		g := NewWithT(t)
		s := newIdleServer(t, map[string]string{"taint-test": "yes"}, func(s *metalv1alpha1.Server) {
			s.Spec.Taints = []metalv1alpha1.Taint{{Key: "dedicated", Value: "gpu"}}
		})
		c := newClaim(t, ns, byRef(s.Name))
		expectUnbound(t, c, metalv1alpha1.ReasonTaintNotTolerated)
		sel := newClaim(t, ns, bySelector("taint-test", "yes"))
		expectUnbound(t, sel, metalv1alpha1.ReasonNoMatchingServer)
		g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())

		tolerating := newClaim(t, ns, bySelector("taint-test", "yes"), func(c *metalv1alpha1.ServerClaim) {
			c.Spec.Tolerations = []metalv1alpha1.Toleration{{Key: "dedicated", Operator: metalv1alpha1.TolerationOpExists}}
		})
		g.Eventually(func(g Gomega) {
			ref := getServer(g, s).Spec.ServerClaimRef
			g.Expect(ref).NotTo(BeNil())
			g.Expect(ref.Name).To(Equal(tolerating.Name))
		}).Should(Succeed())
	})
	t.Run("ref and selector must both hold", func(t *testing.T) {
		s := newIdleServer(t, map[string]string{"type": "storage"})
		c := newClaim(t, ns, byRef(s.Name), bySelector("type", "compute"))
		expectUnbound(t, c, metalv1alpha1.ReasonSelectorMismatch)
	})
	t.Run("server held by another claim", func(t *testing.T) {
		g := NewWithT(t)
		s := newIdleServer(t, nil)
		first := newClaim(t, ns, byRef(s.Name))
		g.Eventually(func(g Gomega) {
			g.Expect(getServer(g, s).Spec.ServerClaimRef).NotTo(BeNil())
		}).Should(Succeed())
		setServerStatus(g, s, metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerOffPowerState)
		second := newClaim(t, ns, byRef(s.Name))
		expectUnbound(t, second, metalv1alpha1.ReasonServerClaimedByOther)
		g.Eventually(func(g Gomega) {
			g.Expect(getClaim(g, first).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
		}).Should(Succeed())
		g.Expect(getServer(g, s).Spec.ServerClaimRef.UID).To(Equal(string(first.UID)))
		// No boot configuration for the second claim.
		err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: second.Name}, &metalv1alpha1.ServerBootConfiguration{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	})
	t.Run("parked server", func(t *testing.T) {
		s := newIdleServer(t, nil, func(s *metalv1alpha1.Server) {
			s.Annotations[metalv1alpha1.ParkedAnnotation] = "true"
		})
		c := newClaim(t, ns, byRef(s.Name))
		expectUnbound(t, c, metalv1alpha1.ReasonServerParked)
	})
	t.Run("invalid selector", func(t *testing.T) {
		c := newClaim(t, ns, func(c *metalv1alpha1.ServerClaim) {
			c.Spec.ServerSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "a", Operator: "Near", Values: []string{"b"}},
			}}
		})
		NewWithT(t).Eventually(func(g Gomega) {
			g.Expect(boundReason(getClaim(g, c))).To(Equal(metalv1alpha1.ReasonInvalidSelector))
		}).Should(Succeed())
	})
}

// TestClaimDeletedBeforeServerReservedUndoesBinding: a binding the server never took up is
// undone by the claim itself on deletion, so a Retain server does not end up Released for a
// claim that never had it.
func TestClaimDeletedBeforeServerReservedUndoesBinding(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	startClaimController(t)
	s := newIdleServer(t, nil, func(s *metalv1alpha1.Server) { s.Spec.ReclaimPolicy = metalv1alpha1.ReclaimPolicyRetain })
	c := newClaim(t, ns, byRef(s.Name))
	g.Eventually(func(g Gomega) {
		g.Expect(getServer(g, s).Spec.ServerClaimRef).NotTo(BeNil())
		g.Expect(getClaim(g, c).Finalizers).To(ContainElement(metalv1alpha1.ServerClaimFinalizer))
	}).Should(Succeed())
	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	g.Eventually(func(g Gomega) {
		cur := getServer(g, s)
		g.Expect(cur.Spec.ServerClaimRef).To(BeNil())
		g.Expect(cur.Spec.BootConfigurationRef).To(BeNil())
	}).Should(Succeed())
}

// TestClaimRecreatedSameNameDoesNotInherit: a claim deleted and created again under the same
// name is another claim: the server still holding the old one's uid is not its own.
func TestClaimRecreatedSameNameDoesNotInherit(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	startClaimController(t)
	s := newIdleServer(t, nil)
	// The server holds a claim named "reborn" with an old uid, as if the claim had been deleted
	// and the server controller had not released it yet.
	patchServer(g, s, func(o *metalv1alpha1.Server) {
		o.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: ns, Name: "reborn", UID: "old-uid"}
	})
	setServerStatus(g, s, metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerOffPowerState)

	c := newClaim(t, ns, byRef(s.Name), func(c *metalv1alpha1.ServerClaim) {
		c.GenerateName = ""
		c.Name = "reborn"
	})
	expectUnbound(t, c, metalv1alpha1.ReasonServerClaimedByOther)
	g.Consistently(func(g Gomega) {
		g.Expect(getServer(g, s).Spec.ServerClaimRef.UID).To(Equal("old-uid"))
		g.Expect(getClaim(g, c).Status.Phase).NotTo(Equal(metalv1alpha1.PhaseBound))
	}).Should(Succeed())

	// Once released, the new claim binds it with its own uid.
	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.ServerClaimRef = nil })
	setServerStatus(g, s, metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState)
	g.Eventually(func(g Gomega) {
		ref := getServer(g, s).Spec.ServerClaimRef
		g.Expect(ref).NotTo(BeNil())
		g.Expect(ref.UID).To(Equal(string(c.UID)))
	}).Should(Succeed())
}

// TestClaimBindingLost: a Bound claim whose server's claim ref is cleared by hand goes back
// to Unbound with a reason, drops its boot configuration, and binds the server again when
// it is free (its serverRef is immutable, so the same server).
func TestClaimBindingLost(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	startClaimController(t)
	s := newIdleServer(t, nil)
	c := newClaim(t, ns, byRef(s.Name))
	reserveAndExpectBound(g, s, c, metalv1alpha1.ServerOnPowerState)

	// An operator clears the claim ref while the server is powered on: it is not free.
	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.ServerClaimRef = nil })
	g.Eventually(func(g Gomega) {
		cl := getClaim(g, c)
		g.Expect(cl.Status.Phase).To(Equal(metalv1alpha1.PhaseUnbound))
		g.Expect(boundReason(cl)).To(Equal(metalv1alpha1.ReasonServerNotAvailable))
		err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: c.Name}, &metalv1alpha1.ServerBootConfiguration{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	}).Should(Succeed())

	setServerStatus(g, s, metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState)
	g.Eventually(func(g Gomega) {
		ref := getServer(g, s).Spec.ServerClaimRef
		g.Expect(ref).NotTo(BeNil())
		g.Expect(ref.UID).To(Equal(string(c.UID)))
	}).Should(Succeed())
}

// TestClaimEvents: a rejection is a Warning event on the claim, and the binding that ends the
// reported wait is a Normal Bound event. A claim bound at once tells it by its phase and
// Bound condition only (as a PersistentVolumeClaim does): a burst costs no event per bind.
func TestClaimEvents(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	// A long grace: the test plays the server controller, and must not be taken for a slow one.
	startManager(t, func(mgr manager.Manager) error {
		o := testClaimOptions()
		o.ServerReservedGrace = time.Minute
		return setupClaimController(mgr, o)
	})

	name := "late-" + ns
	waiting := newClaim(t, ns, byRef(name))
	g.Eventually(eventReasons(waiting)).Should(ContainElement(metalv1alpha1.ReasonServerNotFound))
	late := newIdleServer(t, nil, func(s *metalv1alpha1.Server) { s.GenerateName, s.Name = "", name })
	reserveAndExpectBound(g, late, waiting, metalv1alpha1.ServerOffPowerState)
	g.Eventually(eventReasons(waiting)).Should(ContainElement(metalv1alpha1.ReasonBound))
	for _, e := range eventsOf(g, waiting) {
		if e.Reason == metalv1alpha1.ReasonBound {
			g.Expect(e.Type).To(Equal(corev1.EventTypeNormal))
			g.Expect(e.Note).To(Equal("Bound to server " + name))
			g.Expect(e.Related).NotTo(BeNil())
			g.Expect(e.Related.Name).To(Equal(name))
		}
	}

	// Bound at once: no event. (Should the claim be reconciled before the manager's cache
	// shows the new server, it reports NoMatchingServer first, and then a Bound event is
	// right: a Bound event without a warning before it is what must not happen.)
	free := newIdleServer(t, map[string]string{"events": ns})
	atOnce := newClaim(t, ns, bySelector("events", ns))
	reserveAndExpectBound(g, free, atOnce, metalv1alpha1.ServerOffPowerState)
	g.Consistently(func(g Gomega) {
		var warned bool
		for _, e := range eventsOf(g, atOnce) {
			warned = warned || e.Type == corev1.EventTypeWarning
			if e.Reason == metalv1alpha1.ReasonBound {
				g.Expect(warned).To(BeTrue(), "a Bound event for a claim bound at once")
			}
		}
	}, 500*time.Millisecond).Should(Succeed())
}

// TestClaimReleasesPickedServers: a server a claim picked but could not take (the cache
// showed it free, the API server did not) goes back to the pool, so it stays available to
// other claims once it is free again. The reconciler runs without a manager, reading the
// API server directly, to make the pool and the server disagree on purpose.
func TestClaimReleasesPickedServers(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	r := &ServerClaimReconciler{Client: env.Client, APIReader: env.Client, Scheme: env.Client.Scheme(),
		Options: testClaimOptions(), Pool: binding.NewPool(), expect: newExpectations(), versions: newVersions()}
	lbls := map[string]string{"pick": ns}
	s := newIdleServer(t, lbls)
	c := newClaim(t, ns, bySelector("pick", ns))
	sel := labels.SelectorFromSet(lbls)

	// The pool saw the server free; the API server now says it is cordoned.
	r.Pool.Observe(getServer(g, s))
	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.Unclaimable = true })
	cand, ok, _ := r.Pool.Pick(sel, lbls, string(c.UID), nil)
	g.Expect(ok).To(BeTrue())
	taken, err := r.takeCandidate(t.Context(), getClaim(g, c), sel, cand.Name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(taken).To(BeNil(), "a cordoned server is not taken")

	// Uncordoned, it is picked again.
	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.Unclaimable = false })
	r.Pool.Observe(getServer(g, s))
	again, ok, busy := r.Pool.Pick(sel, lbls, string(c.UID), nil)
	g.Expect(busy).To(BeFalse(), "no picker holds it any more")
	g.Expect(ok).To(BeTrue())
	g.Expect(again.Name).To(Equal(s.Name))
	r.Pool.Done(again.Name)

	// Taken: it leaves the pool, and the copy from before the take does not bring it back.
	before := getServer(g, s)
	cand, _, _ = r.Pool.Pick(sel, lbls, string(c.UID), nil)
	taken, err = r.takeCandidate(t.Context(), getClaim(g, c), sel, cand.Name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(taken).NotTo(BeNil())
	r.Pool.Observe(before)
	_, free, _ := r.Pool.Pick(sel, lbls, string(c.UID), nil)
	g.Expect(free).To(BeFalse(), "the taken server left the pool")
	g.Expect(getServer(g, s).Spec.ServerClaimRef.UID).To(Equal(string(c.UID)))
}

// assertBindingInvariants checks the binding invariants by identity and returns the number
// of claims bound; it fails on a hard violation and on anything unsettled.
func assertBindingInvariants(g Gomega, namespaces ...string) int {
	r, err := invariants.Check(context.Background(), env.Client, namespaces...)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Violations).To(BeEmpty())
	g.Expect(r.Unsettled).To(BeEmpty())
	return r.Bound
}

// TestClaimConcurrency mirrors the reference's concurrency scenarios, checked by identity:
// more servers than claims, and more claims than servers, with and without selectors.
func TestClaimConcurrency(t *testing.T) {
	cases := []struct {
		name              string
		servers, claims   int
		selector          bool
		serversAfterClaim bool
	}{
		{"10 servers, 4 ref-less claims", 10, 4, false, false},
		{"10 servers, 4 selector claims", 10, 4, true, false},
		{"8 ref-less claims, then 1 server", 1, 8, false, true},
		{"8 selector claims, then 1 server", 1, 8, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := env.Namespace(t)
			startClaimController(t)
			lbls := map[string]string{"foo": "bar"}
			makeServers := func() {
				for range tc.servers {
					newIdleServer(t, lbls)
				}
			}
			if !tc.serversAfterClaim {
				makeServers()
			}
			for range tc.claims {
				if tc.selector {
					newClaim(t, ns, bySelector("foo", "bar"))
				} else {
					newClaim(t, ns)
				}
			}
			if tc.serversAfterClaim {
				makeServers()
			}
			want := min(tc.servers, tc.claims)
			g.Eventually(func(g Gomega) {
				g.Expect(assertBindingInvariants(g, ns)).To(Equal(want))
			}).Should(Succeed())
			g.Consistently(func(g Gomega) {
				g.Expect(assertBindingInvariants(g, ns)).To(Equal(want))
			}).Should(Succeed())
		})
	}
}

// TestClaimKeepsBindingWhileServerInError: a Bound claim whose server's BMC fails (server in
// Error) stays Bound, says why it is not Ready, keeps its boot configuration, and on deletion
// leaves the release to the server controller (the binding was taken up).
func TestClaimKeepsBindingWhileServerInError(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	startClaimController(t)
	s := newIdleServer(t, nil, func(s *metalv1alpha1.Server) { s.Spec.ReclaimPolicy = metalv1alpha1.ReclaimPolicyRetain })
	c := newClaim(t, ns, byRef(s.Name))
	reserveAndExpectBound(g, s, c, metalv1alpha1.ServerOnPowerState)

	setServerStatus(g, s, metalv1alpha1.ServerStateError, metalv1alpha1.ServerOnPowerState)
	g.Eventually(func(g Gomega) {
		ready := meta.FindStatusCondition(getClaim(g, c).Status.Conditions, metalv1alpha1.ServerClaimReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(metalv1alpha1.ReasonServerError))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(getClaim(g, c).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
		g.Expect(env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: c.Name}, &metalv1alpha1.ServerBootConfiguration{})).To(Succeed())
	}).Should(Succeed())

	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(t.Context(), client.ObjectKeyFromObject(c), &metalv1alpha1.ServerClaim{}))
	}).Should(BeTrue())
	// The claim did not undo a binding the server had taken up: releasing it (and keeping it
	// Released, by Retain) is the server controller's.
	g.Consistently(func(g Gomega) {
		g.Expect(getServer(g, s).Spec.ServerClaimRef).NotTo(BeNil())
	}).Should(Succeed())
}

// TestClaimByRefAndSelector binds when both hold (reference scenario 2: the server named and
// labelled to match, with an In expression).
func TestClaimByRefAndSelector(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	startClaimController(t)
	s := newIdleServer(t, map[string]string{"type": "storage", "env": "staging"})
	c := newClaim(t, ns, byRef(s.Name), func(c *metalv1alpha1.ServerClaim) {
		c.Spec.Power = metalv1alpha1.PowerOff
		c.Spec.ServerSelector = &metav1.LabelSelector{
			MatchLabels: map[string]string{"type": "storage"},
			MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "env", Operator: metav1.LabelSelectorOpIn, Values: []string{"test", "staging"}},
			},
		}
	})
	g.Eventually(func(g Gomega) {
		ref := getServer(g, s).Spec.ServerClaimRef
		g.Expect(ref).NotTo(BeNil())
		g.Expect(ref.UID).To(Equal(string(c.UID)))
	}).Should(Succeed())
	setServerStatus(g, s, metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerOffPowerState)
	g.Eventually(func(g Gomega) {
		cur := getClaim(g, c)
		g.Expect(cur.Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
		g.Expect(cur.Spec.ServerRef.Name).To(Equal(s.Name))
	}).Should(Succeed())
}

// TestClaimStaysBoundWhenServerCordonedLater: cordoning blocks new bindings only (reference
// scenario 13).
func TestClaimStaysBoundWhenServerCordonedLater(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	startClaimController(t)
	s := newIdleServer(t, nil)
	c := newClaim(t, ns, byRef(s.Name))
	reserveAndExpectBound(g, s, c, metalv1alpha1.ServerOffPowerState)

	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.Unclaimable = true })
	g.Consistently(func(g Gomega) {
		g.Expect(getClaim(g, c).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
		ref := getServer(g, s).Spec.ServerClaimRef
		g.Expect(ref).NotTo(BeNil())
		g.Expect(ref.UID).To(Equal(string(c.UID)))
	}).Should(Succeed())
}
