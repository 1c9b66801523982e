package machine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/agent/fixture"
	"github.com/metalfleet/metal-operator/internal/agent/report"
)

const (
	uuid       = "8a0e7f4c-0d3b-4a51-9b5e-1c2d3e4f5a6b"
	credential = "boot-cred-42"
	sourceIP   = "127.0.0.2"
)

var neighbor = report.Neighbor{ChassisID: "aa:bb:cc:00:00:01", PortID: "Ethernet7", SystemName: "leaf-1"}

var testMachine = fixture.Machine{
	UUID: uuid, Vendor: "Acme", Product: "M1", MemoryBytes: 16 << 30,
	CPUs: []fixture.CPU{{Vendor: "GenuineIntel", Model: "Xeon", Cores: 4, Threads: 8}},
	NICs: []fixture.NIC{{Name: "eno1", MAC: "02:00:00:00:00:01", Driver: "ice", SpeedMbps: 25000, Up: true,
		IPs: []string{"10.0.0.5"}, Neighbor: &neighbor}},
	Disks: []fixture.Disk{{Name: "nvme0n1", Model: "NVMe Disk", Serial: "N1", SizeBytes: 1 << 20, Transport: "nvme"}},
}

// bootServer is a boot server that serves one script and records what the machine did.
type bootServer struct {
	script string // %[1]s is the server's URL

	mu          sync.Mutex
	url         string
	fetched     []string
	remotes     map[string]bool
	discoveries []report.Discovery
	bootStates  []string
	auth        []string
}

func newBootServer(t *testing.T, script string) *bootServer {
	b := &bootServer{script: script, remotes: map[string]bool{}}
	hs := httptest.NewServer(b)
	t.Cleanup(hs.Close)
	b.url = hs.URL
	return b
}

func (b *bootServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	b.remotes[host] = true
	b.fetched = append(b.fetched, r.Method+" "+r.URL.Path)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/ipxe/"+uuid:
		_, _ = fmt.Fprintf(w, b.script, b.url)
	case r.Method == http.MethodGet && (r.URL.Path == "/artifacts/kernel" || r.URL.Path == "/artifacts/initrd"):
		_, _ = w.Write(make([]byte, 4096))
	case r.Method == http.MethodGet && r.URL.Path == "/ignition/"+credential:
		_, _ = io.WriteString(w, `{"ignition":{"version":"3.4.0"}}`)
	case r.Method == http.MethodPost && r.URL.Path == report.DiscoveryPath:
		var d report.Discovery
		if err := json.NewDecoder(io.LimitReader(r.Body, report.MaxBytes)).Decode(&d); err != nil {
			http.Error(w, "bad report", http.StatusBadRequest)
			return
		}
		b.discoveries, b.auth = append(b.discoveries, d), append(b.auth, r.Header.Get("Authorization"))
	case r.Method == http.MethodPost && r.URL.Path == "/bootstate":
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1024))
		b.bootStates, b.auth = append(b.bootStates, string(body)), append(b.auth, r.Header.Get("Authorization"))
	default:
		http.NotFound(w, r)
	}
}

const agentScript = "#!ipxe\n" +
	"kernel --name kernel %[1]s/artifacts/kernel initrd=initrd console=ttyS0 ignition.firstboot ignition.config.url=%[1]s/ignition/" + credential +
	" metal.boot_server=%[1]s metal.boot_credential=" + credential + " metal.agent_mode=discover\n" +
	"initrd --name initrd /artifacts/initrd\nboot\n"

func TestBootDiscover(t *testing.T) {
	cases := []struct {
		name   string
		binary func(t *testing.T) string
	}{
		{name: "agent in-process", binary: func(*testing.T) string { return "" }},
		{name: "agent binary", binary: buildAgent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			b := newBootServer(t, agentScript)
			root := t.TempDir()
			g.Expect(fixture.Write(root, testMachine)).To(Succeed())

			var out strings.Builder
			err := Boot(t.Context(), Options{BootURL: b.url, SystemUUID: uuid, SourceIP: sourceIP, Root: root,
				AgentBinary: tc.binary(t), Output: &out})
			g.Expect(err).NotTo(HaveOccurred(), out.String())
			g.Expect(out.String()).NotTo(ContainSubstring(credential))

			cmdline, err := os.ReadFile(filepath.Join(root, "proc", "cmdline"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(cmdline)).To(HavePrefix("initrd=initrd console=ttyS0 "))
			g.Expect(string(cmdline)).To(ContainSubstring("metal.agent_mode=discover"))

			b.mu.Lock()
			defer b.mu.Unlock()
			g.Expect(b.fetched).To(Equal([]string{"GET /ipxe/" + uuid, "GET /artifacts/kernel", "GET /artifacts/initrd",
				"GET /ignition/" + credential, "POST " + report.DiscoveryPath}))
			g.Expect(b.remotes).To(Equal(map[string]bool{sourceIP: true}))
			g.Expect(b.auth).To(Equal([]string{"Bearer " + credential}))
			g.Expect(b.discoveries).To(HaveLen(1))
			d := b.discoveries[0]
			g.Expect(d.SystemUUID).To(Equal(uuid))
			g.Expect(d.NICs).To(HaveLen(1))
			g.Expect(d.NICs[0].Neighbors).To(Equal([]report.Neighbor{neighbor}))
			g.Expect(d.NICs[0].IPs).To(Equal([]string{"10.0.0.5"}))
		})
	}
}

