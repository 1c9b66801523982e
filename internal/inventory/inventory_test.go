package inventory

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/resource"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/agent/report"
)

func discovery() *report.Discovery {
	return &report.Discovery{
		SystemUUID: "u-1", Vendor: "Acme Corp.", Product: "X 1000/2",
		CPUs:        []report.CPU{{ID: 0, Vendor: "GenuineIntel", Model: "Xeon", Cores: 16, Threads: 32}, {ID: 1, Cores: 16, Threads: 32}},
		MemoryBytes: 384 << 30,
		BlockDevices: []report.BlockDevice{
			{Path: "/dev/nvme0n1", Model: "NV1", SizeBytes: 1 << 40, Transport: "nvme"},
			{Path: "/dev/sda", Model: "HD", SizeBytes: 4 << 40, Rotational: true, Transport: "sata"},
		},
		NICs: []report.NIC{
			{Name: "eno2", MAC: "AA:BB:CC:00:00:02", LinkUp: false},
			{Name: "eno1", MAC: "aa:bb:cc:00:00:01", LinkUp: true, IPs: []string{"10.0.0.5"},
				Neighbors: []report.Neighbor{{ChassisID: "00:11:22:33:44:55", PortID: "Ethernet12", SystemName: "leaf-1.rack-7"}}},
			{Name: "enp9s0", MAC: "aa:bb:cc:00:00:09", LinkUp: true},
		},
		PCIDevices: []report.PCIDevice{
			{Address: "0000:17:00.0", Class: "Display controller"}, {Address: "0000:18:00.0", Class: "3D controller"},
			{Address: "0000:19:00.0", Class: "Network controller"},
		},
	}
}

func TestMergeKeepsTheBMCViewAndAddsWhatTheMachineSees(t *testing.T) {
	g := NewWithT(t)
	st := &metalv1alpha1.ServerStatus{
		NetworkInterfaces: []metalv1alpha1.NetworkInterface{
			{Name: "NIC.1", MACAddress: "AA-BB-CC-00-00-01", CarrierStatus: "Up"},
			{Name: "NIC.3", MACAddress: "aa:bb:cc:00:00:03"},
		},
		Processors:        []metalv1alpha1.Processor{{ID: "CPU.Socket.1", Model: "from BMC"}},
		TotalSystemMemory: resource.NewQuantity(256<<30, resource.BinarySI),
		Storages:          []metalv1alpha1.Storage{{Name: "RAID.1"}, {Name: StorageName}},
	}
	Merge(st, discovery())

	g.Expect(st.NetworkInterfaces).To(HaveLen(4))
	eno1 := st.NetworkInterfaces[0]
	g.Expect(eno1.Name).To(Equal("eno1"))
	g.Expect(eno1.MACAddress).To(Equal("AA-BB-CC-00-00-01"), "the BMC's spelling is kept")
	g.Expect(eno1.IPs).To(Equal([]string{"10.0.0.5"}))
	g.Expect(eno1.CarrierStatus).To(Equal("up"))
	g.Expect(eno1.Neighbors).To(Equal([]metalv1alpha1.LLDPNeighbor{{MACAddress: "00:11:22:33:44:55", PortID: "Ethernet12", SystemName: "leaf-1.rack-7"}}))
	g.Expect(st.NetworkInterfaces[1].Name).To(Equal("NIC.3"), "an interface only the BMC knows is kept")
	g.Expect(st.NetworkInterfaces[2].Name).To(Equal("eno2"))
	g.Expect(st.NetworkInterfaces[2].CarrierStatus).To(Equal("down"))

	g.Expect(st.Processors).To(HaveLen(1), "the BMC's processors are kept")
	g.Expect(st.TotalSystemMemory.Value()).To(Equal(int64(256 << 30)))
	g.Expect(st.Storages).To(HaveLen(2))
	g.Expect(st.Storages[1].Name).To(Equal(StorageName))
	g.Expect(st.Storages[1].Drives).To(HaveLen(2))
	g.Expect(st.Storages[1].Drives[1].MediaType).To(Equal("HDD"))
	g.Expect(st.Storages[1].Drives[0].Type).To(Equal("NVME"))

	// Merging the same report again changes nothing.
	before := st.DeepCopy()
	Merge(st, discovery())
	g.Expect(st).To(Equal(before))
}

func TestMergeFillsGaps(t *testing.T) {
	g := NewWithT(t)
	st := &metalv1alpha1.ServerStatus{}
	Merge(st, discovery())
	g.Expect(st.Processors).To(HaveLen(2))
	g.Expect(st.Processors[0].TotalThreads).To(Equal(int32(32)))
	g.Expect(st.TotalSystemMemory.Value()).To(Equal(int64(384 << 30)))
	g.Expect(st.NetworkInterfaces).To(HaveLen(3))
}

func TestLabels(t *testing.T) {
	for _, tc := range []struct {
		fact, want string
		mutate     func(*report.Discovery)
	}{
		{fact: "gpus", want: "2"},
		{fact: "cpus", want: "2"},
		{fact: "cpu-threads", want: "64"},
		{fact: "memory-class", want: "512Gi"},
		{fact: "memory-class", want: "256Gi", mutate: func(d *report.Discovery) { d.MemoryBytes = 256 << 30 }},
		{fact: "memory-class", want: "1Gi", mutate: func(d *report.Discovery) { d.MemoryBytes = 1000 }},
		{fact: "memory-class", want: "", mutate: func(d *report.Discovery) { d.MemoryBytes = 0 }},
		{fact: "disks", want: "2"},
		{fact: "nvme-disks", want: "1"},
		{fact: "switch", want: "leaf-1.rack-7"},
		{fact: "switch", want: "", mutate: func(d *report.Discovery) { d.NICs = nil }},
		{fact: "vendor", want: "Acme-Corp"},
		{fact: "product", want: "X-1000-2"},
		{fact: "product", want: strings.Repeat("a", 63), mutate: func(d *report.Discovery) { d.Product = strings.Repeat("a", 100) }},
	} {
		t.Run(tc.fact+"="+tc.want, func(t *testing.T) {
			d := discovery()
			if tc.mutate != nil {
				tc.mutate(d)
			}
			r, err := ParseRule("example.com/x=" + tc.fact)
			NewWithT(t).Expect(err).NotTo(HaveOccurred())
			got := Labels([]Rule{r}, d)
			if tc.want == "" {
				NewWithT(t).Expect(got).To(BeEmpty())
				return
			}
			NewWithT(t).Expect(got).To(Equal(map[string]string{"example.com/x": tc.want}))
		})
	}
}

func TestParseRule(t *testing.T) {
	for in, want := range map[string]string{
		"gpus":                   "want KEY=FACT",
		"-bad-/key=gpus":         "inventory label rule",
		"example.com/x=unknown":  `unknown fact "unknown" (known: cpu-threads, cpus,`,
		"example.com/x=":         "unknown fact",
		"example.com/x gpu=gpus": "inventory label rule",
	} {
		_, err := ParseRule(in)
		NewWithT(t).Expect(err).To(MatchError(ContainSubstring(want)), in)
	}
	r, err := ParseRule("metal.example/gpus=gpus")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(r).To(Equal(Rule{Key: "metal.example/gpus", Fact: "gpus"}))
}
