package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// The readiness controllers evaluate every Server of the cluster, but a rule of these tests
// selects only the Servers labelled for the test (readinessLabel=<random>), and they do not
// call t.Parallel.

const (
	readinessLabel = "readiness-test"
	// burnIn is the condition the rules of these tests gate on, set by the test as an
	// external burn-in job would.
	burnIn = "example.com/BurnInPassed"
)

func testReadinessOptions() ServerReadinessRuleOptions {
	return ServerReadinessRuleOptions{MaxConcurrentReconciles: 2, StatusInterval: 100 * time.Millisecond}
}

func setupReadinessControllers(mgr manager.Manager) error {
	return (&ServerReadinessRuleReconciler{
		Client:   mgr.GetClient(),
		Recorder: mgr.GetEventRecorder("serverreadinessrule-controller"),
		Options:  testReadinessOptions(),
	}).SetupWithManager(mgr)
}

// readinessWorld is a manager running only the readiness controllers and a label value
// that selects the Servers of one test.
type readinessWorld struct {
	t     *testing.T
	label string
}

func newReadinessWorld(t *testing.T) *readinessWorld {
	t.Helper()
	startManager(t, setupReadinessControllers)
	return &readinessWorld{t: t, label: rand.String(8)}
}

// server creates a Server selected by the world's rules (no server controller runs: the
// test writes its conditions).
func (w *readinessWorld) server(mutate ...func(*metalv1alpha1.Server)) *metalv1alpha1.Server {
	w.t.Helper()
	s := &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "ready-", Labels: map[string]string{readinessLabel: w.label}},
		Spec:       metalv1alpha1.ServerSpec{SystemUUID: "00000000-0000-0000-0000-000000000001"},
	}
	for _, m := range mutate {
		m(s)
	}
	create(w.t, s)
	return s
}

// rule creates a rule gating on burnIn=True for the world's Servers.
func (w *readinessWorld) rule(mode metalv1alpha1.EnforcementMode, mutate ...func(*metalv1alpha1.ServerReadinessRule)) *metalv1alpha1.ServerReadinessRule {
	w.t.Helper()
	r := newReadinessRule(w.label, mode)
	for _, m := range mutate {
		m(r)
	}
	create(w.t, r)
	return r
}

func newReadinessRule(label string, mode metalv1alpha1.EnforcementMode) *metalv1alpha1.ServerReadinessRule {
	return &metalv1alpha1.ServerReadinessRule{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "burn-in-"},
		Spec: metalv1alpha1.ServerReadinessRuleSpec{
			Conditions:      []metalv1alpha1.ConditionRequirement{{Type: burnIn, RequiredStatus: metav1.ConditionTrue}},
			EnforcementMode: mode,
			Taint:           metalv1alpha1.Taint{Key: "example.com/burn-in", Value: "pending"},
			ServerSelector:  metav1.LabelSelector{MatchLabels: map[string]string{readinessLabel: label}},
		},
	}
}

// ruleTaint is the taint of a rule as the API defaults it.
func ruleTaint(r *metalv1alpha1.ServerReadinessRule) metalv1alpha1.Taint {
	t := r.Spec.Taint
	if t.Effect == "" {
		t.Effect = metalv1alpha1.TaintEffectNoBind
	}
	return t
}

// setServerCondition writes a condition into a Server's status, as the job that owns it would.
func setServerCondition(g Gomega, s *metalv1alpha1.Server, condType string, status metav1.ConditionStatus) {
	g.Eventually(func() error {
		cur := &metalv1alpha1.Server{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(s), cur); err != nil {
			return err
		}
		base := cur.DeepCopy()
		meta.SetStatusCondition(&cur.Status.Conditions, metav1.Condition{
			Type: condType, Status: status, Reason: "SetByTest", Message: "Set by the test",
		})
		return env.Client.Status().Patch(context.Background(), cur, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	}).Should(Succeed())
}

// countTaint counts the taints of a Server equal to t.
func countTaint(s *metalv1alpha1.Server, t metalv1alpha1.Taint) int {
	n := 0
	for _, x := range s.Spec.Taints {
		if x == t {
			n++
		}
	}
	return n
}

// expectRuleTaint waits until the Server carries the rule's taint on the rule's account (want)
// or carries no record of the rule and no copy of its taint.
func expectRuleTaint(t *testing.T, s *metalv1alpha1.Server, r *metalv1alpha1.ServerReadinessRule, want bool) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		cur := getServer(g, s)
		_, recorded := metalv1alpha1.ReadinessTaints(cur.Annotations)[r.Name]
		g.Expect(recorded).To(Equal(want), "record of rule %s", r.Name)
		if want {
			g.Expect(countTaint(cur, ruleTaint(r))).To(Equal(1))
		} else {
			g.Expect(countTaint(cur, ruleTaint(r))).To(BeZero())
		}
	}).Should(Succeed())
}

