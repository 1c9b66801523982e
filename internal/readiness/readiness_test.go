package readiness

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

func newRule(name string, mode metalv1alpha1.EnforcementMode, key string, conds ...string) metalv1alpha1.ServerReadinessRule {
	r := metalv1alpha1.ServerReadinessRule{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: metalv1alpha1.ServerReadinessRuleSpec{
			EnforcementMode: mode,
			Taint:           metalv1alpha1.Taint{Key: key, Effect: metalv1alpha1.TaintEffectNoBind},
			ServerSelector:  metav1.LabelSelector{MatchLabels: map[string]string{"rack": "r1"}},
		},
	}
	for i := 0; i+1 < len(conds); i += 2 {
		r.Spec.Conditions = append(r.Spec.Conditions, metalv1alpha1.ConditionRequirement{
			Type: conds[i], RequiredStatus: metav1.ConditionStatus(conds[i+1]),
		})
	}
	return r
}

func newServer(conds ...string) *metalv1alpha1.Server {
	s := &metalv1alpha1.Server{ObjectMeta: metav1.ObjectMeta{Name: "s", Labels: map[string]string{"rack": "r1"}}}
	for i := 0; i+1 < len(conds); i += 2 {
		s.Status.Conditions = append(s.Status.Conditions, metav1.Condition{Type: conds[i], Status: metav1.ConditionStatus(conds[i+1])})
	}
	return s
}

func taint(key string) metalv1alpha1.Taint {
	return metalv1alpha1.Taint{Key: key, Effect: metalv1alpha1.TaintEffectNoBind}
}

func TestEvaluate(t *testing.T) {
	deleting := newRule("r", metalv1alpha1.EnforcementModeContinuous, "k", "A", "True")
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	ignored := newRule("r", metalv1alpha1.EnforcementModeContinuous, "k", "A", "True")
	ignored.Annotations = map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationIgnore}
	longName := newRule("a-bootstrap-only-rule-name-longer-than-43-chars", metalv1alpha1.EnforcementModeBootstrapOnly, "k", "A", "True")
	longContinuous := longName
	longContinuous.Spec.EnforcementMode = metalv1alpha1.EnforcementModeContinuous
	completed := newServer()
	completed.Annotations = map[string]string{metalv1alpha1.BootstrapCompletedAnnotation("r"): "true"}
	otherRack := newServer()
	otherRack.Labels["rack"] = "r2"

	cases := []struct {
		name      string
		rule      metalv1alpha1.ServerReadinessRule
		server    *metalv1alpha1.Server
		want      Verdict
		completed bool
		unmet     int
	}{
		{"condition met", newRule("r", metalv1alpha1.EnforcementModeContinuous, "k", "A", "True"), newServer("A", "True"), Release, false, 0},
		{"condition has another status", newRule("r", metalv1alpha1.EnforcementModeContinuous, "k", "A", "True"), newServer("A", "False"), Taint, false, 1},
		{"absent condition fails True", newRule("r", metalv1alpha1.EnforcementModeContinuous, "k", "A", "True"), newServer(), Taint, false, 1},
		{"absent condition fails False", newRule("r", metalv1alpha1.EnforcementModeContinuous, "k", "A", "False"), newServer(), Taint, false, 1},
		{"absent condition fails Unknown", newRule("r", metalv1alpha1.EnforcementModeContinuous, "k", "A", "Unknown"), newServer(), Taint, false, 1},
		{"Unknown met", newRule("r", metalv1alpha1.EnforcementModeContinuous, "k", "A", "Unknown"), newServer("A", "Unknown"), Release, false, 0},
		{"every condition must hold", newRule("r", metalv1alpha1.EnforcementModeContinuous, "k", "A", "True", "B", "False", "C", "True"),
			newServer("A", "True", "B", "True"), Taint, false, 2},
		{"bootstrap met completes", newRule("r", metalv1alpha1.EnforcementModeBootstrapOnly, "k", "A", "True"), newServer("A", "True"), Release, true, 0},
		{"bootstrap not met", newRule("r", metalv1alpha1.EnforcementModeBootstrapOnly, "k", "A", "True"), newServer(), Taint, false, 1},
		{"bootstrap completed before", newRule("r", metalv1alpha1.EnforcementModeBootstrapOnly, "k", "A", "True"), completed, Release, false, 0},
		{"completed annotation of a Continuous rule is ignored", newRule("r", metalv1alpha1.EnforcementModeContinuous, "k", "A", "True"), completed, Taint, false, 1},
		{"selector does not match", newRule("r", metalv1alpha1.EnforcementModeContinuous, "k", "A", "True"), otherRack, Release, false, 0},
		{"rule being deleted", deleting, newServer(), Release, false, 0},
		{"rule ignored", ignored, newServer(), Keep, false, 0},
		{"bootstrap rule name too long", longName, newServer(), Release, false, 0},
		{"long name is fine for Continuous", longContinuous, newServer(), Taint, false, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			sel, err := Selector(&tc.rule)
			g.Expect(err).NotTo(HaveOccurred())
			ev := Evaluate(&tc.rule, sel, tc.server)
			g.Expect(ev.Verdict).To(Equal(tc.want))
			g.Expect(ev.Completed).To(Equal(tc.completed))
			g.Expect(ev.Unmet).To(HaveLen(tc.unmet))
		})
	}

	t.Run("invalid selector selects nothing", func(t *testing.T) {
		g := NewWithT(t)
		r := newRule("r", metalv1alpha1.EnforcementModeContinuous, "k", "A", "True")
		r.Spec.ServerSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "rack", Operator: "Near"}}}
		_, err := Selector(&r)
		g.Expect(err).To(HaveOccurred())
		g.Expect(Evaluate(&r, nil, newServer()).Verdict).To(Equal(Release))
	})
	t.Run("empty selector selects every server", func(t *testing.T) {
		g := NewWithT(t)
		r := newRule("r", metalv1alpha1.EnforcementModeContinuous, "k", "A", "True")
		r.Spec.ServerSelector = metav1.LabelSelector{}
		sel, err := Selector(&r)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(Evaluate(&r, sel, otherRack).Verdict).To(Equal(Taint))
	})
}

