package controller

import (
	"maps"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// ownChangePredicate lets through the changes of a controller's own kind that it acts on:
// spec (generation), deletion, finalizers and annotations, and labels when withLabels is
// set. Status-only updates, the controller's own status writes among them, do not wake it:
// every reconcile asks for its next look itself.
func ownChangePredicate(withLabels bool) predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return o.GetGeneration() != n.GetGeneration() ||
				!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
				!slices.Equal(o.GetFinalizers(), n.GetFinalizers()) ||
				!maps.Equal(o.GetAnnotations(), n.GetAnnotations()) ||
				(withLabels && !maps.Equal(o.GetLabels(), n.GetLabels()))
		},
	}
}
