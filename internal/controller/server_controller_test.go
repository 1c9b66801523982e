package controller

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/metrics"
)

var macPattern = regexp.MustCompile(`^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$`)

// Initial -> Discovery -> Available: the system URI is filled in, the inventory read, and a
// system that was on is powered off gracefully.
func TestServerDiscovery(t *testing.T) {
	f := newServerFixture(t, emulator.Options{InitialPower: bmc.PowerStateOn})
	g := NewWithT(t)

	s := f.newServer(0)
	waitState(t, s, metalv1alpha1.ServerStateAvailable)

	get(g, s)
	g.Expect(s.Spec.SystemURI).To(Equal(f.em.Systems()[0].URI))
	g.Expect(s.Status.Manufacturer).To(Equal(emulator.DefaultManufacturer))
	g.Expect(s.Status.Model).To(Equal(emulator.DefaultModel))
	g.Expect(s.Status.SKU).NotTo(BeEmpty())
	g.Expect(s.Status.SerialNumber).NotTo(BeEmpty())
	g.Expect(s.Status.BIOSVersion).NotTo(BeEmpty())
	g.Expect(s.Status.TotalSystemMemory).NotTo(BeNil())
	g.Expect(s.Status.TotalSystemMemory.Cmp(resource.MustParse("128Gi"))).To(Equal(0), "memory %s", s.Status.TotalSystemMemory)
	g.Expect(s.Status.Processors).To(HaveLen(2))
	g.Expect(s.Status.Processors[0].TotalCores).To(BeNumerically(">", 0))
	g.Expect(s.Status.NetworkInterfaces).NotTo(BeEmpty())
	for _, n := range s.Status.NetworkInterfaces {
		g.Expect(n.MACAddress).To(MatchRegexp(macPattern.String()))
	}
	g.Expect(s.Status.Storages).NotTo(BeEmpty())
	g.Expect(s.Status.Storages[0].Drives).NotTo(BeEmpty())
	g.Expect(s.Status.Storages[0].Drives[0].Capacity).NotTo(BeNil())
	expectCondition(g, s, metalv1alpha1.ServerDiscovered, metav1.ConditionTrue, metalv1alpha1.ReasonInventoryRead)
	expectCondition(g, s, metalv1alpha1.ServerBMCReachable, metav1.ConditionTrue, metalv1alpha1.ReasonBMCReachable)
	g.Expect(s.Finalizers).To(ContainElement(metalv1alpha1.ServerFinalizer))

	// Available keeps it off: gracefully, and the in-flight condition does not go stale.
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
		expectCondition(g, s, metalv1alpha1.ServerPoweringOff, metav1.ConditionFalse, metalv1alpha1.ReasonPowerStateReached)
	}).Should(Succeed())
	g.Expect(f.em.PowerState(s.Spec.SystemUUID)).To(Equal(bmc.PowerStateOff))
	g.Expect(f.em.ResetCount(s.Spec.SystemUUID, bmc.ResetGracefulShutdown)).To(BeNumerically(">=", 1))
	g.Expect(f.em.ResetCount(s.Spec.SystemUUID, bmc.ResetForceOff)).To(BeZero())
	// The Redfish-only discovery says so in its condition and state, not in an event per
	// server (an agent's report has one, with its digest). The power-off was written by a
	// later reconcile than the discovery's.
	for _, e := range serverEvents(g, s) {
		g.Expect(e.Reason).NotTo(Equal("Discovered"))
	}
}

// Onboarding reads the system at most once per state: Initial reads it, Discovery reads it
// again for the inventory (whose collections follow that read's links), and Available reuses
// Discovery's read. The power-off that Available sends invalidates the read: the next look
// reads the system again and sees it off.
func TestServerOnboardingReadsTheSystemOncePerState(t *testing.T) {
	em := newEmulator(t, emulator.Options{Username: testBMCUser, Password: testBMCPassword,
		InitialPower: bmc.PowerStateOn, PowerDelay: 20 * time.Millisecond})
	secret := newBMCSecret(t, testBMCUser, testBMCPassword)
	opts := testServerOptions()
	opts.TransitionPollInterval, opts.ResyncInterval = 2*time.Second, time.Hour
	startManager(t, func(mgr manager.Manager) error { return setupServerControllerWith(mgr, opts) })
	g := NewWithT(t)

	sys := em.Systems()[0]
	s := newServer(t, em, secret, 0, func(o *metalv1alpha1.Server) { o.Spec.SystemURI = sys.URI })
	uuid := sys.UUID
	waitState(t, s, metalv1alpha1.ServerStateAvailable)
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
	}).WithTimeout(10 * time.Second).Should(Succeed())
	g.Expect(em.ResetCount(uuid, bmc.ResetGracefulShutdown)).To(Equal(1))
	// Initial, Discovery, the power-off's own read (the client checks the state and the reset
	// types first), and the look after it: Available acted on Discovery's read.
	g.Expect(em.SystemReads(uuid)).To(Equal(4))
	g.Expect(s.Status.Processors).To(HaveLen(2))
	g.Expect(s.Status.Storages).NotTo(BeEmpty())
}

