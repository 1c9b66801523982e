package controller

import (
	"testing"

	. "github.com/onsi/gomega"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

// The rack labels of a BMC reach its Servers like any other label, follow the BMC when it is
// moved, and leave with it; a label set on a Server by hand stays.
func TestBMCCopiesRackLabels(t *testing.T) {
	g := NewWithT(t)
	em := newEmulator(t, emulator.Options{Systems: 2, Username: testBMCUser, Password: testBMCPassword})
	startBMCController(t)
	secret := newBMCSecret(t, testBMCUser, testBMCPassword)
	rack := map[string]string{
		metalv1alpha1.LocationLabel: "FRA-B1-F2",
		metalv1alpha1.RackLabel:     "1-12",
		metalv1alpha1.ShelfLabel:    "24",
		metalv1alpha1.HeightLabel:   "2",
	}
	obj := createBMC(t, bmcFor(t, em.URL(), secret.Name, func(b *metalv1alpha1.BMC) { b.Labels = rack }))

	expectLabels := func(want map[string]string) {
		t.Helper()
		g.Eventually(func(g Gomega) {
			servers := serversWithBMCRef(g, obj.Name)
			g.Expect(servers).To(HaveLen(2))
			for name, s := range servers {
				g.Expect(s.Labels).To(Equal(want), name)
			}
		}).Should(Succeed())
	}
	expectLabels(rack)

	name := BMCServerName(obj.Name, 0)
	patchServer(g, serversWithBMCRef(g, obj.Name)[name], func(s *metalv1alpha1.Server) { s.Labels["team"] = "a" })
	moved := map[string]string{metalv1alpha1.LocationLabel: "FRA-B1-F2", metalv1alpha1.RackLabel: "1-13"}
	patchObject(g, obj, func(b *metalv1alpha1.BMC) { b.Labels = moved })
	g.Eventually(func(g Gomega) {
		g.Expect(serversWithBMCRef(g, obj.Name)[name].Labels).To(Equal(map[string]string{
			"team": "a", metalv1alpha1.LocationLabel: "FRA-B1-F2", metalv1alpha1.RackLabel: "1-13",
		}))
		g.Expect(serversWithBMCRef(g, obj.Name)[BMCServerName(obj.Name, 1)].Labels).To(Equal(moved))
	}).Should(Succeed())
}
