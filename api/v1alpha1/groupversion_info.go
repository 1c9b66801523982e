// Package v1alpha1 contains the API types of the metal.ironcore.dev/v1alpha1 group: the
// objects with which platform teams describe physical servers (Server, BMC, BMCSecret) and
// with which users claim and boot them (ServerClaim, ServerBootConfiguration), and the rules
// that keep claims off servers until they are ready (ServerReadinessRule).
//
// +kubebuilder:object:generate=true
// +groupName=metal.ironcore.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "metal.ironcore.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