// The inventory a server records is the same whether its BMC expands collections, does not
// advertise $expand, or refuses it (501).
func TestServerInventoryWithAndWithoutExpand(t *testing.T) {
	f := newServerFixture(t, emulator.Options{UUIDSeed: "inventory"})
	g := NewWithT(t)
	expanded := f.availableServer(0)
	for _, mode := range []emulator.Expand{emulator.ExpandNone, emulator.ExpandRefused} {
		em := newEmulator(t, emulator.Options{UUIDSeed: "inventory-" + string(mode), Expand: mode,
			Username: testBMCUser, Password: testBMCPassword})
		s := newServer(t, em, f.secret, 0)
		waitState(t, s, metalv1alpha1.ServerStateAvailable)
		get(g, s)
		g.Expect(s.Status.Processors).To(Equal(expanded.Status.Processors), "expand %s", mode)
		g.Expect(s.Status.Storages).To(Equal(expanded.Status.Storages), "expand %s", mode)
		g.Expect(s.Status.TotalSystemMemory.Equal(*expanded.Status.TotalSystemMemory)).To(BeTrue(), "expand %s", mode)
		g.Expect(s.Status.NetworkInterfaces).To(HaveLen(len(expanded.Status.NetworkInterfaces)), "expand %s", mode)
		g.Expect(s.Status.Manufacturer).To(Equal(expanded.Status.Manufacturer))
		g.Expect(s.Status.BIOSVersion).To(Equal(expanded.Status.BIOSVersion))
	}
}

// An Available server switched on out of band is switched off again.
func TestServerAvailableHealsPower(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0)

	g.Expect(f.em.SetPowerState(s.Spec.SystemUUID, bmc.PowerStateOn)).To(BeTrue())
	g.Eventually(func() bmc.PowerState { return f.em.PowerState(s.Spec.SystemUUID) }).Should(Equal(bmc.PowerStateOff))
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
	}).Should(Succeed())
}

// A dangling boot configuration reference on an Available server (no claim) is cleared, and
// does not keep the server from being reserved afterwards.
func TestServerAvailableClearsDanglingBootConfiguration(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0)

	patchServer(g, s, func(o *metalv1alpha1.Server) {
		o.Spec.BootConfigurationRef = &metalv1alpha1.ObjectReference{Namespace: f.ns, Name: "gone"}
	})
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Spec.BootConfigurationRef).To(BeNil())
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
	}).Should(Succeed())

	c := f.newClaim("after-dangling", metalv1alpha1.PowerOn)
	f.bind(s, c, metalv1alpha1.ServerBootConfigurationStatePending)
	waitState(t, s, metalv1alpha1.ServerStateReserved)
}

// Available -> Reserved costs exactly one status write, and a settled server is not written.
func TestServerReserveIsOneStatusWrite(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0)
	c := f.newClaim("one-write", metalv1alpha1.PowerOn)

	// Let the server settle (the last in-flight conditions written), then watch it.
	rv := settledVersion(g, s)

	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	w, err := wc.Watch(t.Context(), &metalv1alpha1.ServerList{},
		client.MatchingFields{"metadata.name": s.Name}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}})
	g.Expect(err).NotTo(HaveOccurred())
	defer w.Stop()

	// The claim names the server (the claim controller's fence, a write to the claim), then
	// the claim controller's single binding patch; there is no boot configuration yet, so
	// nothing follows the state change.
	f.record(s, c)
	patchServer(g, s, func(o *metalv1alpha1.Server) {
		o.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: c.Namespace, Name: c.Name, UID: string(c.UID)}
		o.Spec.BootConfigurationRef = &metalv1alpha1.ObjectReference{Namespace: c.Namespace, Name: c.Name}
	})

	var updates []*metalv1alpha1.Server
	collect := func() {
		for {
			select {
			case ev := <-w.ResultChan():
				if ev.Type == watch.Modified {
					updates = append(updates, ev.Object.(*metalv1alpha1.Server))
				}
			default:
				return
			}
		}
	}
	g.Eventually(func() metalv1alpha1.ServerState {
		collect()
		if len(updates) == 0 {
			return ""
		}
		return updates[len(updates)-1].Status.State
	}).Should(Equal(metalv1alpha1.ServerStateReserved))
	g.Consistently(func() int { collect(); return len(updates) }).Should(Equal(2),
		"want the binding patch and one status write")
	before, after := updates[0], updates[1]
	g.Expect(before.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
	g.Expect(after.Generation).To(Equal(before.Generation))
	g.Expect(after.Status.Conditions).To(Equal(before.Status.Conditions), "no condition churn in the transition")
	// No event either: the state and the claim's Bound condition record the binding.
	g.Consistently(func(g Gomega) {
		for _, e := range serverEvents(g, s) {
			g.Expect(e.Reason).NotTo(Equal("Reserved"))
		}
	}, 300*time.Millisecond).Should(Succeed())
}

// The deprecated spec.power is cleared and powers nothing: the server is discovered, kept
// off and Available as any other.
func TestServerClearsDeprecatedPower(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.newServer(0, func(s *metalv1alpha1.Server) { s.Spec.Power = metalv1alpha1.PowerOn })
	g.Expect(s.Spec.Power).To(Equal(metalv1alpha1.PowerOn), "the API server keeps the field")

	waitState(t, s, metalv1alpha1.ServerStateAvailable)
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Spec.Power).To(BeEmpty())
		g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
	}).Should(Succeed())
	g.Expect(f.em.PowerState(s.Spec.SystemUUID)).To(Equal(bmc.PowerStateOff))
	g.Expect(f.em.BootHistory(s.Spec.SystemUUID)).To(BeEmpty())
	g.Expect(f.em.ResetCount(s.Spec.SystemUUID, bmc.ResetOn)).To(BeZero())

	// Set again later, it is cleared again.
	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.Power = metalv1alpha1.PowerOn })
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Spec.Power).To(BeEmpty())
	}).Should(Succeed())
	g.Consistently(func() bmc.PowerState { return f.em.PowerState(s.Spec.SystemUUID) }).
		WithTimeout(500 * time.Millisecond).Should(Equal(bmc.PowerStateOff))
}

