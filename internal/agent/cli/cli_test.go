package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/agent/fixture"
	"github.com/metalfleet/metal-operator/internal/agent/report"
)

const credential = "cred-0123456789"

var machine = fixture.Machine{
	UUID: "8a0e7f4c-0d3b-4a51-9b5e-1c2d3e4f5a6b", Vendor: "Acme", Product: "M1", Serial: "S1", MemoryBytes: 8 << 30,
	CPUs: []fixture.CPU{{Vendor: "GenuineIntel", Model: "Xeon", Cores: 2, Threads: 4}},
	NICs: []fixture.NIC{{Name: "eno1", MAC: "02:00:00:00:00:01", Driver: "ice", SpeedMbps: 10000, Up: true,
		Neighbor: &report.Neighbor{ChassisID: "aa:bb:cc:00:00:01", PortID: "Ethernet1"}}},
	Disks: []fixture.Disk{{Name: "sda", Model: "Disk", Serial: "D1", SizeBytes: 1 << 20, Transport: "sata"}},
}

// bootServer records the discovery reports it is sent.
type bootServer struct {
	mu      sync.Mutex
	reports []report.Discovery
	auth    []string
}

func (b *bootServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != report.DiscoveryPath {
		http.NotFound(w, r)
		return
	}
	var d report.Discovery
	if err := json.NewDecoder(r.Body).Decode(&d); err != nil {
		http.Error(w, "bad report", http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reports, b.auth = append(b.reports, d), append(b.auth, r.Header.Get("Authorization"))
}

func writeMachine(t *testing.T, cmdline string) string {
	root := t.TempDir()
	NewWithT(t).Expect(fixture.Write(root, machine)).To(Succeed())
	if cmdline != "" {
		NewWithT(t).Expect(os.MkdirAll(filepath.Join(root, "proc"), 0o755)).To(Succeed())
		NewWithT(t).Expect(os.WriteFile(filepath.Join(root, "proc", "cmdline"), []byte(cmdline), 0o644)).To(Succeed())
	}
	return root
}

func TestDiscoverSendsTheReport(t *testing.T) {
	b := &bootServer{}
	hs := httptest.NewServer(b)
	defer hs.Close()

	cases := []struct {
		name    string
		cmdline string
		args    func(root string) []string
	}{
		{
			name:    "server and credential from the kernel command line",
			cmdline: "console=ttyS0 metal.boot_server=" + hs.URL + " metal.boot_credential=" + credential + " metal.agent_mode=discover\n",
			args:    func(root string) []string { return []string{"--root", root} },
		},
		{
			name: "from flags",
			args: func(root string) []string {
				return []string{"--root", root, "--mode", "discover", "--server", hs.URL, "--credential", credential}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			root := writeMachine(t, tc.cmdline)
			b.mu.Lock()
			b.reports, b.auth = nil, nil
			b.mu.Unlock()

			var stdout, stderr bytes.Buffer
			g.Expect(Run(t.Context(), "v1.2.3", tc.args(root), &stdout, &stderr)).To(Succeed())
			g.Expect(stdout.String()).To(BeEmpty())
			g.Expect(stderr.String()).To(ContainSubstring("Sent the report"))
			g.Expect(stderr.String()).NotTo(ContainSubstring(credential))

			b.mu.Lock()
			defer b.mu.Unlock()
			g.Expect(b.auth).To(Equal([]string{"Bearer " + credential}))
			want := machine.Discovery()
			want.AgentVersion = "v1.2.3"
			g.Expect(b.reports).To(Equal([]report.Discovery{want}))
		})
	}
}

func TestDryRunPrintsTheReport(t *testing.T) {
	g := NewWithT(t)
	root := writeMachine(t, "")
	var stdout, stderr bytes.Buffer
	g.Expect(Run(t.Context(), "dev", []string{"--root", root, "--dry-run"}, &stdout, &stderr)).To(Succeed())
	var d report.Discovery
	g.Expect(json.Unmarshal(stdout.Bytes(), &d)).To(Succeed())
	g.Expect(d.SystemUUID).To(Equal(machine.UUID))
	g.Expect(d.NICs[0].Neighbors).To(Equal([]report.Neighbor{*machine.NICs[0].Neighbor}))
}

func TestRunRejects(t *testing.T) {
	root := writeMachine(t, "")
	cases := map[string][]string{
		"no server nor cmdline": {"--root", root, "--credential", credential},
		"no credential":         {"--root", root, "--server", "http://127.0.0.1:1"},
		"unknown mode":          {"--root", root, "--mode", "reboot", "--dry-run"},
		"unknown policy":        {"--root", root, "--mode", "wipe", "--wipe-policy", "Shred", "--dry-run"},
		"lldp timeout too long": {"--root", root, "--lldp-timeout", "3m", "--dry-run"},
		"stray argument":        {"--root", root, "--dry-run", "extra"},
		"unknown flag":          {"--frobnicate"},
	}
	for name, args := range cases {
		g := NewWithT(t)
		var stdout, stderr bytes.Buffer
		g.Expect(Run(t.Context(), "dev", args, &stdout, &stderr)).NotTo(Succeed(), name)
	}
}

func TestVersion(t *testing.T) {
	g := NewWithT(t)
	var stdout bytes.Buffer
	g.Expect(Run(t.Context(), "v9", []string{"--version"}, &stdout, &stdout)).To(Succeed())
	g.Expect(stdout.String()).To(Equal("v9\n"))
}
