package controller

import (
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/event"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// A BMC change wakes its servers when it can make them reachable or not, and only then.
func TestBMCChangedForServer(t *testing.T) {
	bmcWith := func(state metalv1alpha1.BMCState, specIP, statusIP string, generation int64) *metalv1alpha1.BMC {
		b := &metalv1alpha1.BMC{}
		b.Generation = generation
		b.Status.State, b.Status.IP = state, statusIP
		if specIP != "" {
			b.Spec.Access = &metalv1alpha1.InlineEndpoint{IP: specIP}
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		old, new *metalv1alpha1.BMC
		want     bool
	}{
		{"first status of a new BMC", bmcWith("", "10.0.0.1", "", 1), bmcWith(metalv1alpha1.BMCStateEnabled, "10.0.0.1", "10.0.0.1", 1), false},
		{"pending turns enabled", bmcWith(metalv1alpha1.BMCStatePending, "10.0.0.1", "10.0.0.1", 1), bmcWith(metalv1alpha1.BMCStateEnabled, "10.0.0.1", "10.0.0.1", 1), true},
		{"enabled turns error", bmcWith(metalv1alpha1.BMCStateEnabled, "10.0.0.1", "10.0.0.1", 1), bmcWith(metalv1alpha1.BMCStateError, "10.0.0.1", "10.0.0.1", 1), true},
		{"error turns pending", bmcWith(metalv1alpha1.BMCStateError, "10.0.0.1", "10.0.0.1", 1), bmcWith(metalv1alpha1.BMCStatePending, "10.0.0.1", "10.0.0.1", 1), false},
		{"spec changed", bmcWith(metalv1alpha1.BMCStateEnabled, "10.0.0.1", "10.0.0.1", 1), bmcWith(metalv1alpha1.BMCStateEnabled, "10.0.0.2", "10.0.0.1", 2), true},
		{"address learnt in status", bmcWith(metalv1alpha1.BMCStateEnabled, "", "", 1), bmcWith(metalv1alpha1.BMCStateEnabled, "", "10.0.0.3", 1), true},
		{"status address behind the spec's", bmcWith(metalv1alpha1.BMCStateEnabled, "10.0.0.1", "", 1), bmcWith(metalv1alpha1.BMCStateEnabled, "10.0.0.1", "10.0.0.9", 1), false},
		{"nothing servers use", bmcWith(metalv1alpha1.BMCStateEnabled, "10.0.0.1", "10.0.0.1", 1), bmcWith(metalv1alpha1.BMCStateEnabled, "10.0.0.1", "10.0.0.1", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := bmcChangedForServer().Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new})
			NewWithT(t).Expect(got).To(Equal(tc.want))
		})
	}
}