// records returns annotations with a ReadinessTaintsAnnotation of the given rule/key pairs.
func records(kv ...string) map[string]string {
	m := map[string]metalv1alpha1.Taint{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = taint(kv[i+1])
	}
	return map[string]string{metalv1alpha1.ReadinessTaintsAnnotation: encode(m)}
}

func TestPlanServer(t *testing.T) {
	cont := metalv1alpha1.EnforcementModeContinuous
	boot := metalv1alpha1.EnforcementModeBootstrapOnly
	type change struct {
		rule  string
		key   string
		added bool
	}
	cases := []struct {
		name string
		// server: its conditions, taints and annotations.
		conds       []string
		taints      []string
		annotations map[string]string
		rules       []metalv1alpha1.ServerReadinessRule

		wantTaints      []string
		wantRecords     map[string]string // rule -> taint key
		wantCompleted   []string
		wantChanges     []change
		wantAnnotations map[string]string // further annotations expected (besides the records)
	}{
		{name: "no rules, nothing changes", taints: []string{"human"},
			wantTaints: []string{"human"}},
		{name: "failing rule adds and records its taint",
			rules:      []metalv1alpha1.ServerReadinessRule{newRule("r", cont, "k", "A", "True")},
			wantTaints: []string{"k"}, wantRecords: map[string]string{"r": "k"},
			wantChanges: []change{{"r", "k", true}}},
		{name: "met rule removes its recorded taint",
			conds: []string{"A", "True"}, taints: []string{"human", "k"}, annotations: records("r", "k"),
			rules:      []metalv1alpha1.ServerReadinessRule{newRule("r", cont, "k", "A", "True")},
			wantTaints: []string{"human"}, wantChanges: []change{{"r", "k", false}}},
		{name: "met rule leaves an equal taint it did not add",
			conds: []string{"A", "True"}, taints: []string{"k"},
			rules:      []metalv1alpha1.ServerReadinessRule{newRule("r", cont, "k", "A", "True")},
			wantTaints: []string{"k"}},
		{name: "failing rule does not take over an equal taint someone else set",
			taints:     []string{"k"},
			rules:      []metalv1alpha1.ServerReadinessRule{newRule("r", cont, "k", "A", "True")},
			wantTaints: []string{"k"}},
		{name: "recorded taint removed by hand comes back",
			annotations: records("r", "k"),
			rules:       []metalv1alpha1.ServerReadinessRule{newRule("r", cont, "k", "A", "True")},
			wantTaints:  []string{"k"}, wantRecords: map[string]string{"r": "k"},
			wantChanges: []change{{"r", "k", true}}},
		{name: "settled failing rule changes nothing",
			taints: []string{"k"}, annotations: records("r", "k"),
			rules:      []metalv1alpha1.ServerReadinessRule{newRule("r", cont, "k", "A", "True")},
			wantTaints: []string{"k"}, wantRecords: map[string]string{"r": "k"}},
		{name: "two rules share an equal taint until both are met",
			conds: []string{"A", "True"}, taints: []string{"k"}, annotations: records("a", "k"),
			rules: []metalv1alpha1.ServerReadinessRule{
				newRule("a", cont, "k", "A", "True"), newRule("b", cont, "k", "B", "True"),
			},
			wantTaints: []string{"k"}, wantRecords: map[string]string{"b": "k"}},
		{name: "a taint two rules hold stays while one is met",
			conds: []string{"A", "True"}, taints: []string{"k"}, annotations: records("a", "k", "b", "k"),
			rules: []metalv1alpha1.ServerReadinessRule{
				newRule("a", cont, "k", "A", "True"), newRule("b", cont, "k", "B", "True"),
			},
			wantTaints: []string{"k"}, wantRecords: map[string]string{"b": "k"}},
		{name: "record of a rule that no longer exists is released",
			taints: []string{"gone", "human"}, annotations: records("old", "gone"),
			wantTaints: []string{"human"}, wantChanges: []change{{"old", "gone", false}}},
		{name: "rule re-created with another taint swaps it",
			taints: []string{"old"}, annotations: records("r", "old"),
			rules:      []metalv1alpha1.ServerReadinessRule{newRule("r", cont, "new", "A", "True")},
			wantTaints: []string{"new"}, wantRecords: map[string]string{"r": "new"},
			wantChanges: []change{{"r", "new", true}, {"r", "old", false}}},
		{name: "bootstrap rule met: taint removed, completion recorded",
			conds: []string{"A", "True"}, taints: []string{"k"}, annotations: records("r", "k"),
			rules:           []metalv1alpha1.ServerReadinessRule{newRule("r", boot, "k", "A", "True")},
			wantTaints:      nil,
			wantCompleted:   []string{"r"},
			wantChanges:     []change{{"r", "k", false}},
			wantAnnotations: map[string]string{metalv1alpha1.BootstrapCompletedAnnotation("r"): "true"}},
		{name: "bootstrap rule completed: never taints again",
			annotations:     map[string]string{metalv1alpha1.BootstrapCompletedAnnotation("r"): "true"},
			rules:           []metalv1alpha1.ServerReadinessRule{newRule("r", boot, "k", "A", "True")},
			wantAnnotations: map[string]string{metalv1alpha1.BootstrapCompletedAnnotation("r"): "true"}},
		{name: "ignored rule keeps its taint and record",
			conds: []string{"A", "True"}, taints: []string{"k"}, annotations: records("r", "k"),
			rules: []metalv1alpha1.ServerReadinessRule{func() metalv1alpha1.ServerReadinessRule {
				r := newRule("r", cont, "k", "A", "True")
				r.Annotations = map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationIgnore}
				return r
			}()},
			wantTaints: []string{"k"}, wantRecords: map[string]string{"r": "k"}},
		{name: "malformed record reads as none",
			taints: []string{"k"}, annotations: map[string]string{metalv1alpha1.ReadinessTaintsAnnotation: "{not json"},
			rules:      []metalv1alpha1.ServerReadinessRule{newRule("r", cont, "k", "A", "True")},
			wantTaints: []string{"k"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			s := newServer(tc.conds...)
			for _, k := range tc.taints {
				s.Spec.Taints = append(s.Spec.Taints, taint(k))
			}
			s.Annotations = tc.annotations
			before := s.DeepCopy()
			p := PlanServer(s, tc.rules)
			g.Expect(s).To(Equal(before), "PlanServer must not change the server")

			var keys []string
			for _, tt := range p.Taints {
				keys = append(keys, tt.Key)
			}
			g.Expect(keys).To(Equal(tc.wantTaints))

			got := map[string]string{}
			for name, tt := range metalv1alpha1.ReadinessTaints(p.Annotations) {
				got[name] = tt.Key
			}
			want := tc.wantRecords
			if want == nil {
				want = map[string]string{}
			}
			g.Expect(got).To(Equal(want))
			for k, v := range tc.wantAnnotations {
				g.Expect(p.Annotations).To(HaveKeyWithValue(k, v))
			}
			g.Expect(p.Completed).To(Equal(tc.wantCompleted))

			var changes []change
			for _, c := range p.Changes {
				changes = append(changes, change{c.Rule, c.Taint.Key, c.Added})
				if c.Added {
					g.Expect(c.Unmet).NotTo(BeEmpty(), "an added taint says which conditions do not hold")
				} else {
					g.Expect(c.Why).NotTo(BeEmpty(), "a removed taint says why")
				}
			}
			g.Expect(changes).To(Equal(tc.wantChanges))

			// A plan applied is settled: planning again changes nothing.
			s.Spec.Taints, s.Annotations = p.Taints, p.Annotations
			again := PlanServer(s, tc.rules)
			g.Expect(again.Changed(s)).To(BeFalse())
			g.Expect(again.Changes).To(BeEmpty())
		})
	}
}
