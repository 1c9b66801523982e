package invariants

import (
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

func TestEvaluateSets(t *testing.T) {
	set := fleetv1alpha1.ServerClaimSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "set-a"},
		Spec: fleetv1alpha1.ServerClaimSetSpec{Replicas: 2}}
	member := func(i int, serverRef string) metalv1alpha1.ServerClaim {
		c := claim(fmt.Sprintf("a-%d", i), fmt.Sprintf("m%d", i), serverRef, "")
		c.OwnerReferences = []metav1.OwnerReference{{APIVersion: fleetv1alpha1.GroupVersion.String(), Kind: "ServerClaimSet",
			Name: "a", UID: "set-a", Controller: ptr.To(true)}}
		return c
	}
	held := func(name string, i int) metalv1alpha1.Server {
		return server(name, fmt.Sprintf("a-%d", i), fmt.Sprintf("m%d", i), metalv1alpha1.ServerStateAvailable)
	}
	cases := []struct {
		name                    string
		claims                  []metalv1alpha1.ServerClaim
		servers                 []metalv1alpha1.Server
		whole, waiting, partial int
		violations              int
	}{
		{"no members: waiting", nil, nil, 0, 1, 0, 0},
		{"members without proposals: waiting", []metalv1alpha1.ServerClaim{member(0, ""), member(1, "")}, nil, 0, 1, 0, 0},
		{"one proposal: partial, in progress", []metalv1alpha1.ServerClaim{member(0, ""), member(1, "")},
			[]metalv1alpha1.Server{held("s0", 0)}, 0, 0, 1, 0},
		{"every member holds, one recorded: partial, all or nothing holds", []metalv1alpha1.ServerClaim{member(0, "s0"), member(1, "")},
			[]metalv1alpha1.Server{held("s0", 0), held("s1", 1)}, 0, 0, 1, 0},
		{"whole", []metalv1alpha1.ServerClaim{member(0, "s0"), member(1, "s1")},
			[]metalv1alpha1.Server{held("s0", 0), held("s1", 1)}, 1, 0, 0, 0},
		{"one recorded while another holds nothing: violation", []metalv1alpha1.ServerClaim{member(0, "s0"), member(1, "")},
			[]metalv1alpha1.Server{held("s0", 0)}, 0, 0, 1, 1},
		{"one recorded while another is missing: violation", []metalv1alpha1.ServerClaim{member(0, "s0")},
			[]metalv1alpha1.Server{held("s0", 0)}, 0, 0, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := evaluateSets([]fleetv1alpha1.ServerClaimSet{set}, tc.claims, tc.servers)
			g.Expect(r.Whole).To(HaveLen(tc.whole))
			g.Expect(r.Waiting).To(HaveLen(tc.waiting))
			g.Expect(r.Partial).To(HaveLen(tc.partial))
			g.Expect(r.Violations).To(HaveLen(tc.violations), "%v", r.Violations)
		})
	}
}
