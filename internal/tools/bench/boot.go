package bench

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/tools/devenv"
)

// BootResult is what a boot case measured after the burst was bound.
type BootResult struct {
	// AllBound, AllReady and AllPoweredOn are the times from the first claim created until
	// every claim was Bound, every boot configuration Ready and every server On;
	// AllScripts until every booting machine had fetched its iPXE script.
	AllBound, AllReady, AllPoweredOn, AllScripts time.Duration
	// RegistryRequests is the requests the registry received from the first claim on.
	RegistryRequests int
	// Scripts is the iPXE scripts served with a boot; LocalAnswers the answers that sent a
	// machine to its disk before it got one (it asks again, as the devenv machines do).
	Scripts, LocalAnswers int
}

// RegistryPerClaim is the registry requests per claim.
func (b BootResult) RegistryPerClaim(claims int) float64 {
	return float64(b.RegistryRequests) / float64(max(claims, 1))
}

// bootImage is the shared image of a boot case, in the harness's registry.
const bootImage = "bench/os:1.0"

// countedRegistry is an in-process OCI registry on 127.0.0.1 that counts its requests.
type countedRegistry struct {
	host string
	srv  *http.Server
	done chan struct{}
	mu   sync.Mutex
	n    int
}

func startRegistry() (*countedRegistry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &countedRegistry{host: l.Addr().String(), done: make(chan struct{})}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.mu.Lock()
			r.n++
			r.mu.Unlock()
			h.ServeHTTP(w, req)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(r.done)
		_ = r.srv.Serve(l)
	}()
	if err := devenv.PushDemoImage(r.host + "/" + bootImage); err != nil {
		r.close()
		return nil, fmt.Errorf("pushing the boot image: %w", err)
	}
	return r, nil
}

func (r *countedRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *countedRegistry) close() {
	_ = r.srv.Close()
	<-r.done
}

// bootArgs are the operator's flags of a boot case: the boot service on at bootAddr, the
// registry reached over plain HTTP and allowed although it is on loopback.
func bootArgs(bootAddr, registryHost string) []string {
	return []string{
		"--enable-boot-service=true",
		"--boot-server-bind-address=" + bootAddr,
		"--boot-server-external-url=http://" + bootAddr,
		"--insecure-registry=" + registryHost,
		"--allowed-registries=" + registryHost,
	}
}

// freeAddr is a free address on 127.0.0.1 (closed again: the operator listens on it).
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// bootingMachines plays the machines of a boot case: when a system boots from the network
// (the emulator's boot hook), it fetches its iPXE script from the boot server, from its own
// loopback address, and asks again every 500 ms for up to 10 s while the answer sends it to
// its disk (the boot server sees the boot window once its cache does), like the devenv
// machines.
type bootingMachines struct {
	ctx     context.Context
	bootURL string
	mu      sync.Mutex
	index   map[string]int
	clients map[int]*http.Client
	scripts map[string]time.Time
	local   int
	failed  []string
}

func newBootingMachines(ctx context.Context, bootAddr string) *bootingMachines {
	return &bootingMachines{ctx: ctx, bootURL: "http://" + bootAddr, index: map[string]int{},
		clients: map[int]*http.Client{}, scripts: map[string]time.Time{}}
}

// client is the HTTP client of source address 127.0.0.(10 + i%240).
func (m *bootingMachines) client(uuid string) *http.Client {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.index[uuid]
	if !ok {
		i = len(m.index)
		m.index[uuid] = i
	}
	slot := i % 240
	if c, ok := m.clients[slot]; ok {
		return c
	}
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+slot))}}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
	m.clients[slot] = c
	return c
}