// expectRuleStatus waits for the rule's counts and Ready reason.
func expectRuleStatus(t *testing.T, r *metalv1alpha1.ServerReadinessRule, selected, tainted int32, reason string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		cur := &metalv1alpha1.ServerReadinessRule{}
		g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(r), cur)).To(Succeed())
		g.Expect(cur.Status.SelectedServers).To(Equal(selected), "selected")
		g.Expect(cur.Status.TaintedServers).To(Equal(tainted), "tainted")
		c := meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.ServerReadinessRuleReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(reason), c.Message)
		g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
	}).Should(Succeed())
}

// Continuous: a selected Server carries the taint exactly while the condition does not hold;
// an unselected one never does; each change is announced by an event.
func TestServerReadinessRuleContinuous(t *testing.T) {
	g := NewWithT(t)
	w := newReadinessWorld(t)
	r := w.rule(metalv1alpha1.EnforcementModeContinuous)
	s := w.server()
	other := w.server(func(s *metalv1alpha1.Server) { s.Labels[readinessLabel] = "someone-else" })

	expectRuleTaint(t, s, r, true)
	added := expectEvent(t, s, "Normal", eventReadinessTaintAdded)
	g.Expect(added.Note).To(ContainSubstring(burnIn + " is absent"))
	g.Expect(added.Related).NotTo(BeNil())
	g.Expect(added.Related.Name).To(Equal(r.Name))

	setServerCondition(g, s, burnIn, metav1.ConditionTrue)
	expectRuleTaint(t, s, r, false)
	expectEvent(t, s, "Normal", eventReadinessTaintRemoved)
	g.Expect(getServer(g, s).Annotations).NotTo(HaveKey(metalv1alpha1.BootstrapCompletedAnnotation(r.Name)))

	setServerCondition(g, s, burnIn, metav1.ConditionFalse)
	expectRuleTaint(t, s, r, true)

	// A Server the rule does not select is never tainted.
	g.Consistently(func(g Gomega) {
		g.Expect(getServer(g, other).Spec.Taints).To(BeEmpty())
	}, 300*time.Millisecond).Should(Succeed())
}

// BootstrapOnly: the taint is lifted once the condition holds and never comes back on that
// Server (annotation bootstrap-completed-<rule>); a Server that never completed is tainted.
func TestServerReadinessRuleBootstrapOnly(t *testing.T) {
	g := NewWithT(t)
	w := newReadinessWorld(t)
	r := w.rule(metalv1alpha1.EnforcementModeBootstrapOnly)
	s := w.server()
	expectRuleTaint(t, s, r, true)

	setServerCondition(g, s, burnIn, metav1.ConditionTrue)
	expectRuleTaint(t, s, r, false)
	g.Expect(getServer(g, s).Annotations).To(HaveKeyWithValue(metalv1alpha1.BootstrapCompletedAnnotation(r.Name), "true"))

	setServerCondition(g, s, burnIn, metav1.ConditionFalse)
	g.Consistently(func(g Gomega) {
		g.Expect(countTaint(getServer(g, s), ruleTaint(r))).To(BeZero())
	}, 500*time.Millisecond).Should(Succeed())

	later := w.server()
	expectRuleTaint(t, later, r, true)
}

