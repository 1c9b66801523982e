package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/agent/fixture"
	"github.com/metalfleet/metal-operator/internal/agent/report"
	"github.com/metalfleet/metal-operator/internal/boot"
	"github.com/metalfleet/metal-operator/internal/boot/image"
	"github.com/metalfleet/metal-operator/internal/boot/image/imagetest"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/inventory"
	"github.com/metalfleet/metal-operator/internal/testing/machine"
	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

// agentWorld is a claim world with the real boot server taking agent reports, and the server
// controller booting the agent: the test namespace is the agent namespace, and the test plays
// the boot provider (it marks the agent's boot configuration Ready) and the booting machine.
type agentWorld struct {
	*claimWorld
	bootURL string
}

func newAgentWorld(t *testing.T, systems int, mutate func(*ServerOptions)) *agentWorld {
	t.Helper()
	return newAgentWorldWith(t, systems, nil, mutate)
}

// newAgentWorldWith is newAgentWorld with, when reg is set, the real boot configuration
// controller resolving images from reg (the agent image is reg's metal/agent:1), so that
// nothing is played by the test but the machine.
func newAgentWorldWith(t *testing.T, systems int, reg *imagetest.Registry, mutate func(*ServerOptions)) *agentWorld {
	t.Helper()
	io := image.Options{}
	if reg != nil {
		io = image.Options{DefaultRegistry: reg.Host, AllowedRegistries: []string{"127.0.0.1"}}
	}
	var handler http.Handler
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	var agentNS string
	w := newClaimWorldWith(t, systems, func(ns string, o *ServerOptions) {
		agentNS = ns
		o.AgentImage, o.AgentNamespace = "registry.example/metal-agent:1", ns
		if reg != nil {
			o.AgentImage = "metal/agent:1"
		}
		o.AgentBootTimeout, o.AgentRetryDelay, o.AgentReportGrace = 20*time.Second, 200*time.Millisecond, 100*time.Millisecond
		if mutate != nil {
			mutate(o)
		}
	}, func(mgr manager.Manager) error {
		if err := index.SetupBoot(context.Background(), mgr.GetFieldIndexer()); err != nil {
			return err
		}
		resolver, err := image.NewResolver(io)
		if err != nil {
			return err
		}
		if reg != nil {
			if err := (&ServerBootConfigurationReconciler{
				Client: mgr.GetClient(), Resolver: resolver, Recorder: mgr.GetEventRecorder("serverbootconfiguration-controller"),
				Options: ServerBootConfigurationOptions{ImageRetryMin: 100 * time.Millisecond, ImageRetryMax: 400 * time.Millisecond,
					MaxConcurrentReconciles: 4, Namespace: agentNS},
			}).SetupWithManager(mgr); err != nil {
				return err
			}
		}
		srv, err := boot.NewServer(mgr.GetClient(), mgr.GetAPIReader(), resolver, boot.Options{
			ExternalURL: hs.URL, Recorder: mgr.GetEventRecorder("boot-server"), AgentNamespace: agentNS})
		if err != nil {
			return err
		}
		handler = srv.Handler()
		return mgr.Add(srv)
	})
	return &agentWorld{claimWorld: w, bootURL: hs.URL}
}

// agentConfiguration waits for the agent boot configuration of s and returns it.
func (w *agentWorld) agentConfiguration(g Gomega, s *metalv1alpha1.Server) *metalv1alpha1.ServerBootConfiguration {
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	g.Eventually(func() error {
		return env.Client.Get(context.Background(), types.NamespacedName{Namespace: w.ns, Name: s.Name}, sbc)
	}).Should(Succeed())
	return sbc
}

// provide plays the boot provider: the configuration is Ready with an image pinned.
func provide(g Gomega, ns, name string) {
	g.Eventually(func() error {
		sbc := &metalv1alpha1.ServerBootConfiguration{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, sbc); err != nil {
			return err
		}
		before := sbc.DeepCopy()
		sbc.Status.State, sbc.Status.ObservedGeneration = metalv1alpha1.ServerBootConfigurationStateReady, sbc.Generation
		sbc.Status.Image = &metalv1alpha1.ResolvedImage{Reference: sbc.Spec.Image, Digest: "sha256:" + strings.Repeat("a", 64),
			Kernel: &metalv1alpha1.BootArtifact{Digest: "sha256:" + strings.Repeat("b", 64)},
			Initrd: &metalv1alpha1.BootArtifact{Digest: "sha256:" + strings.Repeat("c", 64)}}
		return env.Client.Status().Patch(context.Background(), sbc, client.MergeFrom(before))
	}).Should(Succeed())
}