// spec.indicatorLED is applied through the BMC while the server is Available and while it is
// Reserved, status.indicatorLED shows what the BMC reports, and a change made at the BMC is
// undone.
func TestServerIndicatorLED(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0)
	uuid := s.Spec.SystemUUID
	get(g, s)
	g.Expect(s.Status.IndicatorLED).To(Equal(metalv1alpha1.OffIndicatorLED), "observed from the BMC")
	g.Expect(f.em.IndicatorLED(uuid)).To(Equal(bmc.IndicatorLEDOff))

	expectLED := func(want metalv1alpha1.IndicatorLED) {
		t.Helper()
		g.Eventually(func(g Gomega) {
			g.Expect(f.em.IndicatorLED(uuid)).To(Equal(bmc.IndicatorLED(want)))
			get(g, s)
			g.Expect(s.Status.IndicatorLED).To(Equal(want))
		}).Should(Succeed())
	}

	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.IndicatorLED = metalv1alpha1.LitIndicatorLED })
	expectLED(metalv1alpha1.LitIndicatorLED)
	get(g, s)
	g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))

	f.reserveAndBoot(s, "identify")
	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.IndicatorLED = metalv1alpha1.BlinkingIndicatorLED })
	expectLED(metalv1alpha1.BlinkingIndicatorLED)
	get(g, s)
	g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateReserved))

	// Someone switches it off at the BMC: seen at the next resync and set again.
	g.Expect(f.em.SetIndicatorLED(uuid, bmc.IndicatorLEDOff)).To(BeTrue())
	g.Eventually(func() bmc.IndicatorLED { return f.em.IndicatorLED(uuid) }).Should(Equal(bmc.IndicatorLEDBlinking))

	// A state that cannot be asked for is not sent; the LED stays as it is.
	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.IndicatorLED = metalv1alpha1.UnknownIndicatorLED })
	g.Consistently(func(g Gomega) {
		g.Expect(f.em.IndicatorLED(uuid)).To(Equal(bmc.IndicatorLEDBlinking))
		get(g, s)
		g.Expect(s.Status.IndicatorLED).To(Equal(metalv1alpha1.BlinkingIndicatorLED))
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateReserved))
	}).WithTimeout(500 * time.Millisecond).Should(Succeed())
}

// Every request to the BMC is timed in metal_bmc_request_duration_seconds on the manager's
// registry, by method and status code.
func TestServerBMCRequestMetrics(t *testing.T) {
	g := NewWithT(t)
	before := bmcRequestSamples(g)
	f := newServerFixture(t, emulator.Options{InitialPower: bmc.PowerStateOn})
	f.availableServer(0)

	after := bmcRequestSamples(g)
	g.Expect(after["GET 200"]).To(BeNumerically(">", before["GET 200"]), "inventory and power reads")
	g.Expect(after["POST 204"]).To(BeNumerically(">", before["POST 204"]), "the graceful shutdown")
}

// bmcRequestSamples gathers the sample counts of metal_bmc_request_duration_seconds from
// controller-runtime's registry, by "<method> <code>".
func bmcRequestSamples(g Gomega) map[string]uint64 {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "metal_bmc_request_duration_seconds" {
			continue
		}
		g.Expect(f.GetType()).To(Equal(dto.MetricType_HISTOGRAM))
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["method"]+" "+labels["code"]] += m.GetHistogram().GetSampleCount()
		}
	}
	return out
}

// Reserved: nothing is powered before the boot configuration is Ready; the claim's first
// power-on is a one-time network boot; a later power loss boots from disk; the claim's power
// wish is followed both ways.
func TestServerReservedBootsOnceFromNetwork(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0)
	uuid := s.Spec.SystemUUID
	c := f.newClaim("first-boot", metalv1alpha1.PowerOn)
	sbc := f.bind(s, c, metalv1alpha1.ServerBootConfigurationStatePending)
	waitState(t, s, metalv1alpha1.ServerStateReserved)

	// Pending, then Error: no power, and no status writes while nothing changes.
	get(g, s)
	rv := s.ResourceVersion
	g.Consistently(func(g Gomega) {
		get(g, s)
		g.Expect(s.ResourceVersion).To(Equal(rv))
		g.Expect(f.em.PowerState(uuid)).To(Equal(bmc.PowerStateOff))
	}).Should(Succeed())
	setBootConfigurationState(g, sbc, metalv1alpha1.ServerBootConfigurationStateError)
	g.Consistently(func() bmc.PowerState { return f.em.PowerState(uuid) }).
		WithTimeout(500 * time.Millisecond).Should(Equal(bmc.PowerStateOff))
	g.Expect(f.em.BootHistory(uuid)).To(BeEmpty())

	// Ready: one-time network boot.
	setBootConfigurationState(g, sbc, metalv1alpha1.ServerBootConfigurationStateReady)
	g.Eventually(func() []bmc.BootTarget { return bootTargets(f.em, uuid) }).Should(Equal([]bmc.BootTarget{bmc.BootTargetPxe}))
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.NetworkBootClaimUID).To(Equal(string(c.UID)))
		g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOnPowerState))
		expectCondition(g, s, metalv1alpha1.ServerNetworkBoot, metav1.ConditionTrue, metalv1alpha1.ReasonClaimFirstBoot)
		expectCondition(g, s, metalv1alpha1.ServerPoweringOn, metav1.ConditionFalse, metalv1alpha1.ReasonPowerStateReached)
	}).Should(Succeed())
	g.Expect(f.em.BootOverride(uuid).Disabled()).To(BeTrue(), "the override was one-time")

	// Power lost out of band: healed, booting from disk, without a new override.
	g.Expect(f.em.SetPowerState(uuid, bmc.PowerStateOff)).To(BeTrue())
	g.Eventually(func() []bmc.BootTarget { return bootTargets(f.em, uuid) }).
		Should(Equal([]bmc.BootTarget{bmc.BootTargetPxe, bmc.BootTargetHdd}))
	g.Expect(f.em.BootOverride(uuid).Disabled()).To(BeTrue())

	// The claim asks for Off, then On again: graceful off, then a disk boot.
	patchClaimPower(g, c, metalv1alpha1.PowerOff)
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
		expectCondition(g, s, metalv1alpha1.ServerPoweringOff, metav1.ConditionFalse, metalv1alpha1.ReasonPowerStateReached)
	}).Should(Succeed())
	g.Expect(f.em.ResetCount(uuid, bmc.ResetForceOff)).To(BeZero())
	patchClaimPower(g, c, metalv1alpha1.PowerOn)
	g.Eventually(func() []bmc.BootTarget { return bootTargets(f.em, uuid) }).
		Should(Equal([]bmc.BootTarget{bmc.BootTargetPxe, bmc.BootTargetHdd, bmc.BootTargetHdd}))
	g.Consistently(func() bmc.PowerState { return f.em.PowerState(uuid) }).
		WithTimeout(500 * time.Millisecond).Should(Equal(bmc.PowerStateOn))
}

