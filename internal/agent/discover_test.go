package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
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
