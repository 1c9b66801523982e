package binding

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// TestRulesSayWhatLiftsThem: every rule that excludes a server says which rule it is and
// what would lift it; a server several rules exclude gets each of them, Check the first.
func TestRulesSayWhatLiftsThem(t *testing.T) {
	claim := &metalv1alpha1.ServerClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "uid-1"},
		Spec: metalv1alpha1.ServerClaimSpec{Tolerations: []metalv1alpha1.Toleration{{Key: "ok", Operator: metalv1alpha1.TolerationOpExists}}}}
	sel, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{
		MatchLabels:      map[string]string{"type": "gpu"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "rack", Operator: metav1.LabelSelectorOpIn, Values: []string{"r1", "r2"}}},
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	cases := []struct {
		name    string
		server  *metalv1alpha1.Server
		rules   []string
		remedy0 string
	}{
		{"bindable", freeServer("s", map[string]string{"type": "gpu", "rack": "r1"}), nil, ""},
		{"selector, both requirements", freeServer("s", map[string]string{"type": "cpu"}), []string{"selector"},
			"label the server so that rack in (r1,r2) and type=gpu holds, or widen the claim's selector"},
		{"selector, one requirement", freeServer("s", map[string]string{"type": "gpu", "rack": "r9"}), []string{"selector"},
			"label the server so that rack in (r1,r2) holds, or widen the claim's selector"},
		{"held by another claim, reserved and on", freeServer("s", map[string]string{"type": "gpu", "rack": "r1"}, func(s *metalv1alpha1.Server) {
			s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: "ns", Name: "other"}
			s.Status.State, s.Status.PowerState = metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerOnPowerState
		}), []string{"claim", "state", "power"}, "delete claim ns/other, which holds it"},
		{"retained for a claim that is gone", freeServer("s", map[string]string{"type": "gpu", "rack": "r1"}, func(s *metalv1alpha1.Server) {
			s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: "ns", Name: "gone"}
			s.Status.State = metalv1alpha1.ServerStateReleased
		}), []string{"claim", "state"}, "clear its claim reference (claim ns/gone is gone; the server was retained)"},
		{"parked and cordoned", freeServer("s", map[string]string{"type": "gpu", "rack": "r1"}, func(s *metalv1alpha1.Server) {
			s.Annotations = map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationPark}
			s.Spec.Unclaimable = true
		}), []string{"park", "cordon"}, "unpark it (annotation metal.ironcore.dev/operation=unpark)"},
		{"in error", freeServer("s", map[string]string{"type": "gpu", "rack": "r1"}, func(s *metalv1alpha1.Server) {
			s.Status.State = metalv1alpha1.ServerStateError
		}), []string{"state"}, "make its BMC reachable again (see its BMCReachable condition)"},
		{"tainted, one taint tolerated", freeServer("s", map[string]string{"type": "gpu", "rack": "r1"}, func(s *metalv1alpha1.Server) {
			s.Spec.Taints = []metalv1alpha1.Taint{{Key: "ok", Value: "x"}, {Key: "a", Value: "1"}, {Key: "b", Effect: metalv1alpha1.TaintEffectNoBind}}
		}), []string{"taints"}, "add a toleration to the claim for a=1:NoBind, b=:NoBind, or remove the taint from the server"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			var names, remedies []string
			var first string
			for _, r := range Rules() {
				reason, _ := r.Excludes(tc.server, claim, sel)
				if reason == "" {
					continue
				}
				if first == "" {
					first = reason
				}
				names = append(names, r.Name)
				remedies = append(remedies, r.Remedy(tc.server, claim, sel))
			}
			g.Expect(names).To(Equal(tc.rules))
			reason, _ := Check(tc.server, claim, sel)
			g.Expect(reason).To(Equal(first), "Check reports the first rule")
			if tc.remedy0 != "" {
				g.Expect(remedies[0]).To(Equal(tc.remedy0))
			}
		})
	}
}