func patchClaimPower(g Gomega, c *metalv1alpha1.ServerClaim, power metalv1alpha1.Power) {
	patchObject(g, c, func(o *metalv1alpha1.ServerClaim) { o.Spec.Power = power })
}

// Claim being deleted, Recycle: off (gracefully), references cleared, Available, without
// waiting for the claim object to disappear.
func TestServerReleaseRecycle(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0)
	c := f.reserveAndBoot(s, "recycle")

	// Something else holds the claim: it stays, with a deletionTimestamp.
	const hold = "test.metal.ironcore.dev/hold"
	g.Expect(env.Client.Get(t.Context(), client.ObjectKeyFromObject(c), c)).To(Succeed())
	base := c.DeepCopy()
	c.Finalizers = append(c.Finalizers, hold)
	g.Expect(env.Client.Patch(t.Context(), c, client.MergeFrom(base))).To(Succeed())
	t.Cleanup(func() {
		cur := &metalv1alpha1.ServerClaim{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(c), cur); err == nil {
			base := cur.DeepCopy()
			cur.Finalizers = nil
			_ = env.Client.Patch(context.Background(), cur, client.MergeFrom(base))
		}
	})

	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		g.Expect(s.Spec.ServerClaimRef).To(BeNil())
		g.Expect(s.Spec.BootConfigurationRef).To(BeNil())
		g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
		expectCondition(g, s, metalv1alpha1.ServerWaitingForPowerOff, metav1.ConditionFalse, metalv1alpha1.ReasonPowerOffConfirmed)
	}).Should(Succeed())
	g.Expect(f.em.PowerState(s.Spec.SystemUUID)).To(Equal(bmc.PowerStateOff))
	g.Expect(f.em.ResetCount(s.Spec.SystemUUID, bmc.ResetForceOff)).To(BeZero())
	expectEvent(t, s, "Normal", "Available")
	g.Expect(env.Client.Get(t.Context(), client.ObjectKeyFromObject(c), c)).To(Succeed())
	g.Expect(c.DeletionTimestamp.IsZero()).To(BeFalse(), "the claim is still there, being deleted")
}

// A claim bound to another server (its spec.serverRef names it) does not hold this one.
func TestServerReleasedWhenClaimNamesAnotherServer(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0)
	c := f.newClaim("elsewhere", metalv1alpha1.PowerOn)
	f.record(&metalv1alpha1.Server{ObjectMeta: metav1.ObjectMeta{Name: "another-server"}}, c)

	// A binding written onto s for a claim that names another server is refused: the
	// references are removed and s is never powered on.
	f.propose(s, c, metalv1alpha1.ServerBootConfigurationStateReady)
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		g.Expect(s.Spec.ServerClaimRef).To(BeNil())
		g.Expect(s.Spec.BootConfigurationRef).To(BeNil())
	}).Should(Succeed())
	g.Expect(f.em.PowerState(s.Spec.SystemUUID)).To(Equal(bmc.PowerStateOff))
	g.Expect(f.em.BootHistory(s.Spec.SystemUUID)).To(BeEmpty())
}

