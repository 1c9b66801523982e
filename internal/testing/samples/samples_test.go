package samples

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/boot/ignition"
	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// samplesUUIDSeed is the UUID seed of the Redfish emulator that serves the sample Server
// my-server in the embedded environment (see config/samples/metal_v1alpha1_server.yaml).
const samplesUUIDSeed = "metal-operator-samples"

// sample is one object of a sample file.
type sample struct {
	file string
	obj  *unstructured.Unstructured
}

func (s sample) String() string {
	return fmt.Sprintf("%s %s (%s)", s.obj.GetKind(), s.obj.GetName(), s.file)
}

// sampleDirs are the folders of samples: config/samples, which the quickstart applies with
// `kubectl apply -f config/samples/`, and the BMC enrollment sample beside it.
var sampleDirs = []string{"config/samples", "config/samples/enrollment"}

// sampleFiles lists the files `kubectl apply -f <dir>/` applies: the .yaml, .yml and .json
// files directly in the folder, in lexical order. The folders' kustomizations are named
// Kustomization, without an extension, so that kubectl does not read them.
func sampleFiles(t testing.TB, dir string) []string {
	t.Helper()
	dir = filepath.Join(env.RootDir, filepath.FromSlash(dir))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	var files []string
	for _, e := range entries {
		switch {
		case e.IsDir():
		case slices.Contains([]string{".yaml", ".yml", ".json"}, filepath.Ext(e.Name())):
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		t.Fatalf("no sample files in %s", dir)
	}
	return files
}

// loadSamples decodes every object of every sample file of dirs (default: all of sampleDirs).
func loadSamples(t testing.TB, dirs ...string) []sample {
	t.Helper()
	if len(dirs) == 0 {
		dirs = sampleDirs
	}
	var files []string
	for _, dir := range dirs {
		files = append(files, sampleFiles(t, dir)...)
	}
	var out []sample
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("reading %s: %v", path, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
				t.Fatalf("decoding %s: %v", path, err)
			}
			if len(obj.Object) == 0 {
				continue // a document of comments only
			}
			out = append(out, sample{file: filepath.Base(path), obj: obj})
		}
	}
	return out
}

// find returns the sample of the given kind and name.
func find(t testing.TB, samples []sample, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, s := range samples {
		if s.obj.GetKind() == kind && s.obj.GetName() == name {
			return s.obj
		}
	}
	t.Fatalf("no %s %s in config/samples", kind, name)
	return nil
}

// TestSamplesApply applies every sample with server-side apply (strict field validation, as
// kubectl does) against a real API server with the CRDs, the namespaced ones into a fresh
// namespace, then applies them again, and checks that the API server kept every field.
func TestSamplesApply(t *testing.T) { applySamples(t, loadSamples(t)) }

// referenceDir holds manifests as they are written for the reference system, of the kinds
// whose samples config/samples does not cover as the reference writes them.
const referenceDir = "internal/testing/samples/testdata/reference"

// TestReferenceManifestsApply applies the reference's manifests as TestSamplesApply does the
// samples: unchanged, and every field kept.
func TestReferenceManifestsApply(t *testing.T) {
	samples := loadSamples(t, referenceDir)
	kinds := map[string]bool{}
	for _, s := range samples {
		kinds[s.obj.GetKind()] = true
	}
	NewWithT(t).Expect(kinds).To(HaveKey("BMCUser"))
	applySamples(t, samples)
}

// applySamples applies the samples twice and checks that the API server kept their spec and
// data.
func applySamples(t *testing.T, samples []sample) {
	g := NewWithT(t)
	ctx := t.Context()
	ns := env.Namespace(t)

	for _, s := range samples {
		obj := s.obj.DeepCopy()
		namespaced, err := apiutilIsNamespaced(env.Client, obj)
		g.Expect(err).NotTo(HaveOccurred(), "%s: kind not served", s)
		if namespaced {
			g.Expect(obj.GetNamespace()).To(Equal("default"), "%s: the samples live in namespace default", s)
			obj.SetNamespace(ns)
		} else {
			g.Expect(obj.GetNamespace()).To(BeEmpty(), "%s: cluster-scoped, must not name a namespace", s)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = env.Client.Delete(ctx, obj.DeepCopy())
			})
		}
		for round := 1; round <= 2; round++ {
			err := env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()),
				client.FieldOwner("samples-test"), client.ForceOwnership)
			g.Expect(err).NotTo(HaveOccurred(), "%s: apply #%d", s, round)
		}

		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(obj.GroupVersionKind())
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(obj), got)).To(Succeed(), "%s", s)
		for _, field := range []string{"spec", "data"} {
			want, ok := obj.Object[field]
			if !ok {
				continue
			}
			if obj.GetKind() == "Secret" && field == "data" {
				continue // a core Secret's stringData is folded into data
			}
			g.Expect(subset(want, got.Object[field])).To(Succeed(), "%s: %s as stored", s, field)
		}
	}
}

