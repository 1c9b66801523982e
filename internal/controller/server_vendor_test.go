package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

// TestServerLifecycleEveryVendor runs a server's whole life against every vendor profile of the
// emulator, with the BMC, server and claim controllers: the BMC is enrolled, its system's
// Server discovered (Initial, Discovery) and Available and off; a claim binds it, its first
// power-on is the one-time UEFI network boot; the claim deleted, the server is powered off and
// Available again. Each profile's difference is met on the way: resource ids (dell), If-Match
// (hpe), no On (lenovo), no GracefulShutdown (hpe), the forgotten override mode (supermicro),
// a reset answered 202 with a task monitor (dell).
func TestServerLifecycleEveryVendor(t *testing.T) {
	tests := []struct {
		profile emulator.Profile
		// on and off are the reset types the service is expected to get.
		on, off bmc.ResetType
		// bmcPower is the BMC's power state as enrolment reports it.
		bmcPower metalv1alpha1.BMCPowerState
	}{
		{emulator.ProfileGeneric, bmc.ResetOn, bmc.ResetGracefulShutdown, metalv1alpha1.BMCOnPowerState},
		{emulator.ProfileDell, bmc.ResetOn, bmc.ResetGracefulShutdown, metalv1alpha1.BMCOnPowerState},
		{emulator.ProfileHPE, bmc.ResetOn, bmc.ResetPushPowerButton, metalv1alpha1.BMCUnknownPowerState},
		{emulator.ProfileLenovo, bmc.ResetForceOn, bmc.ResetGracefulShutdown, metalv1alpha1.BMCOnPowerState},
		{emulator.ProfileSupermicro, bmc.ResetOn, bmc.ResetGracefulShutdown, metalv1alpha1.BMCOnPowerState},
	}
	NewWithT(t).Expect(tests).To(HaveLen(len(emulator.Profiles)), "every profile has a case")
	for _, tt := range tests {
		t.Run(string(tt.profile), func(t *testing.T) {
			g := NewWithT(t)
			ns := env.Namespace(t)
			em := newEmulator(t, emulator.Options{
				Profile: tt.profile, Systems: 1, Username: testBMCUser, Password: testBMCPassword,
				InitialPower: bmc.PowerStateOn, PowerDelay: 20 * time.Millisecond,
			})
			startManager(t, setupFleetControllers)
			secret := newBMCSecret(t, testBMCUser, testBMCPassword)
			obj := createBMC(t, bmcFor(t, em.URL(), secret.Name, func(b *metalv1alpha1.BMC) {
				b.Labels = map[string]string{"fleet": ns}
			}))

			// Enrolment and discovery.
			enrolled := waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
			g.Expect(enrolled.Status.Manufacturer).To(Equal(tt.profile.Manufacturer()))
			g.Expect(enrolled.Status.PowerState).To(Equal(tt.bmcPower))
			system := em.Systems()[0]
			s := &metalv1alpha1.Server{ObjectMeta: metav1.ObjectMeta{Name: BMCServerName(obj.Name, 0)}}
			waitState(t, s, metalv1alpha1.ServerStateAvailable)
			g.Eventually(func(g Gomega) {
				get(g, s)
				g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
			}).Should(Succeed())
			g.Expect(s.Spec.SystemUUID).To(Equal(system.UUID))
			g.Expect(s.Spec.SystemURI).To(Equal(system.URI))
			g.Expect(s.Status.Manufacturer).To(Equal(tt.profile.Manufacturer()))
			expectCondition(g, s, metalv1alpha1.ServerDiscovered, metav1.ConditionTrue, metalv1alpha1.ReasonInventoryRead)
			g.Expect(em.PowerState(system.UUID)).To(Equal(bmc.PowerStateOff))
			g.Expect(em.ResetCount(system.UUID, tt.off)).To(Equal(1), "powered off with %s", tt.off)

			// A claim binds it; the first power-on is the one-time UEFI network boot.
			c := newClaim(t, ns, bySelector("fleet", ns))
			g.Eventually(func(g Gomega) {
				cur := getClaim(g, c)
				g.Expect(cur.Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
				g.Expect(cur.Spec.ServerRef).To(Equal(&metalv1alpha1.LocalObjectReference{Name: s.Name}))
				g.Expect(getServer(g, s).Status.State).To(Equal(metalv1alpha1.ServerStateReserved))
			}).Should(Succeed())
			setSBCState(g, ns, c.Name, metalv1alpha1.ServerBootConfigurationStateReady)
			g.Eventually(func(g Gomega) {
				cur := getServer(g, s)
				g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.ServerOnPowerState))
				g.Expect(cur.Status.NetworkBootClaimUID).To(Equal(string(getClaim(g, c).UID)))
				g.Expect(meta.IsStatusConditionTrue(getClaim(g, c).Status.Conditions, metalv1alpha1.ServerClaimReady)).To(BeTrue())
			}).Should(Succeed())
			g.Expect(em.BootHistory(system.UUID)).To(ConsistOf(And(
				HaveField("Target", bmc.BootTargetPxe), HaveField("Mode", bmc.BootModeUEFI))), "one boot, from the network, in UEFI mode")
			g.Expect(em.ResetCount(system.UUID, tt.on)).To(Equal(1), "powered on with %s", tt.on)
			if tt.profile == emulator.ProfileDell {
				g.Expect(em.JobCount()).To(BeNumerically(">=", 2), "the resets were answered with task monitors")
			}

			// The claim deleted: off, and Available again.
			g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
			g.Eventually(func(g Gomega) {
				cur := getServer(g, s)
				g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
				g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
				g.Expect(cur.Spec.ServerClaimRef).To(BeNil())
			}).Should(Succeed())
			g.Expect(em.PowerState(system.UUID)).To(Equal(bmc.PowerStateOff))
			g.Expect(em.ResetCount(system.UUID, tt.off)).To(Equal(2), "powered off with %s", tt.off)
			g.Expect(em.ResetCount(system.UUID, bmc.ResetForceOff)).To(BeZero(), "never forced off")
			for _, e := range serverEvents(g, s) {
				g.Expect(e.Type).To(Equal(corev1.EventTypeNormal), "event %s: %s", e.Reason, e.Note)
			}
		})
	}
}