// Claim gone, Retain: off, Released with the claim reference kept; clearing it -> Available.
func TestServerReleaseRetain(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0, func(s *metalv1alpha1.Server) { s.Spec.ReclaimPolicy = metalv1alpha1.ReclaimPolicyRetain })
	c := f.reserveAndBoot(s, "retain")

	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	waitState(t, s, metalv1alpha1.ServerStateReleased)
	get(g, s)
	g.Expect(s.Spec.ServerClaimRef).NotTo(BeNil())
	g.Expect(s.Spec.ServerClaimRef.Name).To(Equal(c.Name))
	g.Expect(s.Spec.BootConfigurationRef).To(BeNil())
	g.Expect(f.em.PowerState(s.Spec.SystemUUID)).To(Equal(bmc.PowerStateOff))
	expectEvent(t, s, "Normal", "Released")
	g.Consistently(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateReleased))
	}).WithTimeout(500 * time.Millisecond).Should(Succeed())

	// Released keeps the server off.
	g.Expect(f.em.SetPowerState(s.Spec.SystemUUID, bmc.PowerStateOn)).To(BeTrue())
	g.Eventually(func() bmc.PowerState { return f.em.PowerState(s.Spec.SystemUUID) }).Should(Equal(bmc.PowerStateOff))

	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.ServerClaimRef = nil })
	waitState(t, s, metalv1alpha1.ServerStateAvailable)
}

// A system that ignores the graceful shutdown is forced off after PowerOffTimeout.
func TestServerReleaseForcesOffAfterTimeout(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0)
	c := f.reserveAndBoot(s, "stubborn")
	uuid := s.Spec.SystemUUID
	g.Expect(f.em.IgnoreGracefulShutdown(uuid, true)).To(BeTrue())

	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, s)
		expectCondition(g, s, metalv1alpha1.ServerWaitingForPowerOff, metav1.ConditionTrue, metalv1alpha1.ReasonPowerOffIssued)
	}).Should(Succeed())
	g.Expect(f.em.PowerState(uuid)).To(Equal(bmc.PowerStateOn), "still on: the OS ignored the shutdown")

	g.Eventually(func() bmc.PowerState { return f.em.PowerState(uuid) }).Should(Equal(bmc.PowerStateOff))
	g.Expect(f.em.ResetCount(uuid, bmc.ResetForceOff)).To(BeNumerically(">=", 1))
	waitState(t, s, metalv1alpha1.ServerStateAvailable)
	get(g, s)
	expectCondition(g, s, metalv1alpha1.ServerWaitingForPowerOff, metav1.ConditionFalse, metalv1alpha1.ReasonPowerOffConfirmed)
	g.Expect(s.Spec.ServerClaimRef).To(BeNil())
	expectEvent(t, s, "Warning", "ForcedPowerOff")
}

// A claim deleted and re-created under the same name is another claim: the server is
// released, not inherited.
func TestServerClaimRecreatedIsNotInherited(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0)
	c := f.reserveAndBoot(s, "reborn")
	oldUID := c.UID

	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	again := f.newClaim("reborn", metalv1alpha1.PowerOn)
	g.Expect(again.UID).NotTo(Equal(oldUID))

	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		g.Expect(s.Spec.ServerClaimRef).To(BeNil())
	}).Should(Succeed())
	g.Expect(s.Status.NetworkBootClaimUID).To(Equal(string(oldUID)))
	g.Expect(f.em.PowerState(s.Spec.SystemUUID)).To(Equal(bmc.PowerStateOff))
	g.Expect(bootTargets(f.em, s.Spec.SystemUUID)).To(HaveLen(1))
}

// BMC down -> Error (Unreachable) -> back to where each server was once it answers again.
func TestServerBMCUnavailableAndRecovery(t *testing.T) {
	f := newServerFixture(t, emulator.Options{Systems: 2})
	g := NewWithT(t)
	free := f.availableServer(0)
	bound := f.availableServer(1)
	f.reserveAndBoot(bound, "survivor")
	before := bmcErrorCount(metalv1alpha1.ReasonBMCUnreachable)

	f.em.SetUnavailable(true)
	for _, s := range []*metalv1alpha1.Server{free, bound} {
		g.Eventually(func(g Gomega) {
			get(g, s)
			g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateError))
			expectCondition(g, s, metalv1alpha1.ServerBMCReachable, metav1.ConditionFalse, metalv1alpha1.ReasonBMCUnreachable)
		}).Should(Succeed())
		expectEvent(t, s, "Warning", "BMCError")
	}
	g.Expect(bmcErrorCount(metalv1alpha1.ReasonBMCUnreachable)).To(BeNumerically(">", before))

	f.em.SetUnavailable(false)
	waitState(t, free, metalv1alpha1.ServerStateAvailable)
	waitState(t, bound, metalv1alpha1.ServerStateReserved)
	for _, s := range []*metalv1alpha1.Server{free, bound} {
		get(g, s)
		expectCondition(g, s, metalv1alpha1.ServerBMCReachable, metav1.ConditionTrue, metalv1alpha1.ReasonBMCReachable)
		expectEvent(t, s, "Normal", "Recovered")
	}
	g.Consistently(func() bmc.PowerState { return f.em.PowerState(bound.Spec.SystemUUID) }).
		WithTimeout(500 * time.Millisecond).Should(Equal(bmc.PowerStateOn))
	g.Expect(bootTargets(f.em, bound.Spec.SystemUUID)).To(HaveLen(1), "recovery does not boot the claim again")
}

