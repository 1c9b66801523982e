package binding

import (
	"testing"

	. "github.com/onsi/gomega"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

func TestTolerates(t *testing.T) {
	noBind := func(k, v string) metalv1alpha1.Taint {
		return metalv1alpha1.Taint{Key: k, Value: v, Effect: metalv1alpha1.TaintEffectNoBind}
	}
	exists := func(k string) metalv1alpha1.Toleration {
		return metalv1alpha1.Toleration{Key: k, Operator: metalv1alpha1.TolerationOpExists}
	}
	equal := func(k, v string) metalv1alpha1.Toleration {
		return metalv1alpha1.Toleration{Key: k, Operator: metalv1alpha1.TolerationOpEqual, Value: v}
	}
	cases := []struct {
		name        string
		taints      []metalv1alpha1.Taint
		tolerations []metalv1alpha1.Toleration
		want        bool
	}{
		{"no taints", nil, nil, true},
		{"NoBind tolerated by Exists", []metalv1alpha1.Taint{noBind("dedicated", "gpu")}, []metalv1alpha1.Toleration{exists("dedicated")}, true},
		{"NoBind tolerated by Equal with the same value", []metalv1alpha1.Taint{noBind("dedicated", "gpu")}, []metalv1alpha1.Toleration{equal("dedicated", "gpu")}, true},
		{"Equal with another value", []metalv1alpha1.Taint{noBind("dedicated", "gpu")}, []metalv1alpha1.Toleration{equal("dedicated", "cpu")}, false},
		{"NoBind without tolerations", []metalv1alpha1.Taint{noBind("dedicated", "gpu")}, nil, false},
		{"toleration with empty effect matches", []metalv1alpha1.Taint{noBind("k", "v")}, []metalv1alpha1.Toleration{{Key: "k", Value: "v"}}, true},
		{"toleration for Evict does not tolerate NoBind", []metalv1alpha1.Taint{noBind("k", "v")},
			[]metalv1alpha1.Toleration{{Key: "k", Operator: metalv1alpha1.TolerationOpExists, Effect: metalv1alpha1.TaintEffectEvict}}, false},
		{"Evict taint does not block binding", []metalv1alpha1.Taint{{Key: "k", Effect: metalv1alpha1.TaintEffectEvict}}, nil, true},
		{"two NoBind taints both tolerated", []metalv1alpha1.Taint{noBind("a", "1"), noBind("b", "2")},
			[]metalv1alpha1.Toleration{exists("a"), equal("b", "2")}, true},
		{"two taints, one not tolerated", []metalv1alpha1.Taint{noBind("a", "1"), noBind("b", "2")},
			[]metalv1alpha1.Toleration{exists("a")}, false},
		{"empty operator acts as Equal (match)", []metalv1alpha1.Taint{noBind("k", "v")}, []metalv1alpha1.Toleration{{Key: "k", Value: "v"}}, true},
		{"empty operator acts as Equal (mismatch)", []metalv1alpha1.Taint{noBind("k", "v")}, []metalv1alpha1.Toleration{{Key: "k", Value: "w"}}, false},
		{"empty taint effect counts as NoBind", []metalv1alpha1.Taint{{Key: "k"}}, nil, false},
		{"unknown operator matches nothing", []metalv1alpha1.Taint{noBind("k", "v")}, []metalv1alpha1.Toleration{{Key: "k", Operator: "Like", Value: "v"}}, false},
		{"different key", []metalv1alpha1.Taint{noBind("k", "v")}, []metalv1alpha1.Toleration{exists("other")}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Tolerates(tc.taints, tc.tolerations)).To(Equal(tc.want))
			_, found := UntoleratedTaint(tc.taints, tc.tolerations)
			g.Expect(found).To(Equal(!tc.want))
		})
	}
}
