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
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// TestEmbeddedEnvironmentRunsTheSamples starts the environment as `make run` does, applies
// config/samples as written, and follows the seed's claims from applied to Bound, booted
// (the boot script and ignition served) and powered on, then released.
func TestEmbeddedEnvironmentRunsTheSamples(t *testing.T) {
	g := NewWithT(t)
	root, err := testenv.RootDir()
	g.Expect(err).NotTo(HaveOccurred())
	o := DefaultOptions()
	o.DataDir = t.TempDir()
	o.RootDir, o.AssetsDir = root, testenv.AssetsDir(root)
	o.Systems = 4
	o.RegistryAddr = "127.0.0.1:0"
	o.BootAddr = freeAddr(t)
	o.PowerDelay = 50 * time.Millisecond
	o.Log = io.Discard
	o.Operator.MetricsAddr, o.Operator.ProbeAddr = "0", "0"
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
		cancel()
		g.Expect(env.Wait()).To(Succeed())
		env.Stop()
	}()
	c, err := client.New(env.Config, client.Options{Scheme: testenv.NewScheme()})
	g.Expect(err).NotTo(HaveOccurred())

	for _, obj := range samples(t, root) {
		if obj.GetKind() == "BMC" {
			continue // enrolment is tested with the BMC controller; here the servers are registered
		}
		err := c.Create(ctx, obj)
		if apierrors.IsAlreadyExists(err) { // my-bmc-secret: the environment made it already
			continue
		}
		g.Expect(err).NotTo(HaveOccurred(), "%s %s", obj.GetKind(), obj.GetName())
	}

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

		// The server booted from the network once, with the script and ignition a real iPXE
		// client would follow.
		history := env.Emulator.BootHistory(server.Spec.SystemUUID)
		g.Expect(history).NotTo(BeEmpty())
		g.Expect(string(history[0].Target)).To(Equal("Pxe"))
		script := httpGet(g, fmt.Sprintf("http://%s/ipxe/%s", o.BootAddr, server.Spec.SystemUUID))
		g.Expect(script).To(HavePrefix("#!ipxe"))
		ignitionURL := regexp.MustCompile(`ignition\.config\.url=(\S+)`).FindStringSubmatch(script)
		g.Expect(ignitionURL).To(HaveLen(2), script)
		g.Expect(httpGet(g, ignitionURL[1])).To(ContainSubstring(`"ignition"`))
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

	// Deleting the claims powers the servers off and returns them to Available.
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
