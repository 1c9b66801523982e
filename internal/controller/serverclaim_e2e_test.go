package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

// claimWorld is a namespace, an emulated BMC, and a manager running the claim and server
// controllers together: the test plays only the boot provider (it marks boot configurations
// Ready), as an external boot operator would.
type claimWorld struct {
	t      *testing.T
	ns     string
	em     *emulator.Emulator
	secret *metalv1alpha1.BMCSecret
}

// newClaimWorld starts the world; extra registers more runnables (e.g. the boot server).
func newClaimWorld(t *testing.T, systems int, extra ...func(manager.Manager) error) *claimWorld {
	t.Helper()
	w := &claimWorld{t: t, ns: env.Namespace(t)}
	startManager(t, func(mgr manager.Manager) error {
		if err := setupClaimController(mgr, testClaimOptions()); err != nil {
			return err
		}
		for _, register := range extra {
			if err := register(mgr); err != nil {
				return err
			}
		}
		return setupServerController(mgr, testServerOptions())
	})
	w.em = newEmulator(t, emulator.Options{Systems: systems, PowerDelay: 20 * time.Millisecond, InitialPower: bmc.PowerStateOn})
	w.secret = newBMCSecret(t, "admin", "secret-password")
	return w
}

// server creates a Server for system i and waits until discovery made it Available (and the
// emulated system, which starts On, was powered off).
func (w *claimWorld) server(i int, mutate ...func(*metalv1alpha1.Server)) *metalv1alpha1.Server {
	w.t.Helper()
	s := newServer(w.t, w.em, w.secret, i, mutate...)
	NewWithT(w.t).Eventually(func(g Gomega) {
		cur := getServer(g, s)
		g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
	}).Should(Succeed())
	return s
}

func (w *claimWorld) ignitionSecret() string {
	w.t.Helper()
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "my-ignition-secret"},
		StringData: map[string]string{"ignition": `{"ignition":{"version":"3.4.0"}}`},
	}
	create(w.t, sec)
	return sec.Name
}

// boundAndOn claims system i's server by name, marks its boot configuration Ready as the
// boot provider would, and waits until the claim is Bound and the server powered on.
func (w *claimWorld) boundAndOn(i int) (*metalv1alpha1.Server, *metalv1alpha1.ServerClaim) {
	w.t.Helper()
	g := NewWithT(w.t)
	s := w.server(i)
	c := newClaim(w.t, w.ns, byRef(s.Name))
	g.Eventually(func(g Gomega) {
		g.Expect(getClaim(g, c).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
	}).Should(Succeed())
	setSBCState(g, w.ns, c.Name, metalv1alpha1.ServerBootConfigurationStateReady)
	g.Eventually(func(g Gomega) {
		g.Expect(getServer(g, s).Status.PowerState).To(Equal(metalv1alpha1.ServerOnPowerState))
	}).Should(Succeed())
	return s, c
}

func readyReason(c *metalv1alpha1.ServerClaim) string {
	if cond := meta.FindStatusCondition(c.Status.Conditions, metalv1alpha1.ServerClaimReady); cond != nil {
		return cond.Reason
	}
	return ""
}

// TestClaimEndToEnd is the seed's whole flow with the real server controller and an emulated
// BMC: bind, boot configuration, network boot and power-on once it is Ready, then release on
// deletion by the server's reclaim policy.
func TestClaimEndToEnd(t *testing.T) {
	for _, policy := range []metalv1alpha1.ReclaimPolicy{metalv1alpha1.ReclaimPolicyRecycle, metalv1alpha1.ReclaimPolicyRetain} {
		t.Run(string(policy), func(t *testing.T) {
			g := NewWithT(t)
			w := newClaimWorld(t, 1)
			s := w.server(0, func(s *metalv1alpha1.Server) { s.Spec.ReclaimPolicy = policy })
			ignition := w.ignitionSecret()
			c := newClaim(t, w.ns, byRef(s.Name), func(c *metalv1alpha1.ServerClaim) {
				c.Spec.IgnitionSecretRef = &metalv1alpha1.LocalObjectReference{Name: ignition}
			})

			// Bound as soon as the server is Reserved; Ready waits for the boot configuration.
			g.Eventually(func(g Gomega) {
				cur := getClaim(g, c)
				g.Expect(cur.Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
				g.Expect(readyReason(cur)).To(Equal(metalv1alpha1.ReasonBootConfigurationPending))
				g.Expect(getServer(g, s).Status.State).To(Equal(metalv1alpha1.ServerStateReserved))
			}).Should(Succeed())
			g.Consistently(func(g Gomega) {
				g.Expect(getServer(g, s).Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
			}, 300*time.Millisecond).Should(Succeed())

			setSBCState(g, w.ns, c.Name, metalv1alpha1.ServerBootConfigurationStateReady)
			g.Eventually(func(g Gomega) {
				g.Expect(getServer(g, s).Status.PowerState).To(Equal(metalv1alpha1.ServerOnPowerState))
				cur := getClaim(g, c)
				g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, metalv1alpha1.ServerClaimReady)).To(BeTrue())
			}).Should(Succeed())
			history := w.em.BootHistory(s.Spec.SystemUUID)
			g.Expect(history).NotTo(BeEmpty())
			g.Expect(history[len(history)-1].Target).To(Equal(bmc.BootTargetPxe))
			// The network boot opened a boot-credential window; no credential is issued
			// before the boot server sees the machine's first request.
			sbc := &metalv1alpha1.ServerBootConfiguration{}
			g.Expect(env.Client.Get(t.Context(), client.ObjectKey{Namespace: w.ns, Name: c.Name}, sbc)).To(Succeed())
			g.Expect(sbc.Status.BootCredential).NotTo(BeNil())
			g.Expect(sbc.Status.BootCredential.WindowOpenedAt.IsZero()).To(BeFalse())
			g.Expect(sbc.Status.BootCredential.Hash).To(BeEmpty())

			g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
			g.Eventually(func(g Gomega) {
				cur := getServer(g, s)
				g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
				g.Expect(cur.Spec.BootConfigurationRef).To(BeNil())
				if policy == metalv1alpha1.ReclaimPolicyRetain {
					g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateReleased))
					g.Expect(cur.Spec.ServerClaimRef).NotTo(BeNil())
				} else {
					g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
					g.Expect(cur.Spec.ServerClaimRef).To(BeNil())
				}
			}).Should(Succeed())
			g.Expect(w.em.PowerState(s.Spec.SystemUUID)).To(Equal(bmc.PowerStateOff))
			g.Eventually(func() bool {
				err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: w.ns, Name: c.Name}, &metalv1alpha1.ServerBootConfiguration{})
				return apierrors.IsNotFound(err)
			}).Should(BeTrue())

			if policy == metalv1alpha1.ReclaimPolicyRetain {
				// An operator clears the claim ref: Available again, and claimable.
				patchServer(g, s, func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef = nil })
				g.Eventually(func(g Gomega) {
					g.Expect(getServer(g, s).Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
				}).Should(Succeed())
				again := newClaim(t, w.ns, bySelector())
				g.Eventually(func(g Gomega) {
					g.Expect(getClaim(g, again).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
				}).Should(Succeed())
			}
		})
	}
}