// A rule removes only the taints it added: an equal taint set by someone else stays when the
// rule is met and when it stops selecting the Server; the rule's own taint goes when the
// Server leaves its selector.
func TestServerReadinessRuleRemovesOnlyItsOwnTaints(t *testing.T) {
	g := NewWithT(t)
	w := newReadinessWorld(t)
	r := w.rule(metalv1alpha1.EnforcementModeContinuous)
	human := w.server(func(s *metalv1alpha1.Server) { s.Spec.Taints = []metalv1alpha1.Taint{ruleTaint(r)} })
	own := w.server()
	expectRuleTaint(t, own, r, true)

	// The rule sees the equal taint on human but does not take it over.
	g.Consistently(func(g Gomega) {
		cur := getServer(g, human)
		g.Expect(cur.Spec.Taints).To(Equal([]metalv1alpha1.Taint{ruleTaint(r)}))
		g.Expect(cur.Annotations).NotTo(HaveKey(metalv1alpha1.ReadinessTaintsAnnotation))
	}, 300*time.Millisecond).Should(Succeed())
	setServerCondition(g, human, burnIn, metav1.ConditionTrue)
	g.Consistently(func(g Gomega) {
		g.Expect(getServer(g, human).Spec.Taints).To(Equal([]metalv1alpha1.Taint{ruleTaint(r)}))
	}, 300*time.Millisecond).Should(Succeed())

	// own leaves the selector: the rule's taint goes with it.
	patchServer(g, own, func(s *metalv1alpha1.Server) { delete(s.Labels, readinessLabel) })
	expectRuleTaint(t, own, r, false)
}

// Deleting a rule removes its taints from every Server (and only its own), then the rule is
// gone; bootstrap-completed annotations stay.
func TestServerReadinessRuleDeletionCleansUp(t *testing.T) {
	g := NewWithT(t)
	w := newReadinessWorld(t)
	r := w.rule(metalv1alpha1.EnforcementModeBootstrapOnly)
	completed := w.server()
	tainted := w.server()
	humanTaint := metalv1alpha1.Taint{Key: "maintenance", Effect: metalv1alpha1.TaintEffectNoBind}
	withHuman := w.server(func(s *metalv1alpha1.Server) { s.Spec.Taints = []metalv1alpha1.Taint{humanTaint} })
	for _, s := range []*metalv1alpha1.Server{completed, tainted, withHuman} {
		expectRuleTaint(t, s, r, true)
	}
	setServerCondition(g, completed, burnIn, metav1.ConditionTrue)
	expectRuleTaint(t, completed, r, false)

	g.Eventually(func(g Gomega) {
		cur := &metalv1alpha1.ServerReadinessRule{}
		g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(r), cur)).To(Succeed())
		g.Expect(cur.Finalizers).To(ContainElement(metalv1alpha1.ServerReadinessRuleFinalizer))
	}).Should(Succeed())
	deleteAndWait(t, r)

	for _, s := range []*metalv1alpha1.Server{tainted, withHuman} {
		cur := getServer(g, s)
		g.Expect(countTaint(cur, ruleTaint(r))).To(BeZero(), s.Name)
		g.Expect(cur.Annotations).NotTo(HaveKey(metalv1alpha1.ReadinessTaintsAnnotation), s.Name)
	}
	g.Expect(getServer(g, withHuman).Spec.Taints).To(Equal([]metalv1alpha1.Taint{humanTaint}))
	g.Expect(getServer(g, completed).Annotations).To(HaveKeyWithValue(metalv1alpha1.BootstrapCompletedAnnotation(r.Name), "true"))
}

// The rule's status counts the Servers it selects and those carrying its taint, and Ready
// says why a rule cannot be enforced.
func TestServerReadinessRuleStatus(t *testing.T) {
	g := NewWithT(t)
	w := newReadinessWorld(t)
	r := w.rule(metalv1alpha1.EnforcementModeContinuous)
	a, b := w.server(), w.server()
	w.server()
	expectRuleStatus(t, r, 3, 3, metalv1alpha1.ReasonRuleEnforced)

	setServerCondition(g, a, burnIn, metav1.ConditionTrue)
	setServerCondition(g, b, burnIn, metav1.ConditionTrue)
	expectRuleStatus(t, r, 3, 1, metalv1alpha1.ReasonRuleEnforced)

	d := w.server(func(s *metalv1alpha1.Server) { delete(s.Labels, readinessLabel) })
	patchServer(g, d, func(s *metalv1alpha1.Server) { s.Labels = map[string]string{readinessLabel: w.label} })
	expectRuleStatus(t, r, 4, 2, metalv1alpha1.ReasonRuleEnforced)

	t.Run("invalid selector", func(t *testing.T) {
		bad := w.rule(metalv1alpha1.EnforcementModeContinuous, func(r *metalv1alpha1.ServerReadinessRule) {
			r.Spec.ServerSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: readinessLabel, Operator: "Near", Values: []string{w.label}},
			}}
		})
		expectRuleStatus(t, bad, 0, 0, metalv1alpha1.ReasonInvalidSelector)
	})
	t.Run("BootstrapOnly name too long", func(t *testing.T) {
		long := w.rule(metalv1alpha1.EnforcementModeBootstrapOnly, func(r *metalv1alpha1.ServerReadinessRule) {
			r.GenerateName = ""
			r.Name = "a-bootstrap-rule-" + strings.Repeat("x", metalv1alpha1.MaxBootstrapOnlyRuleNameLength)
			r.Spec.Taint.Key = "example.com/long"
		})
		expectRuleStatus(t, long, 4, 0, metalv1alpha1.ReasonRuleNameTooLong)
		NewWithT(t).Consistently(func(g Gomega) {
			g.Expect(countTaint(getServer(g, a), ruleTaint(long))).To(BeZero())
		}, 300*time.Millisecond).Should(Succeed())
	})
}

