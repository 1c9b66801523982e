package controller

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// The rack labels of a BMC reach its Servers like any other label, follow the BMC when it is
// moved, and leave with it.
func TestBMCCopiesRackLabels(t *testing.T) {
	g := NewWithT(t)
	rack := map[string]string{
		metalv1alpha1.LocationLabel: "FRA-B1-F2",
		metalv1alpha1.RackLabel:     "1-12",
		metalv1alpha1.ShelfLabel:    "24",
		metalv1alpha1.HeightLabel:   "2",
	}
	s := &metalv1alpha1.Server{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "a"}}}

	copyLabels(s, rack)
	for k, v := range rack {
		g.Expect(s.Labels).To(HaveKeyWithValue(k, v))
	}
	g.Expect(s.Labels).To(HaveKeyWithValue("team", "a"))
	g.Expect(s.Annotations).To(HaveKeyWithValue(metalv1alpha1.BMCLabelsAnnotation,
		"metadata.metal.ironcore.dev/height,metadata.metal.ironcore.dev/location,metadata.metal.ironcore.dev/rack,metadata.metal.ironcore.dev/shelf"))

	moved := map[string]string{metalv1alpha1.LocationLabel: "FRA-B1-F2", metalv1alpha1.RackLabel: "1-13"}
	copyLabels(s, moved)
	g.Expect(s.Labels).To(Equal(map[string]string{
		"team": "a", metalv1alpha1.LocationLabel: "FRA-B1-F2", metalv1alpha1.RackLabel: "1-13",
	}))
}