func bmcErrorCount(reason string) float64 {
	m := &dto.Metric{}
	if err := metrics.BMCErrors.WithLabelValues(reason).Write(m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// Each way a BMC can be unusable puts the server in Error with its own reason; the
// condition never shows the password; a fixed secret brings a never-discovered server
// through discovery.
func TestServerBMCErrorReasons(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	const wrongPassword = "wr0ng-Pa55word-9f8e7d"
	wrong := newBMCSecret(t, testBMCUser, wrongPassword)
	missingBMC := "no-such-bmc-" + strings.ToLower(f.ns)

	cases := []struct {
		name   string
		mutate func(*metalv1alpha1.Server)
		reason string
	}{
		{"wrong credentials", func(s *metalv1alpha1.Server) { s.Spec.BMC.BMCSecretRef.Name = wrong.Name }, metalv1alpha1.ReasonBMCUnauthorized},
		{"unknown system", func(s *metalv1alpha1.Server) { s.Spec.SystemUUID = "00000000-0000-0000-0000-000000000000" }, metalv1alpha1.ReasonSystemNotFound},
		{"missing secret", func(s *metalv1alpha1.Server) { s.Spec.BMC.BMCSecretRef.Name = "missing-" + f.ns }, metalv1alpha1.ReasonSecretNotFound},
		{"no BMC", func(s *metalv1alpha1.Server) { s.Spec.BMC = nil }, metalv1alpha1.ReasonNoBMC},
		{"missing BMC object", func(s *metalv1alpha1.Server) {
			s.Spec.BMC = nil
			s.Spec.BMCRef = &metalv1alpha1.LocalObjectReference{Name: missingBMC}
		}, metalv1alpha1.ReasonBMCNotFound},
	}
	servers := map[string]*metalv1alpha1.Server{}
	for _, tc := range cases {
		servers[tc.name] = f.newServer(0, tc.mutate)
	}
	for _, tc := range cases {
		s := servers[tc.name]
		g.Eventually(func(g Gomega) {
			get(g, s)
			g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateError))
			c := expectCondition(g, s, metalv1alpha1.ServerBMCReachable, metav1.ConditionFalse, tc.reason)
			g.Expect(c.Message).NotTo(ContainSubstring(wrongPassword))
			g.Expect(c.Message).NotTo(ContainSubstring(testBMCPassword))
		}).Should(Succeed(), tc.name)
	}
	for _, e := range serverEvents(g, servers["wrong credentials"]) {
		g.Expect(e.Note).NotTo(ContainSubstring(wrongPassword))
	}

	// Fix the credentials: the server was never discovered, so it goes through discovery.
	s := servers["wrong credentials"]
	g.Eventually(func() error {
		cur := &metalv1alpha1.BMCSecret{}
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(wrong), cur); err != nil {
			return err
		}
		cur.Data[metalv1alpha1.BMCSecretPasswordKey] = []byte(testBMCPassword)
		return env.Client.Update(t.Context(), cur)
	}).Should(Succeed())
	waitState(t, s, metalv1alpha1.ServerStateAvailable)
	get(g, s)
	g.Expect(s.Status.Manufacturer).To(Equal(emulator.DefaultManufacturer))
	expectCondition(g, s, metalv1alpha1.ServerBMCReachable, metav1.ConditionTrue, metalv1alpha1.ReasonBMCReachable)
}

// A server reached through a BMC object waits while the BMC is Pending (BMCNotReady, no
// request to the BMC) and is discovered once the BMC is Enabled.
func TestServerThroughBMCObject(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	access := emulatorAccess(t, f.em, f.secret.Name)
	obj := &metalv1alpha1.BMC{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bmc-"},
		Spec: metalv1alpha1.BMCSpec{
			Access:       &metalv1alpha1.InlineEndpoint{IP: access.Address},
			Protocol:     access.Protocol,
			BMCSecretRef: metalv1alpha1.LocalObjectReference{Name: f.secret.Name},
		},
	}
	create(t, obj)
	setBMCState(g, obj, metalv1alpha1.BMCStatePending)
	// The controller must see the BMC as Pending before the server appears.
	g.Eventually(func(g Gomega) {
		cur := &metalv1alpha1.BMC{}
		g.Expect(f.mgr.GetClient().Get(t.Context(), client.ObjectKeyFromObject(obj), cur)).To(Succeed())
		g.Expect(cur.Status.State).To(Equal(metalv1alpha1.BMCStatePending))
	}).Should(Succeed())

	s := f.newServer(0, func(s *metalv1alpha1.Server) {
		s.Spec.BMC = nil
		s.Spec.BMCRef = &metalv1alpha1.LocalObjectReference{Name: obj.Name}
	})
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateError))
		expectCondition(g, s, metalv1alpha1.ServerBMCReachable, metav1.ConditionFalse, metalv1alpha1.ReasonBMCNotReady)
	}).Should(Succeed())
	g.Expect(f.em.RequestCount()).To(BeZero())

	setBMCState(g, obj, metalv1alpha1.BMCStateEnabled)
	waitState(t, s, metalv1alpha1.ServerStateAvailable)
	get(g, s)
	g.Expect(s.Spec.SystemURI).To(Equal(f.em.Systems()[0].URI))
}

func setBMCState(g Gomega, obj *metalv1alpha1.BMC, state metalv1alpha1.BMCState) {
	g.Eventually(func() error {
		cur := &metalv1alpha1.BMC{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), cur); err != nil {
			return err
		}
		base := cur.DeepCopy()
		cur.Status.State = state
		return env.Client.Status().Patch(context.Background(), cur, client.MergeFrom(base))
	}).Should(Succeed())
}