// End to end with the server and claim controllers and an emulated BMC: a rule's NoBind taint
// keeps a selector claim off the only matching Server until the rule's condition holds; then
// the taint is removed and the claim binds.
func TestServerReadinessRuleKeepsClaimsOff(t *testing.T) {
	g := NewWithT(t)
	w := newClaimWorld(t, 1)
	startManager(t, setupReadinessControllers)
	label := rand.String(8)
	r := newReadinessRule(label, metalv1alpha1.EnforcementModeContinuous)
	create(t, r)
	s := w.server(0, func(s *metalv1alpha1.Server) { s.Labels = map[string]string{readinessLabel: label} })
	expectRuleTaint(t, s, r, true)

	c := newClaim(t, w.ns, bySelector(readinessLabel, label))
	g.Eventually(func(g Gomega) {
		cur := getClaim(g, c)
		g.Expect(cur.Status.Phase).To(Equal(metalv1alpha1.PhaseUnbound))
		g.Expect(boundReason(cur)).To(BeElementOf(metalv1alpha1.ReasonNoMatchingServer, metalv1alpha1.ReasonTaintNotTolerated))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(getServer(g, s).Spec.ServerClaimRef).To(BeNil())
	}, 500*time.Millisecond).Should(Succeed())

	setServerCondition(g, s, burnIn, metav1.ConditionTrue)
	expectRuleTaint(t, s, r, false)
	g.Eventually(func(g Gomega) {
		g.Expect(getClaim(g, c).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
		ref := getServer(g, s).Spec.ServerClaimRef
		g.Expect(ref).NotTo(BeNil())
		g.Expect(ref.Name).To(Equal(c.Name))
	}).Should(Succeed())
}

// A rule that is gone before its finalizer could be honoured (here: created and deleted
// while no controller ran) leaves no taint behind once the controllers look again.
func TestServerReadinessRuleReleasesRecordsOfMissingRules(t *testing.T) {
	g := NewWithT(t)
	w := newReadinessWorld(t)
	gone := metalv1alpha1.Taint{Key: "example.com/gone", Effect: metalv1alpha1.TaintEffectNoBind}
	s := w.server(func(s *metalv1alpha1.Server) {
		s.Spec.Taints = []metalv1alpha1.Taint{gone}
		s.Annotations = map[string]string{metalv1alpha1.ReadinessTaintsAnnotation: `{"deleted-rule":{"key":"example.com/gone","effect":"NoBind"}}`}
	})
	g.Eventually(func(g Gomega) {
		cur := getServer(g, s)
		g.Expect(cur.Spec.Taints).To(BeEmpty())
		g.Expect(cur.Annotations).NotTo(HaveKey(metalv1alpha1.ReadinessTaintsAnnotation))
	}).Should(Succeed())
	g.Expect(apierrors.IsNotFound(env.Client.Get(context.Background(), client.ObjectKey{Name: "deleted-rule"}, &metalv1alpha1.ServerReadinessRule{}))).To(BeTrue())
}

func TestServerReadinessRuleSetupRejectsMissingDependencies(t *testing.T) {
	g := NewWithT(t)
	rec := env.NewManager(t).GetEventRecorder("test")
	g.Expect((&ServerReadinessRuleReconciler{}).SetupWithManager(nil)).To(MatchError(ContainSubstring("Client")))
	g.Expect((&ServerReadinessRuleReconciler{Client: env.Client}).SetupWithManager(nil)).To(MatchError(ContainSubstring("Recorder")))
	g.Expect((&ServerReadinessRuleReconciler{Client: env.Client, Recorder: rec}).SetupWithManager(nil)).
		To(MatchError(ContainSubstring("MaxConcurrentReconciles must be positive")))
}