// TestClaimStandsDownWhileServerParked: a bound server that is parked is powered off and the
// claim stays Bound but not Ready (no power healing); unparked, it is Reserved and powered on
// again for the claim.
func TestClaimStandsDownWhileServerParked(t *testing.T) {
	g := NewWithT(t)
	w := newClaimWorld(t, 1)
	s, c := w.boundAndOn(0)

	annotate(g, s, metalv1alpha1.OperationAnnotationPark)
	g.Eventually(func(g Gomega) {
		cur := getServer(g, s)
		g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateParked))
		g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
		cl := getClaim(g, c)
		g.Expect(cl.Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
		g.Expect(readyReason(cl)).To(Equal(metalv1alpha1.ReasonServerParked))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(w.em.PowerState(s.Spec.SystemUUID)).To(Equal(bmc.PowerStateOff))
		g.Expect(getServer(g, s).Spec.Power).To(BeEmpty())
	}, 500*time.Millisecond).Should(Succeed())

	annotate(g, s, metalv1alpha1.OperationAnnotationUnpark)
	g.Eventually(func(g Gomega) {
		cur := getServer(g, s)
		g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateReserved))
		g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.ServerOnPowerState))
		g.Expect(meta.IsStatusConditionTrue(getClaim(g, c).Status.Conditions, metalv1alpha1.ServerClaimReady)).To(BeTrue())
	}).Should(Succeed())
}

// TestClaimDeletableWhileBMCUnreachable: a claim whose server's BMC is down is still
// deletable; the server is released once the BMC answers again.
func TestClaimDeletableWhileBMCUnreachable(t *testing.T) {
	g := NewWithT(t)
	w := newClaimWorld(t, 1)
	s, c := w.boundAndOn(0)

	w.em.SetUnavailable(true)
	g.Eventually(func(g Gomega) {
		g.Expect(getServer(g, s).Status.State).To(Equal(metalv1alpha1.ServerStateError))
		g.Expect(readyReason(getClaim(g, c))).To(Equal(metalv1alpha1.ReasonServerError))
		// kubectl describe on the claim is enough: the cause, the status code, since when.
		ready := meta.FindStatusCondition(getClaim(g, c).Status.Conditions, metalv1alpha1.ServerClaimReady)
		g.Expect(ready.Message).To(MatchRegexp(`is in Error: BMC Unreachable \(HTTP 503\) since \d{4}-\d\d-\d\dT`))
	}).Should(Succeed())
	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(t.Context(), client.ObjectKeyFromObject(c), &metalv1alpha1.ServerClaim{}))
	}).Should(BeTrue())

	w.em.SetUnavailable(false)
	g.Eventually(func(g Gomega) {
		cur := getServer(g, s)
		g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		g.Expect(cur.Spec.ServerClaimRef).To(BeNil())
		g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
	}).Should(Succeed())
}