// Park a free server: off, marked, request consumed; no healing and resets dropped while
// parked; unpark -> Available (and off again).
func TestServerParkFree(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0)
	uuid := s.Spec.SystemUUID
	g.Expect(f.em.SetPowerState(uuid, bmc.PowerStateOn)).To(BeTrue())
	annotate(g, s, metalv1alpha1.OperationAnnotationPark)

	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateParked))
		g.Expect(s.Annotations).To(HaveKeyWithValue(metalv1alpha1.ParkedAnnotation, "true"))
		g.Expect(s.Annotations).NotTo(HaveKey(metalv1alpha1.OperationAnnotation))
	}).Should(Succeed())
	g.Expect(f.em.PowerState(uuid)).To(Equal(bmc.PowerStateOff))
	expectEvent(t, s, "Normal", "Parked")

	// A reset while parked is dropped.
	annotate(g, s, metalv1alpha1.OperationAnnotationHardRestartServer)
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Annotations).NotTo(HaveKey(metalv1alpha1.OperationAnnotation))
	}).Should(Succeed())
	expectEvent(t, s, "Warning", "ParkedOperationDropped")
	g.Expect(f.em.ResetCount(uuid, bmc.ResetForceRestart)).To(BeZero())
	g.Expect(f.em.PowerState(uuid)).To(Equal(bmc.PowerStateOff))

	// Powered on by someone else while parked: left alone.
	g.Expect(f.em.SetPowerState(uuid, bmc.PowerStateOn)).To(BeTrue())
	g.Consistently(func() bmc.PowerState { return f.em.PowerState(uuid) }).Should(Equal(bmc.PowerStateOn))
	get(g, s)
	g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateParked))

	annotate(g, s, metalv1alpha1.OperationAnnotationUnpark)
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		g.Expect(s.Annotations).NotTo(HaveKey(metalv1alpha1.ParkedAnnotation))
		g.Expect(s.Annotations).NotTo(HaveKey(metalv1alpha1.OperationAnnotation))
	}).Should(Succeed())
	expectEvent(t, s, "Normal", "Resumed")
	g.Eventually(func() bmc.PowerState { return f.em.PowerState(uuid) }).Should(Equal(bmc.PowerStateOff))
}

// Park a claimed server: off, claim kept, not booted while parked; unpark -> Reserved and on
// again, from disk. A parked server with a live claim can be deleted at once.
func TestServerParkClaimed(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0)
	c := f.reserveAndBoot(s, "parked-claim")
	uuid := s.Spec.SystemUUID

	annotate(g, s, metalv1alpha1.OperationAnnotationPark)
	waitState(t, s, metalv1alpha1.ServerStateParked)
	get(g, s)
	g.Expect(s.Spec.ServerClaimRef).NotTo(BeNil())
	g.Expect(s.Spec.ServerClaimRef.UID).To(Equal(string(c.UID)))
	g.Expect(f.em.PowerState(uuid)).To(Equal(bmc.PowerStateOff))
	g.Consistently(func() bmc.PowerState { return f.em.PowerState(uuid) }).Should(Equal(bmc.PowerStateOff),
		"the claim wants On, but a parked server is not booted")

	annotate(g, s, metalv1alpha1.OperationAnnotationUnpark)
	waitState(t, s, metalv1alpha1.ServerStateReserved)
	g.Eventually(func() []bmc.BootTarget { return bootTargets(f.em, uuid) }).
		Should(Equal([]bmc.BootTarget{bmc.BootTargetPxe, bmc.BootTargetHdd}))

	annotate(g, s, metalv1alpha1.OperationAnnotationPark)
	waitState(t, s, metalv1alpha1.ServerStateParked)
	deleteAndWait(t, s)
}

// A park request on a server that is neither Available nor Reserved waits (annotation kept,
// warning event) and is carried out once the server is Available.
func TestServerParkDeferred(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0, func(s *metalv1alpha1.Server) { s.Spec.ReclaimPolicy = metalv1alpha1.ReclaimPolicyRetain })
	c := f.reserveAndBoot(s, "deferred")
	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	waitState(t, s, metalv1alpha1.ServerStateReleased)

	annotate(g, s, metalv1alpha1.OperationAnnotationPark)
	expectEvent(t, s, "Warning", "ParkDeferred")
	g.Consistently(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateReleased))
		g.Expect(s.Annotations).To(HaveKeyWithValue(metalv1alpha1.OperationAnnotation, metalv1alpha1.OperationAnnotationPark))
	}).WithTimeout(500 * time.Millisecond).Should(Succeed())

	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.ServerClaimRef = nil })
	waitState(t, s, metalv1alpha1.ServerStateParked)
	get(g, s)
	g.Expect(s.Annotations).To(HaveKeyWithValue(metalv1alpha1.ParkedAnnotation, "true"))
}

// Reset operations are carried out and consumed; unsupported ones are consumed with a warning.
func TestServerOperations(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0)
	uuid := s.Spec.SystemUUID

	consumed := func() {
		t.Helper()
		g.Eventually(func(g Gomega) {
			get(g, s)
			g.Expect(s.Annotations).NotTo(HaveKey(metalv1alpha1.OperationAnnotation))
		}).Should(Succeed())
	}

	annotate(g, s, metalv1alpha1.OperationAnnotationForceOnServer)
	consumed()
	g.Expect(f.em.ResetCount(uuid, bmc.ResetForceOn)).To(Equal(1))
	expectEvent(t, s, "Normal", "OperationCompleted")
	// Available keeps it off again afterwards.
	g.Eventually(func() bmc.PowerState { return f.em.PowerState(uuid) }).Should(Equal(bmc.PowerStateOff))

	for op, want := range map[string]bmc.ResetType{
		metalv1alpha1.OperationAnnotationGracefulRestartServer: bmc.ResetGracefulRestart,
		metalv1alpha1.OperationAnnotationHardRestartServer:     bmc.ResetForceRestart,
		metalv1alpha1.OperationAnnotationPowerCycleServer:      bmc.ResetPowerCycle,
		metalv1alpha1.OperationAnnotationForceOffServer:        bmc.ResetForceOff,
	} {
		before := f.em.ResetCount(uuid, want)
		annotate(g, s, op)
		consumed()
		g.Eventually(func() int { return f.em.ResetCount(uuid, want) }).Should(BeNumerically(">", before), op)
		g.Eventually(func() bmc.PowerState { return f.em.PowerState(uuid) }).Should(Equal(bmc.PowerStateOff))
	}

	// graceful-restart-bmc on a Server restarts its BMC, not the host.
	annotate(g, s, metalv1alpha1.OperationAnnotationGracefulRestartBMC)
	consumed()
	g.Eventually(f.em.ManagerResetCount).Should(Equal(1))

	for _, op := range []string{"rotate-the-moon", metalv1alpha1.OperationAnnotationRetry, metalv1alpha1.OperationAnnotationForceResetBMC} {
		annotate(g, s, op)
		consumed()
	}
	expectEvent(t, s, "Warning", "UnsupportedOperation")
	get(g, s)
	g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
}

