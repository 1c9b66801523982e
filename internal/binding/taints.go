// Package binding holds the pure decisions of binding claims to servers: which taints a
// claim tolerates, which servers are free, and the pool from which claims pick a server.
// Nothing here talks to the API server.
package binding

import (
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// ToleratesTaint reports whether a toleration matches a taint: the keys are equal, the
// toleration's effect is empty or the taint's, and for operator Equal (or empty) the values
// are equal; Exists ignores the value. An unknown operator matches nothing.
func ToleratesTaint(tol metalv1alpha1.Toleration, taint metalv1alpha1.Taint) bool {
	if tol.Key != taint.Key {
		return false
	}
	if tol.Effect != "" && tol.Effect != effectOf(taint) {
		return false
	}
	switch tol.Operator {
	case metalv1alpha1.TolerationOpExists:
		return true
	case metalv1alpha1.TolerationOpEqual, "":
		return tol.Value == taint.Value
	default:
		return false
	}
}

// Tolerates reports whether tolerations tolerate every NoBind taint. A taint with an empty
// effect counts as NoBind (the API defaults it so; objects that bypassed defaulting must
// not slip through). Evict taints do not block binding.
func Tolerates(taints []metalv1alpha1.Taint, tolerations []metalv1alpha1.Toleration) bool {
	for _, taint := range taints {
		if effectOf(taint) != metalv1alpha1.TaintEffectNoBind {
			continue
		}
		if !toleratedByAny(taint, tolerations) {
			return false
		}
	}
	return true
}

// UntoleratedTaint returns the first NoBind taint not tolerated, for messages.
func UntoleratedTaint(taints []metalv1alpha1.Taint, tolerations []metalv1alpha1.Toleration) (metalv1alpha1.Taint, bool) {
	for _, taint := range taints {
		if effectOf(taint) == metalv1alpha1.TaintEffectNoBind && !toleratedByAny(taint, tolerations) {
			return taint, true
		}
	}
	return metalv1alpha1.Taint{}, false
}

func toleratedByAny(taint metalv1alpha1.Taint, tolerations []metalv1alpha1.Toleration) bool {
	for _, tol := range tolerations {
		if ToleratesTaint(tol, taint) {
			return true
		}
	}
	return false
}

func effectOf(t metalv1alpha1.Taint) metalv1alpha1.TaintEffect {
	if t.Effect == "" {
		return metalv1alpha1.TaintEffectNoBind
	}
	return t.Effect
}
