// Package readiness holds the pure decisions of ServerReadinessRules: whether a rule wants its
// taint on a Server, and the taints and annotations that all rules together ask of one Server.
// Nothing here talks to the API server.
package readiness

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// Verdict is what one rule asks of one Server.
type Verdict int

const (
	// Keep leaves the rule's taint and record as they are: the rule carries the ignore
	// operation annotation.
	Keep Verdict = iota
	// Release asks for the rule's taint to go: the conditions hold, the rule does not select
	// the Server (any more), its BootstrapOnly run is completed, or it is being deleted.
	Release
	// Taint asks for the rule's taint: the rule selects the Server and a condition does not hold.
	Taint
)

// Evaluation is the verdict of one rule on one Server.
type Evaluation struct {
	Verdict Verdict
	// Unmet lists the requirements that do not hold (with Taint).
	Unmet []string
	// Why says why the rule releases its taint (with Release).
	Why string
	// Completed is set when a BootstrapOnly rule is met now: the Server gets the rule's
	// bootstrap-completed annotation.
	Completed bool
}

// Selector parses a rule's server selector. An empty selector selects every Server.
func Selector(rule *metalv1alpha1.ServerReadinessRule) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(&rule.Spec.ServerSelector)
}

// NameFits reports whether a rule's name fits its bootstrap-completed annotation key (always,
// for Continuous rules).
func NameFits(rule *metalv1alpha1.ServerReadinessRule) bool {
	return rule.Spec.EnforcementMode != metalv1alpha1.EnforcementModeBootstrapOnly ||
		len(rule.Name) <= metalv1alpha1.MaxBootstrapOnlyRuleNameLength
}

// Evaluate decides what a rule asks of a Server. sel is the rule's parsed selector, nil when
// it cannot be parsed (such a rule selects nothing).
func Evaluate(rule *metalv1alpha1.ServerReadinessRule, sel labels.Selector, s *metalv1alpha1.Server) Evaluation {
	switch {
	case rule.Annotations[metalv1alpha1.OperationAnnotation] == metalv1alpha1.OperationAnnotationIgnore:
		return Evaluation{Verdict: Keep}
	case !rule.DeletionTimestamp.IsZero():
		return Evaluation{Verdict: Release, Why: "the rule is being deleted"}
	case sel == nil:
		return Evaluation{Verdict: Release, Why: "the rule's selector is invalid"}
	case !sel.Matches(labels.Set(s.Labels)):
		return Evaluation{Verdict: Release, Why: "the rule no longer selects the Server"}
	case !NameFits(rule):
		return Evaluation{Verdict: Release, Why: "the rule's name is too long for a BootstrapOnly rule"}
	}
	bootstrap := rule.Spec.EnforcementMode == metalv1alpha1.EnforcementModeBootstrapOnly
	if _, done := s.Annotations[metalv1alpha1.BootstrapCompletedAnnotation(rule.Name)]; bootstrap && done {
		return Evaluation{Verdict: Release, Why: "the rule's bootstrap was completed"}
	}
	if unmet := Unmet(rule.Spec.Conditions, s.Status.Conditions); len(unmet) > 0 {
		return Evaluation{Verdict: Taint, Unmet: unmet}
	}
	if bootstrap {
		return Evaluation{Verdict: Release, Why: "the rule's conditions hold; bootstrap completed", Completed: true}
	}
	return Evaluation{Verdict: Release, Why: "the rule's conditions hold"}
}

// Unmet describes the requirements the conditions do not meet. A condition that is absent
// meets no requirement, whatever status it asks for.
func Unmet(reqs []metalv1alpha1.ConditionRequirement, conds []metav1.Condition) []string {
	var out []string
	for _, req := range reqs {
		i := slices.IndexFunc(conds, func(c metav1.Condition) bool { return c.Type == req.Type })
		switch {
		case i < 0:
			out = append(out, fmt.Sprintf("%s is absent (want %s)", req.Type, req.RequiredStatus))
		case conds[i].Status != req.RequiredStatus:
			out = append(out, fmt.Sprintf("%s is %s (want %s)", req.Type, conds[i].Status, req.RequiredStatus))
		}
	}
	return out
}

// Change is a taint added to or removed from a Server on a rule's account.
type Change struct {
	Rule  string
	Taint metalv1alpha1.Taint
	// Added is set for a taint added, clear for one removed.
	Added bool
	// Unmet lists the requirements that do not hold (for a taint added).
	Unmet []string
	// Why says why the taint was removed.
	Why string
}

// Plan is what the rules together ask of one Server.
type Plan struct {
	// Taints is the Server's spec.taints to be.
	Taints []metalv1alpha1.Taint
	// Annotations is the Server's annotations to be.
	Annotations map[string]string
	// Changes lists the taints added and removed, for events.
	Changes []Change
	// Completed lists the BootstrapOnly rules met for the first time.
	Completed []string
}

