package index

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

func TestSetAssignment(t *testing.T) {
	owned := []metav1.OwnerReference{{APIVersion: fleetv1alpha1.GroupVersion.String(), Kind: "ServerClaimSet", Name: "cp", UID: "u", Controller: ptr.To(true)}}
	assigned := map[string]string{fleetv1alpha1.AssignedServerAnnotation: "s1"}
	cases := []struct {
		name       string
		owners     []metav1.OwnerReference
		ann        map[string]string
		serverRef  bool
		wantServer string
		wantSet    string
	}{
		{"a set's member, assigned", owned, assigned, false, "s1", "cp"},
		{"a set's member, recorded", owned, assigned, true, "", "cp"},
		{"a set's member without assignment", owned, nil, false, "", "cp"},
		{"a plain claim with the annotation means nothing", nil, assigned, false, "", ""},
		{"owned by a ServerClaimSet of another group", []metav1.OwnerReference{{APIVersion: "other.example/v1", Kind: "ServerClaimSet",
			Name: "cp", Controller: ptr.To(true)}}, assigned, false, "", ""},
		{"not the controller", []metav1.OwnerReference{{APIVersion: fleetv1alpha1.GroupVersion.String(), Kind: "ServerClaimSet", Name: "cp"}},
			assigned, false, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c := &metalv1alpha1.ServerClaim{ObjectMeta: metav1.ObjectMeta{Name: "cp-0", OwnerReferences: tc.owners, Annotations: tc.ann}}
			if tc.serverRef {
				c.Spec.ServerRef = &metalv1alpha1.LocalObjectReference{Name: "s1"}
			}
			server, ok := SetAssignment(c)
			g.Expect(ok).To(Equal(tc.wantServer != ""))
			g.Expect(server).To(Equal(tc.wantServer))
			set, ok := ClaimSetOf(c)
			g.Expect(ok).To(Equal(tc.wantSet != ""))
			g.Expect(set).To(Equal(tc.wantSet))
		})
	}
}
