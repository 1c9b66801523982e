package devenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testOptions are the environment's options for a test: its own data folder, free ports
// but the BMC's (config/samples expect 127.0.0.1:8000), no metrics or probe endpoints. It
// returns the repository root too.
func testOptions(t *testing.T, systems int) (Options, string) {
	t.Helper()
	root, err := testenv.RootDir()
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.DataDir = t.TempDir()
	o.RootDir, o.AssetsDir = root, testenv.AssetsDir(root)
	o.Systems = systems
	o.RegistryAddr, o.BootAddr = "127.0.0.1:0", freeAddr(t)
	o.Operator.MetricsAddr, o.Operator.ProbeAddr = "0", "0"
	return o, root
}

// samples reads every object of config/samples (the folder kubectl apply -f takes, not its
// subfolders).
func samples(t *testing.T, root string) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if strings.EqualFold(filepath.Base(f), "kustomization.yaml") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if err != io.EOF {
					t.Fatalf("%s: %v", f, err)
				}
				break
			}
			if len(u.Object) > 0 {
				objs = append(objs, u)
			}
		}
	}
	return objs
}

// TestQuickstart follows the README's quickstart as a new user would and checks what they
// see: the environment starts as `make run` starts it (see quickstartTerminal), config/samples
// is applied as written (applySamples: no kubectl warning), the seed's claims go from applied
// to Bound, booted (the boot script and ignition served) and powered on, the sample boot
// configuration for a missing server says so, the claims are released, and Ctrl-C (the
// context) stops the operator without an error. (One operator per process: its controller
// names must be unique, so the quickstart is one test.)
func TestQuickstart(t *testing.T) {
	g := NewWithT(t)
	o, root := testOptions(t, 4)
	o.PowerDelay = 50 * time.Millisecond
	terminal := quickstartTerminal(t, &o)
	o.Operator.Server.ResyncInterval = time.Second
	o.Operator.Server.TransitionPollInterval = 100 * time.Millisecond
	o.Operator.Server.PowerOffTimeout = 2 * time.Second
	o.Operator.Claim.UnboundRetryMin = 100 * time.Millisecond
	o.Operator.Claim.UnboundRetryMax = time.Second
	// The operator holds the published roles only: a verb they lack stalls the samples.
	o.ManagerRBAC = true

	ctx, cancel := context.WithCancel(context.Background())
	env, err := Start(ctx, o)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() {
		cancel() // Ctrl-C
		g.Expect(env.Wait()).To(Succeed())
		env.Stop()
	}()
	terminal.WriteString(env.Banner(o, filepath.Join(o.DataDir, LogFileName)))
	checkTerminal(g, terminal.String(), env, o)
	c, err := client.New(env.Config, client.Options{Scheme: testenv.NewScheme()})
	g.Expect(err).NotTo(HaveOccurred())

	applySamples(ctx, g, c, samples(t, root))
	checkSampleBootConfiguration(ctx, g, c)

	for _, name := range []string{"selector-server-claim", "my-server-claim"} {
		claim := &metalv1alpha1.ServerClaim{}
		var server *metalv1alpha1.Server
		g.Eventually(func(g Gomega) {
			g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, claim)).To(Succeed())
			g.Expect(claim.Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
			server = &metalv1alpha1.Server{}
			g.Expect(c.Get(ctx, client.ObjectKey{Name: claim.Spec.ServerRef.Name}, server)).To(Succeed())
			g.Expect(server.Status.State).To(Equal(metalv1alpha1.ServerStateReserved))
			g.Expect(server.Status.PowerState).To(Equal(metalv1alpha1.ServerOnPowerState))
		}, 90*time.Second, 100*time.Millisecond).Should(Succeed(), name)
		if name == "my-server-claim" {
			g.Expect(server.Name).To(Equal("my-server"))
		} else {
			g.Expect(server.Labels).To(HaveKeyWithValue("hardwareType", "gpu-node"))
			g.Expect(server.Labels).To(HaveKeyWithValue("location", "datacenter-1"))
		}

		// The server was discovered by the agent (neighbours from its fixture's LLDP frame),
		// then booted its claim from the network: the emulated machine followed the script,
		// fetched the ignition and reported its boot.
		history := env.Emulator.BootHistory(server.Spec.SystemUUID)
		g.Expect(history).NotTo(BeEmpty())
		g.Expect(string(history[len(history)-1].Target)).To(Equal("Pxe"))
		discovered := meta.FindStatusCondition(server.Status.Conditions, metalv1alpha1.ServerDiscovered)
		g.Expect(discovered.Reason).To(Equal(metalv1alpha1.ReasonReportAccepted))
		g.Expect(server.Status.NetworkInterfaces).To(ContainElement(HaveField("Neighbors", Not(BeEmpty()))))
		g.Eventually(func(g Gomega) {
			sbc := &metalv1alpha1.ServerBootConfiguration{}
			g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, sbc)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(sbc.Status.Conditions, metalv1alpha1.BootConfigurationBootStateReceived)).To(BeTrue())
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed(), name)
		script := httpGet(g, fmt.Sprintf("http://%s/ipxe/%s", o.BootAddr, server.Spec.SystemUUID))
		g.Expect(script).To(HavePrefix("#!ipxe"))
		g.Expect(script).NotTo(ContainSubstring("ignition.config.url"), "the boot is done: a local boot")
	}

	// The sample set's servers carry no rack label here: it waits, holding nothing, and says
	// so through the published role (finalizer, status).
	g.Eventually(func(g Gomega) {
		set := &fleetv1alpha1.ServerClaimSet{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "control-plane"}, set)).To(Succeed())
		g.Expect(set.Finalizers).To(ContainElement(fleetv1alpha1.ServerClaimSetFinalizer))
		cond := meta.FindStatusCondition(set.Status.Conditions, fleetv1alpha1.ServerClaimSetBound)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Reason).To(Equal(fleetv1alpha1.ReasonInsufficientCapacity))
		g.Expect(cond.Message).To(ContainSubstring("lack a topology label"))
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())

	// Deleting the claims powers the servers off, wipes them (the default Quick policy of the
	// environment) and returns them to Available with the record.
	for _, name := range []string{"selector-server-claim", "my-server-claim"} {
		claim := &metalv1alpha1.ServerClaim{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, claim)).To(Succeed())
		serverName := claim.Spec.ServerRef.Name
		g.Expect(c.Delete(ctx, claim)).To(Succeed())
		g.Eventually(func(g Gomega) {
			s := &metalv1alpha1.Server{}
			g.Expect(c.Get(ctx, client.ObjectKey{Name: serverName}, s)).To(Succeed())
			g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
			g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
			g.Expect(s.Spec.ServerClaimRef).To(BeNil())
			g.Expect(s.Status.LastWipe).NotTo(BeNil())
			g.Expect(s.Status.LastWipe.Result).To(Equal(metalv1alpha1.WipeResultSucceeded))
			g.Expect(s.Status.LastWipe.ClaimUID).To(Equal(string(claim.UID)))
			g.Expect(s.Status.LastWipe.Disks).NotTo(BeEmpty())
		}, 60*time.Second, 100*time.Millisecond).Should(Succeed(), name)
	}
}

func httpGet(g Gomega, url string) string {
	resp, err := http.Get(url) //nolint:noctx // test
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s: %s", url, body)
	return string(body)
}
