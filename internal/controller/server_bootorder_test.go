package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

func TestDesiredBootOrder(t *testing.T) {
	entry := func(name string, priority int, device string) metalv1alpha1.BootOrder {
		return metalv1alpha1.BootOrder{Name: name, Priority: priority, Device: device}
	}
	tests := []struct {
		name    string
		entries []metalv1alpha1.BootOrder
		want    []string
	}{
		{"empty", nil, nil},
		{"one", []metalv1alpha1.BootOrder{entry("disk", 5, "Boot0001")}, []string{"Boot0001"}},
		{"in priority order", []metalv1alpha1.BootOrder{entry("pxe", 1, "Boot0000"), entry("disk", 2, "Boot0001")},
			[]string{"Boot0000", "Boot0001"}},
		{"lower priority first", []metalv1alpha1.BootOrder{entry("disk", 10, "Boot0001"), entry("cd", -1, "Boot0002"), entry("pxe", 3, "Boot0000")},
			[]string{"Boot0002", "Boot0000", "Boot0001"}},
		{"equal priorities keep their order", []metalv1alpha1.BootOrder{entry("b", 1, "B"), entry("a", 0, "A"), entry("c", 1, "C"), entry("d", 1, "D")},
			[]string{"A", "B", "C", "D"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			in := append([]metalv1alpha1.BootOrder(nil), tt.entries...)
			g.Expect(desiredBootOrder(tt.entries)).To(Equal(tt.want))
			g.Expect(tt.entries).To(Equal(in), "the spec is not reordered in place")
		})
	}
}

// withBootOrder sets spec.bootOrder.
func withBootOrder(entries ...metalv1alpha1.BootOrder) func(*metalv1alpha1.Server) {
	return func(s *metalv1alpha1.Server) { s.Spec.BootOrder = entries }
}

// expectBootOrder waits until the emulated system boots in order and the server's
// BootOrderApplied condition is True.
func (f *serverFixture) expectBootOrder(s *metalv1alpha1.Server, order ...string) {
	f.t.Helper()
	NewWithT(f.t).Eventually(func(g Gomega) {
		g.Expect(f.em.BootOrder(s.Spec.SystemUUID)).To(Equal(order))
		get(g, s)
		expectCondition(g, s, metalv1alpha1.ServerBootOrderApplied, metav1.ConditionTrue, metalv1alpha1.ReasonBootOrderApplied)
	}).Should(Succeed())
}

// spec.bootOrder is applied through the BMC by priority while the server is Available and
// while it is Reserved until the claim's first boot, a change made at the BMC is undone at
// the next resync (not after that boot), a settled server is not written, and an empty
// spec.bootOrder leaves the BMC's order alone.
func TestServerBootOrder(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	s := f.newServer(0, withBootOrder(
		metalv1alpha1.BootOrder{Name: "disk", Priority: 30, Device: "Boot0001"},
		metalv1alpha1.BootOrder{Name: "pxe", Priority: 10, Device: "Boot0000"},
		metalv1alpha1.BootOrder{Name: "cd", Priority: 20, Device: "Boot0002"},
	))
	uuid := s.Spec.SystemUUID
	waitState(t, s, metalv1alpha1.ServerStateAvailable)
	f.expectBootOrder(s, "Boot0000", "Boot0002", "Boot0001")
	get(g, s)
	g.Expect(condition(s, metalv1alpha1.ServerBootOrderApplied).Message).To(Equal("The BMC reports the boot order Boot0000, Boot0002, Boot0001"))
	applied := expectEvent(t, s, "Normal", "BootOrderApplied")
	g.Expect(applied.Note).To(Equal("Boot order set to Boot0000, Boot0002, Boot0001 (the BMC had Boot0001, Boot0000, Boot0002, Boot0003)"))

	// Settled: the resyncs find the order in place and write nothing.
	rv := settledVersion(g, s)
	g.Expect(rv).NotTo(BeEmpty())

	// Someone changes the order at the BMC: undone at the next resync.
	g.Expect(f.em.SetBootOrder(uuid, []string{"Boot0003", "Boot0001"})).To(BeTrue())
	f.expectBootOrder(s, "Boot0000", "Boot0002", "Boot0001")

	// The same while Reserved, until the claim's first boot.
	c := f.newClaim("boot-order", metalv1alpha1.PowerOn)
	sbc := f.bind(s, c, metalv1alpha1.ServerBootConfigurationStatePending)
	waitState(t, s, metalv1alpha1.ServerStateReserved)
	g.Expect(f.em.SetBootOrder(uuid, []string{"Boot0003"})).To(BeTrue())
	f.expectBootOrder(s, "Boot0000", "Boot0002", "Boot0001")

	// Booted for the claim: its operating system owns the boot order now (an installer
	// puts its own entry first), and the condition goes.
	setBootConfigurationState(g, sbc, metalv1alpha1.ServerBootConfigurationStateReady)
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(s.Status.NetworkBootClaimUID).To(Equal(string(c.UID)))
		g.Expect(condition(s, metalv1alpha1.ServerBootOrderApplied)).To(BeNil())
	}).Should(Succeed())
	g.Expect(f.em.SetBootOrder(uuid, []string{"Boot0001", "Boot0000"})).To(BeTrue())
	g.Consistently(func() []string { return f.em.BootOrder(uuid) }).
		WithTimeout(700 * time.Millisecond).Should(Equal([]string{"Boot0001", "Boot0000"}))

	// No boot order in the spec: the condition goes and the BMC's order is left alone.
	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.BootOrder = nil })
	g.Eventually(func(g Gomega) {
		get(g, s)
		g.Expect(condition(s, metalv1alpha1.ServerBootOrderApplied)).To(BeNil())
	}).Should(Succeed())
	g.Expect(f.em.SetBootOrder(uuid, []string{"Boot0003"})).To(BeTrue())
	g.Consistently(func() []string { return f.em.BootOrder(uuid) }).
		WithTimeout(700 * time.Millisecond).Should(Equal([]string{"Boot0003"}))
}