// onBoot is the emulator's boot hook.
func (m *bootingMachines) onBoot(uuid, mac string, rec emulator.BootRecord) {
	if rec.Target != bmc.BootTargetPxe && rec.Target != bmc.BootTargetUefiHttp {
		return
	}
	c := m.client(uuid)
	for range 20 {
		script, err := m.fetch(c, uuid, mac)
		if err == nil && !strings.Contains(script, "No network boot expected") {
			m.mu.Lock()
			if _, seen := m.scripts[uuid]; !seen {
				m.scripts[uuid] = time.Now()
			}
			m.mu.Unlock()
			return
		}
		if err == nil {
			m.mu.Lock()
			m.local++
			m.mu.Unlock()
		}
		select {
		case <-m.ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	m.mu.Lock()
	m.failed = append(m.failed, uuid)
	m.mu.Unlock()
}

func (m *bootingMachines) fetch(c *http.Client, uuid, mac string) (string, error) {
	req, err := http.NewRequestWithContext(m.ctx, http.MethodGet, m.bootURL+"/ipxe/"+uuid+"?mac="+mac, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("boot server answered %d", resp.StatusCode)
	}
	return string(body), nil
}

// fetched returns the machines that got a script and when the last did.
func (m *bootingMachines) fetched() (int, time.Time, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var last time.Time
	for _, t := range m.scripts {
		last = later(last, t)
	}
	return len(m.scripts), last, m.local
}

// waitBooted polls until every claim's boot configuration is Ready, every bound server On
// and want machines fetched their scripts, and returns when each was first seen.
func waitBooted(ctx context.Context, c client.Client, m *bootingMachines, want int, timeout time.Duration, logf func(string, ...any)) (ready, on, scripts time.Time, err error) {
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	for {
		now := time.Now()
		if ready.IsZero() {
			sbcs := &metalv1alpha1.ServerBootConfigurationList{}
			if err := c.List(ctx, sbcs, client.InNamespace(benchNamespace)); err != nil {
				return ready, on, scripts, err
			}
			n := 0
			for _, s := range sbcs.Items {
				if s.Status.State == metalv1alpha1.ServerBootConfigurationStateReady {
					n++
				}
			}
			if n >= want {
				ready = now
			}
		}
		nOn := 0
		if on.IsZero() {
			servers := &metalv1alpha1.ServerList{}
			if err := c.List(ctx, servers); err != nil {
				return ready, on, scripts, err
			}
			for _, s := range servers.Items {
				if s.Spec.ServerClaimRef != nil && s.Status.PowerState == metalv1alpha1.ServerOnPowerState {
					nOn++
				}
			}
			if nOn >= want {
				on = now
			}
		}
		nScripts, last, _ := m.fetched()
		if nScripts >= want {
			scripts = last
		}
		if !ready.IsZero() && !on.IsZero() && !scripts.IsZero() {
			return ready, on, scripts, nil
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			logf("ready: %v, servers on: %d, scripts fetched: %d of %d", !ready.IsZero(), nOn, nScripts, want)
		}
		if now.After(deadline) {
			m.mu.Lock()
			failed := len(m.failed)
			m.mu.Unlock()
			return ready, on, scripts, fmt.Errorf("timed out: boot configurations ready %v, %d servers On, %d scripts fetched (%d machines gave up) of %d",
				!ready.IsZero(), nOn, nScripts, failed, want)
		}
		select {
		case <-ctx.Done():
			return ready, on, scripts, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// BootMarkdown renders the boot cases as a table.
func BootMarkdown(results []Result) string {
	var b strings.Builder
	b.WriteString("| servers / claims | all bound | all boot configurations Ready | all powered on | all iPXE scripts fetched | powered on / bound | registry requests per claim | local-boot answers before the script |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		bt := r.Boot
		if bt == nil {
			continue
		}
		fmt.Fprintf(&b, "| %d / %d | %.2f s | %.2f s | %.2f s | %.2f s | %.2fx | %.3f | %d |\n",
			r.Servers, r.Claims, bt.AllBound.Seconds(), bt.AllReady.Seconds(), bt.AllPoweredOn.Seconds(), bt.AllScripts.Seconds(),
			bt.AllPoweredOn.Seconds()/bt.AllBound.Seconds(), bt.RegistryPerClaim(r.Claims), bt.LocalAnswers)
	}
	return b.String()
}
