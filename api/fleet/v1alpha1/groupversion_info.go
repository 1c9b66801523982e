// Package v1alpha1 contains the API types of the fleet.metalfleet.dev/v1alpha1 group: this
// operator's own kinds, kept apart from the metal.ironcore.dev group so that the reference's
// group stays exactly the reference's. ServerClaimSet claims a group of servers under a
// topology, all or nothing.
//
// +kubebuilder:object:generate=true
// +groupName=fleet.metalfleet.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "fleet.metalfleet.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
