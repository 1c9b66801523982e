package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/agent/fixture"
	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// TestDiscoverThisMachine runs the collectors against this machine's real /sys and /proc.
func TestDiscoverThisMachine(t *testing.T) {
	g := NewWithT(t)
	d, warnings, err := Discover(t.Context(), Options{LLDPTimeout: 200 * time.Millisecond, Version: "test"})
	g.Expect(err).NotTo(HaveOccurred())
	t.Logf("warnings: %v", warnings)

	g.Expect(d.AgentVersion).To(Equal("test"))
	g.Expect(d.CPUs).NotTo(BeEmpty())
	for _, c := range d.CPUs {
		g.Expect(c.Threads).To(BeNumerically(">", 0))
	}
	g.Expect(d.MemoryBytes).To(BeNumerically(">", 64<<20))
	if _, err := os.Stat("/sys/class/dmi/id/product_uuid"); err == nil && os.Geteuid() == 0 {
		g.Expect(d.SystemUUID).NotTo(BeEmpty())
		g.Expect(d.Validate()).To(Succeed())
	}

	physical := 0
	entries, err := os.ReadDir("/sys/class/net")
	g.Expect(err).NotTo(HaveOccurred())
	for _, e := range entries {
		link, _ := os.Readlink(filepath.Join("/sys/class/net", e.Name()))
		if e.Name() != "lo" && !hasAnyPrefix(e.Name(), virtualNICs) && !strings.Contains(link, "devices/virtual/") {
			physical++
		}
	}
	if physical == 0 {
		t.Skip("this machine has no NIC besides loopback and virtual ones: the NIC assertions cannot run")
	}
	g.Expect(d.NICs).To(HaveLen(physical))
	for _, n := range d.NICs {
		g.Expect(n.Name).NotTo(Equal("lo"))
		g.Expect(n.MAC).To(MatchRegexp(`^([0-9a-f]{2}:){5}[0-9a-f]{2}$`))
	}
}

// TestDiscoverPartialMachine: a part that cannot be read is left empty with a warning, and the
// rest is still reported; a bad fixture file (an address, an LLDP frame) is a warning too.
func TestDiscoverPartialMachine(t *testing.T) {
	g := NewWithT(t)
	root := t.TempDir()
	m := fixture.Machine{
		UUID: "11111111-2222-3333-4444-555555555555", MemoryBytes: 1 << 30,
		CPUs:  []fixture.CPU{{Model: "CPU", Cores: 1, Threads: 1}},
		NICs:  []fixture.NIC{{Name: "eno1", MAC: "02:00:00:00:00:01", Up: true, IPs: []string{"10.0.0.1", "not-an-ip"}}},
		Disks: []fixture.Disk{{Name: "sda", Model: "D model", Serial: "S_1", SizeBytes: 1 << 20, Transport: "sata"}},
	}
	g.Expect(fixture.Write(root, m)).To(Succeed())
	g.Expect(os.Remove(filepath.Join(root, "proc", "cpuinfo"))).To(Succeed())
	g.Expect(os.Remove(filepath.Join(root, "proc", "meminfo"))).To(Succeed())
	g.Expect(os.Remove(filepath.Join(root, "sys", "class", "dmi", "id", "product_uuid"))).To(Succeed())
	g.Expect(os.RemoveAll(filepath.Join(root, "run", "udev"))).To(Succeed()) // a boot image without udev
	g.Expect(os.MkdirAll(filepath.Join(root, "agent", "lldp", "eno1"), 0o755)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(root, "agent", "lldp", "eno1", "bad.bin"), []byte("garbage"), 0o644)).To(Succeed())

	d, warnings, err := Discover(t.Context(), Options{Root: root})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d.SystemUUID).To(BeEmpty())
	g.Expect(d.Validate()).NotTo(Succeed())
	g.Expect(d.CPUs).To(BeEmpty())
	g.Expect(d.MemoryBytes).To(BeZero())
	g.Expect(d.BlockDevices).To(Equal([]report.BlockDevice{{Path: "/dev/sda", Model: "D model", Serial: "S_1", SizeBytes: 1 << 20, Transport: "sata"}}))
	g.Expect(d.NICs).To(HaveLen(1))
	g.Expect(d.NICs[0].IPs).To(Equal([]string{"10.0.0.1"}))
	g.Expect(d.NICs[0].Neighbors).To(BeEmpty())

	var text []string
	for _, w := range warnings {
		text = append(text, w.Error())
	}
	g.Expect(text).To(ConsistOf(
		HavePrefix("identity: "),
		HavePrefix("cpus: "),
		HavePrefix("memory: "),
		HavePrefix("addresses of nic eno1: "),
		HavePrefix("lldp fixture of nic eno1: "),
	))
}

func TestDiscoverCancelled(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err := Discover(ctx, Options{Root: t.TempDir()})
	g.Expect(err).To(MatchError(context.Canceled))
}