// bootAgent plays the machine: it asks for its iPXE script from 127.0.0.1 until the script
// boots the agent, and returns the kernel parameters.
func (w *agentWorld) bootAgent(g Gomega, s *metalv1alpha1.Server) map[string]string {
	params := map[string]string{}
	g.Eventually(func(g Gomega) {
		code, script := httpFrom(g, "127.0.0.1", http.MethodGet, w.bootURL+"/ipxe/"+s.Spec.SystemUUID, "", nil)
		g.Expect(code).To(Equal(http.StatusOK))
		g.Expect(script).To(ContainSubstring(report.CmdlineMode + "="))
		for _, line := range strings.Split(script, "\n") {
			if !strings.HasPrefix(line, "kernel ") {
				continue
			}
			for _, f := range strings.Fields(line) {
				if k, v, ok := strings.Cut(f, "="); ok {
					params[k] = v
				}
			}
		}
	}).WithTimeout(20 * time.Second).Should(Succeed())
	return params
}

// httpFrom makes a request from a local address and returns the status code and body.
func httpFrom(g Gomega, from, method, url, credential string, body any) (int, string) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		g.Expect(err).NotTo(HaveOccurred())
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	g.Expect(err).NotTo(HaveOccurred())
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := testenv.ClientFrom(from).Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(b)
}

func discoveryReport(uuid, mac string) *report.Discovery {
	return &report.Discovery{
		SystemUUID: uuid, Vendor: "Emulated", Product: "Metal 1",
		CPUs:        []report.CPU{{ID: 0, Model: "Emulated CPU", Cores: 8, Threads: 16}},
		MemoryBytes: 64 << 30,
		BlockDevices: []report.BlockDevice{
			{Path: "/dev/sda", Model: "Disk A", Serial: "SA", SizeBytes: 1 << 30, Transport: "sata"},
			{Path: "/dev/nvme0n1", Model: "Disk B", Serial: "SB", SizeBytes: 1 << 30, Transport: "nvme"},
		},
		NICs: []report.NIC{{Name: "eno1", MAC: mac, LinkUp: true, IPs: []string{"192.0.2.17"},
			Neighbors: []report.Neighbor{{ChassisID: "00:00:5e:00:53:01", PortID: "Ethernet7", SystemName: "leaf-7"}}}},
		PCIDevices: []report.PCIDevice{{Address: "0000:17:00.0", Class: "3D controller"}},
	}
}

func wipeReport(uuid string, policy metalv1alpha1.WipePolicy, failing string) *report.Wipe {
	w := &report.Wipe{SystemUUID: uuid, Policy: string(policy), StartedAt: time.Now(), FinishedAt: time.Now()}
	for _, d := range []string{"/dev/sda", "/dev/nvme0n1"} {
		dw := report.DiskWipe{Path: d, Serial: "S" + d[len(d)-1:], Method: "signatures+ends", Result: report.ResultSucceeded,
			Verification: report.Verification{SampledBlocks: 8, Passed: true}}
		if d == failing {
			dw.Result, dw.Error, dw.Verification = report.ResultFailed, "short write at offset 4096", report.Verification{SampledBlocks: 8, Mismatches: 1}
		}
		w.Disks = append(w.Disks, dw)
	}
	return w
}