// subset reports the first value of want that got lacks or holds differently; got may carry
// more (defaults).
func subset(want, got any) error {
	switch w := want.(type) {
	case map[string]any:
		m, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("want an object, got %v", got)
		}
		for k, v := range w {
			if err := subset(v, m[k]); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	case []any:
		l, ok := got.([]any)
		if !ok || len(l) != len(w) {
			return fmt.Errorf("want %v, got %v", want, got)
		}
		for i := range w {
			if err := subset(w[i], l[i]); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return nil
	}
	if fmt.Sprint(want) != fmt.Sprint(got) {
		return fmt.Errorf("want %v, got %v", want, got)
	}
	return nil
}

func apiutilIsNamespaced(c client.Client, obj *unstructured.Unstructured) (bool, error) {
	gvk := obj.GroupVersionKind()
	m, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return false, err
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// TestSamplesContent checks what the samples must hold for the seed's examples to work as
// written in the embedded environment.
func TestSamplesContent(t *testing.T) {
	samples := loadSamples(t)

	t.Run("seed claims verbatim", func(t *testing.T) {
		g := NewWithT(t)
		seed, err := os.ReadFile(filepath.Join(env.RootDir, "api", "v1alpha1", "testdata", "serverclaim-examples.yaml"))
		g.Expect(err).NotTo(HaveOccurred())
		got, err := os.ReadFile(filepath.Join(env.RootDir, "config", "samples", "metal_v1alpha1_serverclaim.yaml"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(got)).To(Equal(string(seed)))
	})

	t.Run("every reference resolves", func(t *testing.T) {
		g := NewWithT(t)
		for _, s := range samples {
			if s.obj.GetKind() != "ServerClaim" {
				continue
			}
			claim := &metalv1alpha1.ServerClaim{}
			g.Expect(fromUnstructured(s.obj, claim)).To(Succeed())
			g.Expect(claim.Spec.IgnitionSecretRef).NotTo(BeNil(), "%s", s)
			secret := find(t, samples, "Secret", claim.Spec.IgnitionSecretRef.Name)
			g.Expect(secret.GetNamespace()).To(Equal(claim.Namespace), "%s: the ignition Secret is in the claim's namespace", s)
			if claim.Spec.ServerRef != nil {
				find(t, samples, "Server", claim.Spec.ServerRef.Name)
			}
		}
		bmcObj := &metalv1alpha1.BMC{}
		g.Expect(fromUnstructured(find(t, samples, "BMC", "my-bmc"), bmcObj)).To(Succeed())
		find(t, samples, "BMCSecret", bmcObj.Spec.BMCSecretRef.Name)
		for _, s := range samples {
			if s.obj.GetKind() != "BMCUser" {
				continue
			}
			user := &metalv1alpha1.BMCUser{}
			g.Expect(fromUnstructured(s.obj, user)).To(Succeed())
			g.Expect(user.Spec.BMCRef).NotTo(BeNil(), "%s", s)
			find(t, samples, "BMC", user.Spec.BMCRef.Name)
		}
	})

	t.Run("ignition is valid", func(t *testing.T) {
		g := NewWithT(t)
		secret := find(t, samples, "Secret", "my-ignition-secret")
		data := map[string][]byte{}
		strData, _, _ := unstructured.NestedStringMap(secret.Object, "stringData")
		for k, v := range strData {
			data[k] = []byte(v)
		}
		out, err := ignition.Render(data)
		g.Expect(err).NotTo(HaveOccurred())
		var doc struct {
			Ignition struct {
				Version string `json:"version"`
			} `json:"ignition"`
		}
		g.Expect(json.Unmarshal(out, &doc)).To(Succeed())
		g.Expect(doc.Ignition.Version).To(HavePrefix("3."))
	})

	t.Run("my-server is the embedded environment's sample system", func(t *testing.T) {
		g := NewWithT(t)
		server := &metalv1alpha1.Server{}
		g.Expect(fromUnstructured(find(t, samples, "Server", "my-server"), server)).To(Succeed())
		emu := emulator.New(emulator.Options{Systems: 1, UUIDSeed: samplesUUIDSeed})
		g.Expect(server.Spec.SystemUUID).To(Equal(emu.Systems()[0].UUID))
		g.Expect(server.Spec.BMC).NotTo(BeNil())
		g.Expect(server.Spec.BMC.Protocol.Scheme).To(Equal(metalv1alpha1.HTTPScheme), "the emulator speaks plain HTTP")

		secret := &metalv1alpha1.BMCSecret{}
		g.Expect(fromUnstructured(find(t, samples, "BMCSecret", server.Spec.BMC.BMCSecretRef.Name), secret)).To(Succeed())
		user, pass, ok := secret.Credentials()
		g.Expect(ok).To(BeTrue())
		g.Expect(user).To(Equal(emulator.DefaultUsername))
		g.Expect(pass).To(Equal(emulator.DefaultPassword))
	})

	t.Run("the quickstart set enrolls no BMC", func(t *testing.T) {
		// Every system of the embedded environment's emulator is already a Server; a BMC
		// applied together with the claims would race them with an enrollment.
		g := NewWithT(t)
		for _, s := range loadSamples(t, sampleDirs[0]) {
			g.Expect(s.obj.GetKind()).NotTo(Equal("BMC"), "%s", s)
		}
	})

	t.Run("my-server does not match the selector claim", func(t *testing.T) {
		// Both claims are applied at once; if my-server matched the selector, the selector
		// claim could take it and leave my-server-claim Unbound.
		g := NewWithT(t)
		claim := &metalv1alpha1.ServerClaim{}
		g.Expect(fromUnstructured(find(t, samples, "ServerClaim", "selector-server-claim"), claim)).To(Succeed())
		sel, err := metav1LabelSelectorAsSelector(claim)
		g.Expect(err).NotTo(HaveOccurred())
		server := find(t, samples, "Server", "my-server")
		g.Expect(sel.Matches(labelsSet(server.GetLabels()))).To(BeFalse())
	})
}

// TestKustomizationListsEverySample keeps `kubectl apply -k <dir>` and `kubectl apply -f
// <dir>/` equivalent for every samples folder.
func TestKustomizationListsEverySample(t *testing.T) {
	for _, dir := range sampleDirs {
		t.Run(dir, func(t *testing.T) {
			g := NewWithT(t)
			data, err := os.ReadFile(filepath.Join(env.RootDir, filepath.FromSlash(dir), "Kustomization"))
			g.Expect(err).NotTo(HaveOccurred())
			var k struct {
				Resources []string `json:"resources"`
			}
			g.Expect(yaml.Unmarshal(data, &k)).To(Succeed())
			var files []string
			for _, f := range sampleFiles(t, dir) {
				files = append(files, filepath.Base(f))
			}
			g.Expect(k.Resources).To(ConsistOf(files))
		})
	}
}

// TestKubectlApply runs what the quickstart tells users to run, `kubectl apply -f
// config/samples/`, as a server-side dry run, when kubectl is installed.
func TestKubectlApply(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed")
	}
	g := NewWithT(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	g.Expect(writeKubeconfig(kubeconfig)).To(Succeed())

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "apply", "--dry-run=server",
		"-f", filepath.Join(env.RootDir, "config", "samples")+string(filepath.Separator))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply -f config/samples/: %v\n%s", err, out)
	}
	for _, s := range loadSamples(t, sampleDirs[0]) {
		g.Expect(strings.ToLower(string(out))).To(ContainSubstring(strings.ToLower(s.obj.GetName())), "%s", s)
	}
}

// writeKubeconfig writes a kubeconfig for the test API server's administrator.
func writeKubeconfig(path string) error {
	cfg := env.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
	}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	return clientcmd.WriteToFile(*kc, path)
}