// The ignore annotation: the controller does nothing at all.
func TestServerIgnored(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.newServer(0, func(s *metalv1alpha1.Server) {
		s.Annotations = map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationIgnore}
	})
	g.Consistently(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.State).To(BeEmpty())
		g.Expect(s.Finalizers).To(BeEmpty())
	}).Should(Succeed())
	g.Expect(f.em.RequestCount()).To(BeZero())

	patchServer(g, s, func(o *metalv1alpha1.Server) { delete(o.Annotations, metalv1alpha1.OperationAnnotation) })
	waitState(t, s, metalv1alpha1.ServerStateAvailable)
}

// A wiped status is rebuilt: Reserved for a claimed server (which is not booted again), Parked
// for a parked one.
func TestServerWipedStatusIsRebuilt(t *testing.T) {
	f := newServerFixture(t, emulator.Options{Systems: 2})
	g := NewWithT(t)
	claimed := f.availableServer(0)
	c := f.reserveAndBoot(claimed, "wiped")
	parked := f.availableServer(1)
	annotate(g, parked, metalv1alpha1.OperationAnnotationPark)
	waitState(t, parked, metalv1alpha1.ServerStateParked)

	wipeStatus(g, claimed)
	wipeStatus(g, parked)
	g.Eventually(func(g Gomega) {
		get(g, claimed)
		g.Expect(claimed.Status.State).To(Equal(metalv1alpha1.ServerStateReserved))
		// The running server is adopted for its claim, not provisioned again.
		g.Expect(claimed.Status.NetworkBootClaimUID).To(Equal(string(c.UID)))
	}).Should(Succeed())
	waitState(t, parked, metalv1alpha1.ServerStateParked)
	g.Consistently(func() []bmc.BootTarget { return bootTargets(f.em, claimed.Spec.SystemUUID) }).
		WithTimeout(500 * time.Millisecond).Should(Equal([]bmc.BootTarget{bmc.BootTargetPxe}))
	g.Expect(f.em.PowerState(claimed.Spec.SystemUUID)).To(Equal(bmc.PowerStateOn))
}

// A bound server being deleted is held by its finalizer, powered off and marked, until its
// claim is gone.
func TestServerDeletionWaitsForClaim(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.availableServer(0)
	c := f.reserveAndBoot(s, "holder")

	g.Expect(env.Client.Delete(t.Context(), s)).To(Succeed())
	g.Eventually(func(g Gomega) {
		get(g, s)
		expectCondition(g, s, metalv1alpha1.ServerDeletionBlocked, metav1.ConditionTrue, metalv1alpha1.ReasonWaitingForClaim)
		g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
	}).Should(Succeed())
	expectEvent(t, s, "Warning", "DeletionBlocked")
	g.Consistently(func(g Gomega) {
		get(g, s)
		g.Expect(s.Finalizers).To(ContainElement(metalv1alpha1.ServerFinalizer))
	}).WithTimeout(500 * time.Millisecond).Should(Succeed())

	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	deleteAndWait(t, s)
}

// An unclaimed server whose BMC is dead is deleted at once.
func TestServerDeletionWithDeadBMC(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	s := f.availableServer(0)
	f.em.Close()
	deleteAndWait(t, s)
}

// SetupWithManager refuses a reconciler without its dependencies.
func TestServerSetupRejectsMissingDependencies(t *testing.T) {
	mgr := startManager(t, func(manager.Manager) error { return nil })
	valid := func() *ServerReconciler {
		return &ServerReconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
			Connector: &access.RedfishConnector{Reader: mgr.GetClient()},
			Recorder:  mgr.GetEventRecorder("server-controller"),
			Options:   DefaultServerOptions(),
		}
	}
	cases := map[string]func(*ServerReconciler){
		"no client":    func(r *ServerReconciler) { r.Client = nil },
		"no reader":    func(r *ServerReconciler) { r.APIReader = nil },
		"no connector": func(r *ServerReconciler) { r.Connector = nil },
		"no recorder":  func(r *ServerReconciler) { r.Recorder = nil },
		"zero options": func(r *ServerReconciler) { r.Options = ServerOptions{} },
		"no resync":    func(r *ServerReconciler) { r.Options.ResyncInterval = 0 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			r := valid()
			mutate(r)
			NewWithT(t).Expect(r.SetupWithManager(mgr)).NotTo(Succeed())
		})
	}
}