// TestDiscoveryBootsTheAgent: with discovery boots on, a new server reads its BMC, boots the
// agent through the real boot server and is Available once the agent's report is merged:
// neighbours, IPs, disks, labels from the inventory rules. Reports without the credential,
// from another address, about another system or with a spent credential are refused and
// change nothing; the agent boot's objects are gone afterwards.
func TestDiscoveryBootsTheAgent(t *testing.T) {
	g := NewWithT(t)
	gpus, err := inventory.ParseRule("example.com/gpus=gpus")
	g.Expect(err).NotTo(HaveOccurred())
	w := newAgentWorld(t, 2, func(o *ServerOptions) {
		o.DiscoveryBoot = true
		o.InventoryLabels = []inventory.Rule{gpus}
	})
	s := newServer(t, w.em, w.secret, 0)
	sbc := w.agentConfiguration(g, s)
	g.Expect(sbc.Annotations).To(HaveKeyWithValue(metalv1alpha1.AgentModeAnnotation, metalv1alpha1.AgentModeDiscover))
	g.Expect(sbc.Spec.Image).To(Equal("registry.example/metal-agent:1"))
	g.Expect(getServer(g, s).Status.State).To(Equal(metalv1alpha1.ServerStateDiscovery))
	provide(g, w.ns, s.Name)

	params := w.bootAgent(g, s)
	g.Expect(params).To(HaveKeyWithValue(report.CmdlineMode, metalv1alpha1.AgentModeDiscover))
	g.Expect(params).To(HaveKeyWithValue(report.CmdlineServer, w.bootURL))
	credential := params[report.CmdlineCredential]
	g.Expect(credential).NotTo(BeEmpty())
	g.Eventually(func(g Gomega) {
		g.Expect(getServer(g, s).Status.PowerState).To(Equal(metalv1alpha1.ServerOnPowerState))
	}).Should(Succeed())

	url := w.bootURL + report.DiscoveryPath
	var mac string
	g.Eventually(func(g Gomega) {
		nics := getServer(g, s).Status.NetworkInterfaces
		g.Expect(nics).NotTo(BeEmpty(), "the BMC's inventory is read first")
		mac = nics[0].MACAddress
	}).Should(Succeed())
	good := discoveryReport(s.Spec.SystemUUID, mac)
	code, _ := httpFrom(g, "127.0.0.1", http.MethodPost, url, "", good)
	g.Expect(code).To(Equal(http.StatusUnauthorized))
	code, _ = httpFrom(g, "127.0.0.2", http.MethodPost, url, credential, good)
	g.Expect(code).To(Equal(http.StatusForbidden), "another address")
	code, _ = httpFrom(g, "127.0.0.1", http.MethodPost, url, credential, discoveryReport(w.em.Systems()[1].UUID, mac))
	g.Expect(code).To(Equal(http.StatusForbidden), "a report about another system")
	code, _ = httpFrom(g, "127.0.0.1", http.MethodPost, w.bootURL+report.WipePath, credential, wipeReport(s.Spec.SystemUUID, metalv1alpha1.WipePolicyQuick, ""))
	g.Expect(code).To(Equal(http.StatusForbidden), "a wipe report for a discovery boot")
	g.Expect(getServer(g, s).Status.State).To(Equal(metalv1alpha1.ServerStateDiscovery), "refused reports change nothing")

	code, _ = httpFrom(g, "127.0.0.1", http.MethodPost, url, credential, good)
	g.Expect(code).To(Equal(http.StatusCreated))
	code, _ = httpFrom(g, "127.0.0.1", http.MethodPost, url, credential, good)
	g.Expect(code).To(Equal(http.StatusNotFound), "the credential is spent")

	g.Eventually(func(g Gomega) {
		cur := getServer(g, s)
		g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
		g.Expect(cur.Spec.BootConfigurationRef).To(BeNil())
		g.Expect(cur.Labels).To(HaveKeyWithValue("example.com/gpus", "1"))
		c := meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.ServerDiscovered)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal(metalv1alpha1.ReasonReportAccepted))
		var nic *metalv1alpha1.NetworkInterface
		for i := range cur.Status.NetworkInterfaces {
			if index.NormalizeMAC(cur.Status.NetworkInterfaces[i].MACAddress) == index.NormalizeMAC(mac) {
				nic = &cur.Status.NetworkInterfaces[i]
			}
		}
		g.Expect(nic).NotTo(BeNil())
		g.Expect(nic.IPs).To(Equal([]string{"192.0.2.17"}))
		g.Expect(nic.Neighbors).To(ConsistOf(metalv1alpha1.LLDPNeighbor{MACAddress: "00:00:5e:00:53:01", PortID: "Ethernet7", SystemName: "leaf-7"}))
		g.Expect(cur.Status.Storages).To(ContainElement(HaveField("Name", inventory.StorageName)))
	}).Should(Succeed())
	// The agent's report is recorded with its digest (a Redfish-only discovery has no event).
	e := expectEvent(t, s, corev1.EventTypeNormal, "Discovered")
	g.Expect(e.Note).To(MatchRegexp(`\(report sha256:[0-9a-f]{64}\)`))
	expectAgentBootGone(t, w.ns, s)
}