// PlanServer works out the taints and annotations of a Server from every rule in the cluster.
//
// Each rule that wants its taint gets it, and a record in ReadinessTaintsAnnotation, unless
// an equal taint is there already: recorded for another rule, the rule shares it (the taint
// stays until neither wants it); not recorded at all, it is someone else's taint and the rule
// leaves it alone. A rule that no longer wants its taint drops its record and removes the
// taint only when no other record holds an equal one. A record of a rule that no longer
// exists, or whose taint differs from the recorded one (a rule re-created under the same
// name), is released in the same way. Taints are added before any is removed, so a taint two
// rules share is never removed and added back.
func PlanServer(s *metalv1alpha1.Server, rules []metalv1alpha1.ServerReadinessRule) Plan {
	records := metalv1alpha1.ReadinessTaints(s.Annotations)
	if records == nil {
		records = map[string]metalv1alpha1.Taint{}
	}
	p := Plan{Taints: slices.Clone(s.Spec.Taints), Annotations: maps.Clone(s.Annotations)}

	sorted := make([]*metalv1alpha1.ServerReadinessRule, 0, len(rules))
	for i := range rules {
		sorted = append(sorted, &rules[i])
	}
	slices.SortFunc(sorted, func(a, b *metalv1alpha1.ServerReadinessRule) int { return strings.Compare(a.Name, b.Name) })

	var release []string
	why := map[string]string{}
	live := map[string]bool{}
	type want struct {
		name  string
		taint metalv1alpha1.Taint
		unmet []string
	}
	var wants []want
	for _, rule := range sorted {
		live[rule.Name] = true
		sel, err := Selector(rule)
		if err != nil {
			sel = nil
		}
		ev := Evaluate(rule, sel, s)
		taint := normalize(rule.Spec.Taint)
		if rec, ok := records[rule.Name]; ok && ev.Verdict != Keep && !sameTaint(rec, taint) {
			// Recorded for an earlier rule of this name with another taint.
			release = append(release, rule.Name)
			why[rule.Name] = "the rule's taint changed"
		}
		switch ev.Verdict {
		case Taint:
			wants = append(wants, want{name: rule.Name, taint: taint, unmet: ev.Unmet})
		case Release:
			if _, ok := records[rule.Name]; ok && !slices.Contains(release, rule.Name) {
				release = append(release, rule.Name)
				why[rule.Name] = ev.Why
			}
		}
		if ev.Completed {
			p.Annotations = setKey(p.Annotations, metalv1alpha1.BootstrapCompletedAnnotation(rule.Name), "true")
			p.Completed = append(p.Completed, rule.Name)
		}
	}
	for name := range records {
		if !live[name] {
			release = append(release, name)
			why[name] = "the rule is gone"
		}
	}
	slices.Sort(release)

	// A taint recorded for any rule, even one about to release it, is a rule's taint: a rule
	// that wants an equal one shares it rather than leaving it alone as someone else's.
	held := maps.Clone(records)
	// The records released are taken away first, so a rule that also wants a (new) taint
	// records that one.
	old := map[string]metalv1alpha1.Taint{}
	for _, name := range release {
		old[name] = records[name]
		delete(records, name)
	}
	for _, w := range wants {
		if rec, ok := records[w.name]; ok && sameTaint(rec, w.taint) {
			if !hasTaint(p.Taints, w.taint) {
				p.Taints = append(p.Taints, w.taint)
				p.Changes = append(p.Changes, Change{Rule: w.name, Taint: w.taint, Added: true, Unmet: w.unmet})
			}
			continue
		}
		if hasTaint(p.Taints, w.taint) {
			if recordedFor(held, w.taint) {
				records[w.name] = w.taint
			}
			continue
		}
		p.Taints = append(p.Taints, w.taint)
		records[w.name] = w.taint
		p.Changes = append(p.Changes, Change{Rule: w.name, Taint: w.taint, Added: true, Unmet: w.unmet})
	}
	for _, name := range release {
		taint := old[name]
		if recordedFor(records, taint) {
			continue
		}
		if i := slices.IndexFunc(p.Taints, func(t metalv1alpha1.Taint) bool { return sameTaint(t, taint) }); i >= 0 {
			p.Taints = slices.Delete(p.Taints, i, i+1)
			p.Changes = append(p.Changes, Change{Rule: name, Taint: taint, Why: why[name]})
		}
	}

	if len(records) == 0 {
		delete(p.Annotations, metalv1alpha1.ReadinessTaintsAnnotation)
	} else {
		p.Annotations = setKey(p.Annotations, metalv1alpha1.ReadinessTaintsAnnotation, encode(records))
	}
	if len(p.Annotations) == 0 {
		p.Annotations = nil
	}
	if len(p.Taints) == 0 {
		p.Taints = nil
	}
	return p
}

// Changed reports whether the plan changes the Server.
func (p Plan) Changed(s *metalv1alpha1.Server) bool {
	return !slices.Equal(p.Taints, s.Spec.Taints) || !maps.Equal(p.Annotations, s.Annotations)
}

// encode writes records as the value of ReadinessTaintsAnnotation, keys sorted.
func encode(records map[string]metalv1alpha1.Taint) string {
	data, _ := json.Marshal(records) // strings only: cannot fail
	return string(data)
}

// normalize gives a taint the effect the API defaults an empty one to.
func normalize(t metalv1alpha1.Taint) metalv1alpha1.Taint {
	if t.Effect == "" {
		t.Effect = metalv1alpha1.TaintEffectNoBind
	}
	return t
}

// sameTaint compares key, value and effect (an empty effect is NoBind).
func sameTaint(a, b metalv1alpha1.Taint) bool { return normalize(a) == normalize(b) }

func hasTaint(taints []metalv1alpha1.Taint, t metalv1alpha1.Taint) bool {
	return slices.ContainsFunc(taints, func(x metalv1alpha1.Taint) bool { return sameTaint(x, t) })
}

// recordedFor reports whether some rule's record holds the taint.
func recordedFor(records map[string]metalv1alpha1.Taint, t metalv1alpha1.Taint) bool {
	for _, rec := range records {
		if sameTaint(rec, t) {
			return true
		}
	}
	return false
}

func setKey(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}
