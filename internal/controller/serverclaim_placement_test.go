package controller

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/rand"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// boundServer waits until the claim names a server and returns its name.
func boundServer(g Gomega, c *metalv1alpha1.ServerClaim) string {
	var name string
	g.Eventually(func(g Gomega) {
		cur := getClaim(g, c)
		g.Expect(cur.Spec.ServerRef).NotTo(BeNil())
		name = cur.Spec.ServerRef.Name
	}).Should(Succeed())
	return name
}

func withPlacement(p metalv1alpha1.Placement) func(*metalv1alpha1.ServerClaim) {
	return func(c *metalv1alpha1.ServerClaim) { c.Spec.Placement = &p }
}

// Pack takes the best fit first: the server with the fewest labels beyond the selector's.
func TestServerClaimPackTakesTheBestFit(t *testing.T) {
	g := NewWithT(t)
	startClaimController(t)
	ns := env.Namespace(t)
	pool := rand.String(6)
	big := newIdleServer(t, map[string]string{"pack": pool, "gpus": "8", "nvme": "yes"})
	mid := newIdleServer(t, map[string]string{"pack": pool, "gpus": "4"})
	small := newIdleServer(t, map[string]string{"pack": pool})
	pack := withPlacement(metalv1alpha1.Placement{Policy: metalv1alpha1.PlacementPack})

	for _, want := range []*metalv1alpha1.Server{small, mid, big} {
		c := newClaim(t, ns, bySelector("pack", pool), pack)
		g.Expect(boundServer(g, c)).To(Equal(want.Name))
	}
}

// Claims of one anti-affinity group go to different racks while racks without a member are
// left; the fourth doubles up.
func TestServerClaimGroupSpreadsOverRacks(t *testing.T) {
	g := NewWithT(t)
	startClaimController(t)
	ns := env.Namespace(t)
	pool := rand.String(6)
	rackOf := map[string]string{}
	for r := range 3 {
		for range 3 {
			s := newIdleServer(t, map[string]string{"group-pool": pool, rackLabel: []string{"a", "b", "c"}[r]})
			rackOf[s.Name] = s.Labels[rackLabel]
		}
	}
	group := withPlacement(metalv1alpha1.Placement{Group: "etcd", TopologyKey: rackLabel})
	racks := map[string]int{}
	for range 3 {
		c := newClaim(t, ns, bySelector("group-pool", pool), group)
		racks[rackOf[boundServer(g, c)]]++
	}
	g.Expect(racks).To(Equal(map[string]int{"a": 1, "b": 1, "c": 1}))

	c := newClaim(t, ns, bySelector("group-pool", pool), group)
	racks[rackOf[boundServer(g, c)]]++
	g.Expect(racks).To(HaveLen(3))
	g.Expect(racks).To(ContainElement(2), "the fourth shares a rack: the group prefers, it does not refuse")
}