// expectAgentBootGone waits until the agent boot objects of s are deleted.
func expectAgentBootGone(t *testing.T, ns string, s *metalv1alpha1.Server) {
	t.Helper()
	for name, o := range map[string]client.Object{
		s.Name: &metalv1alpha1.ServerBootConfiguration{}, s.Name + "-agent": &corev1.Secret{}, boot.ReportName(s.Name): &corev1.ConfigMap{},
	} {
		NewWithT(t).Eventually(func() bool {
			return apierrors.IsNotFound(env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, o))
		}).Should(BeTrue(), "%T %s is removed", o, name)
	}
}

// TestDiscoveryNeverWaitsForever: a boot configuration that never becomes Ready ends the
// attempt with a reasoned condition and a Warning, and a new attempt starts with a fresh
// configuration.
func TestDiscoveryNeverWaitsForever(t *testing.T) {
	g := NewWithT(t)
	w := newAgentWorld(t, 1, func(o *ServerOptions) {
		o.DiscoveryBoot = true
		o.AgentBootTimeout = time.Second
	})
	s := newServer(t, w.em, w.secret, 0)
	first := w.agentConfiguration(g, s)
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getServer(g, s).Status.Conditions, metalv1alpha1.ServerDiscovered)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(metalv1alpha1.ReasonBootConfigurationNotReady))
		g.Expect(c.Message).To(ContainSubstring("did not become Ready within 1s"))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	expectEvent(t, s, corev1.EventTypeWarning, metalv1alpha1.ReasonBootConfigurationNotReady)
	g.Eventually(func(g Gomega) {
		next := w.agentConfiguration(g, s)
		g.Expect(next.UID).NotTo(Equal(first.UID), "a new attempt, a new configuration")
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(getServer(g, s).Status.State).To(Equal(metalv1alpha1.ServerStateDiscovery))
}

// TestDiscoveryWithTheRealAgent: nothing played by the test but the machine's firmware. The
// real boot configuration controller resolves the agent image from a registry and validates
// the agent's ignition; the machine (internal/testing/machine) fetches its iPXE script, kernel,
// initrd and ignition from the real boot server and runs the real agent in-process on a
// fixture tree with its own NIC, disks and an LLDP neighbour; the server is Available with
// the neighbour the agent decoded from the frame.
func TestDiscoveryWithTheRealAgent(t *testing.T) {
	g := NewWithT(t)
	reg := imagetest.NewRegistry(t)
	reg.Push(t, "metal/agent:1", imagetest.BootLayers()...)
	w := newAgentWorldWith(t, 1, reg, func(o *ServerOptions) { o.DiscoveryBoot = true })
	s := newServer(t, w.em, w.secret, 0)
	var mac string
	g.Eventually(func(g Gomega) {
		nics := getServer(g, s).Status.NetworkInterfaces
		g.Expect(nics).NotTo(BeEmpty())
		mac = nics[0].MACAddress
	}).Should(Succeed())
	m := fixture.Sample(s.Spec.SystemUUID, mac, 3)
	root := t.TempDir()
	g.Expect(fixture.Write(root, m)).To(Succeed())

	g.Eventually(func() error {
		return machine.Boot(t.Context(), machine.Options{BootURL: w.bootURL, SystemUUID: s.Spec.SystemUUID, SourceIP: "127.0.0.1", Root: root})
	}).WithTimeout(30 * time.Second).Should(Succeed())

	want := m.Discovery()
	g.Eventually(func(g Gomega) {
		cur := getServer(g, s)
		g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		var nic *metalv1alpha1.NetworkInterface
		for i := range cur.Status.NetworkInterfaces {
			if index.NormalizeMAC(cur.Status.NetworkInterfaces[i].MACAddress) == index.NormalizeMAC(mac) {
				nic = &cur.Status.NetworkInterfaces[i]
			}
		}
		g.Expect(nic).NotTo(BeNil())
		g.Expect(nic.Neighbors).NotTo(BeEmpty())
		g.Expect(nic.Neighbors[0].SystemName).To(Equal(want.NICs[0].Neighbors[0].SystemName))
		g.Expect(nic.Neighbors[0].PortID).To(Equal(want.NICs[0].Neighbors[0].PortID))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	expectAgentBootGone(t, w.ns, s)
}