// A device the BMC does not have: the BMC refuses the order, the condition says so with the
// BMC's message (no credentials), one Warning event, and the server keeps working.
func TestServerBootOrderRejected(t *testing.T) {
	f := newServerFixture(t, emulator.Options{})
	g := NewWithT(t)
	pxe := metalv1alpha1.BootOrder{Name: "pxe", Priority: 1, Device: "Boot0000"}
	s := f.availableServer(0, withBootOrder(pxe, metalv1alpha1.BootOrder{Name: "floppy", Priority: 2, Device: "Boot0042"}))
	uuid := s.Spec.SystemUUID

	var msg string
	g.Eventually(func(g Gomega) {
		get(g, s)
		c := expectCondition(g, s, metalv1alpha1.ServerBootOrderApplied, metav1.ConditionFalse, metalv1alpha1.ReasonBootOrderRejected)
		msg = c.Message
	}).Should(Succeed())
	g.Expect(msg).To(HavePrefix("The BMC refused the boot order Boot0000, Boot0042: "))
	g.Expect(msg).To(ContainSubstring(`The value "Boot0042" for the property BootOrder is not in the list of acceptable values.`))
	g.Expect(msg).NotTo(ContainSubstring(testBMCPassword))
	rejected := expectEvent(t, s, "Warning", "BootOrderRejected")
	g.Expect(rejected.Note).To(Equal(msg))
	g.Expect(f.em.BootOrder(uuid)).To(Equal([]string{"Boot0001", "Boot0000", "Boot0002", "Boot0003"}), "nothing changed at the BMC")

	// The refused order is not sent again for the same spec; the server stays Available and
	// off, the condition as it is, and the rejection is announced once.
	writes := f.em.BootOrderWrites(uuid)
	g.Expect(writes).To(BeNumerically(">=", 1))
	g.Consistently(func(g Gomega) {
		g.Expect(f.em.BootOrderWrites(uuid)).To(Equal(writes), "a refused order was sent again")
		get(g, s)
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
		c := expectCondition(g, s, metalv1alpha1.ServerBootOrderApplied, metav1.ConditionFalse, metalv1alpha1.ReasonBootOrderRejected)
		g.Expect(c.Message).To(Equal(msg))
		for _, e := range serverEvents(g, s) {
			if e.Reason == "BootOrderRejected" {
				g.Expect(e.Series).To(BeNil(), "the rejection was announced again")
			}
		}
	}, time.Second).Should(Succeed(), "over three resyncs")

	// A spec the BMC accepts is applied.
	patchServer(g, s, withBootOrder(pxe, metalv1alpha1.BootOrder{Name: "usb", Priority: 2, Device: "Boot0003"}))
	f.expectBootOrder(s, "Boot0000", "Boot0003")
}