// TestBootOrdinaryOS: a kernel line without metal.agent_mode boots an OS, which reports its
// boot state with its credential.
func TestBootOrdinaryOS(t *testing.T) {
	g := NewWithT(t)
	b := newBootServer(t, "#!ipxe\nkernel %[1]s/artifacts/kernel initrd=initrd metal.boot_credential="+credential+
		"\ninitrd --name initrd %[1]s/artifacts/initrd\nboot\n")
	root := t.TempDir()
	g.Expect(Boot(t.Context(), Options{BootURL: b.url + "/", SystemUUID: uuid, SourceIP: sourceIP, Root: root})).To(Succeed())

	b.mu.Lock()
	defer b.mu.Unlock()
	g.Expect(b.fetched).To(Equal([]string{"GET /ipxe/" + uuid, "GET /artifacts/kernel", "GET /artifacts/initrd", "POST /bootstate"}))
	g.Expect(b.auth).To(Equal([]string{"Bearer " + credential}))
	g.Expect(b.bootStates).To(HaveLen(1))
	g.Expect(b.bootStates[0]).To(MatchJSON(`{"systemUUID":"` + uuid + `","booted":true}`))
}

func TestBootLocal(t *testing.T) {
	g := NewWithT(t)
	b := newBootServer(t, "#!ipxe\necho No network boot expected: booting from local disk\nexit\n")
	err := Boot(t.Context(), Options{BootURL: b.url, SystemUUID: uuid, Root: t.TempDir()})
	g.Expect(err).To(MatchError(ErrLocalBoot))
}

func TestBootFailures(t *testing.T) {
	cases := map[string]string{
		"kernel missing on the server": "#!ipxe\nkernel %[1]s/artifacts/missing initrd=initrd\nboot\n",
		"ignition refused":             "#!ipxe\nkernel %[1]s/artifacts/kernel ignition.config.url=%[1]s/ignition/wrong\nboot\n",
		"agent report refused":         "#!ipxe\nkernel %[1]s/artifacts/kernel metal.boot_server=%[1]s/nowhere metal.boot_credential=x metal.agent_mode=discover\nboot\n",
	}
	for name, script := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			b := newBootServer(t, script)
			root := t.TempDir()
			g.Expect(fixture.Write(root, testMachine)).To(Succeed())
			err := Boot(t.Context(), Options{BootURL: b.url, SystemUUID: uuid, Root: root})
			g.Expect(err).To(MatchError(ContainSubstring("status 404")))
		})
	}
	g := NewWithT(t)
	b := newBootServer(t, agentScript)
	err := Boot(t.Context(), Options{BootURL: b.url, SystemUUID: "unknown", Root: t.TempDir()})
	g.Expect(err).To(MatchError(ContainSubstring("status 404")))
	g.Expect(errors.Is(err, ErrLocalBoot)).To(BeFalse())
}

func TestParseScript(t *testing.T) {
	g := NewWithT(t)
	cases := []struct {
		in         string
		wantKernel string
		wantInitrd []string
		wantParams []string
	}{
		{"#!ipxe\nkernel --name k --autofree http://a/k x=1 y\ninitrd -n i http://a/i\ninitrd rel\n", "http://a/k", []string{"http://a/i", "http://b/base/rel"}, []string{"x=1", "y"}},
		{"#!ipxe\nexit\n", "", nil, nil},
		{"#!ipxe\nkernel\n", "", nil, nil},
	}
	for _, tc := range cases {
		base := mustParse("http://b/base/")
		s, err := parseScript(tc.in, base)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(s.kernel).To(Equal(tc.wantKernel))
		g.Expect(s.initrds).To(Equal(tc.wantInitrd))
		g.Expect(s.params).To(Equal(tc.wantParams))
	}
}

// buildAgent builds cmd/metal-agent statically into a temporary directory.
func buildAgent(t *testing.T) string {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build the agent with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "metal-agent")
	cmd := exec.CommandContext(t.Context(), goTool, "build", "-o", bin, "github.com/metalfleet/metal-operator/cmd/metal-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the agent: %v\n%s", err, out)
	}
	return bin
}

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
