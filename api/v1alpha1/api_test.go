package v1alpha1_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// readObjects decodes a multi-document YAML file into unstructured objects.
func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			break
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

// The seed's two ServerClaim examples apply unchanged (in their own namespace "default")
// and read back with the same spec.
func TestServerClaimExamplesApplyUnchanged(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	objs := readObjects(t, filepath.Join("testdata", "serverclaim-examples.yaml"))
	g.Expect(objs).To(HaveLen(2))
	for _, obj := range objs {
		want, _, _ := unstructured.NestedMap(obj.Object, "spec")
		g.Expect(env.Client.Create(ctx, obj)).To(Succeed(), obj.GetName())
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })

		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(obj.GroupVersionKind())
		g.Expect(env.Client.Get(ctx, keyOf(obj), got)).To(Succeed())
		spec, _, _ := unstructured.NestedMap(got.Object, "spec")
		g.Expect(spec).To(Equal(want), obj.GetName())
	}
}

// The printer columns users see with kubectl get are in the generated CRDs.
func TestPrinterColumns(t *testing.T) {
	cases := map[string][]string{
		"servers":                  {"SystemUUID", "Manufacturer", "Model", "Memory", "SKU", "SerialNumber", "PowerState", "IndicatorLED", "State", "Unclaimable", "Age"},
		"serverclaims":             {"Server", "Ignition", "Image", "Phase", "Age"},
		"serverbootconfigurations": {"ServerRef", "Image", "IgnitionRef", "State", "Age"},
		"bmcs":                     {"MACAddress", "IP", "Model", "SKU", "SerialNumber", "FirmwareVersion", "State", "PowerState", "Age"},
		"endpoints":                {"MACAddress", "IP", "Age"},
		// The reference has no columns for rules; these are this operator's.
		"serverreadinessrules": {"Mode", "Selected", "Tainted", "Age"},
		"bmcusers":             {"ID", "UserName", "RoleID", "LastRotation", "PasswordExpiration", "Age"},
	}
	shortNames := map[string][]string{
		"servers": {"srv"}, "serverclaims": {"scl"}, "serverbootconfigurations": {"sbc"}, "bmcsecrets": {"bmcsec"},
		"endpoints": {"mep"}, "bmcusers": {"bmcu"},
	}
	scopes := map[string]apiextensionsv1.ResourceScope{
		"servers": apiextensionsv1.ClusterScoped, "serverclaims": apiextensionsv1.NamespaceScoped,
		"serverbootconfigurations": apiextensionsv1.NamespaceScoped, "bmcsecrets": apiextensionsv1.ClusterScoped,
		"bmcs": apiextensionsv1.ClusterScoped, "endpoints": apiextensionsv1.ClusterScoped,
		"serverreadinessrules": apiextensionsv1.ClusterScoped,
		"bmcusers":             apiextensionsv1.ClusterScoped,
	}
	for plural, scope := range scopes {
		t.Run(plural, func(t *testing.T) {
			g := NewWithT(t)
			crd := readCRD(t, plural)
			g.Expect(crd.Spec.Scope).To(Equal(scope))
			g.Expect(crd.Spec.Names.ShortNames).To(Equal(shortNames[plural]))
			g.Expect(crd.Spec.Versions).To(HaveLen(1))
			v := crd.Spec.Versions[0]
			g.Expect(v.Name).To(Equal("v1alpha1"))
			g.Expect(v.Served && v.Storage).To(BeTrue())
			g.Expect(v.Subresources).NotTo(BeNil())
			g.Expect(v.Subresources.Status).NotTo(BeNil())
			var names []string
			for _, c := range v.AdditionalPrinterColumns {
				names = append(names, c.Name)
			}
			for _, want := range cases[plural] {
				g.Expect(names).To(ContainElement(want))
			}
			// Only Endpoint (BMC spec.access replaces it) and BMCUser are deprecated.
			g.Expect(v.Deprecated).To(Equal(plural == "endpoints" || plural == "bmcusers"))
			if plural == "bmcusers" {
				g.Expect(v.DeprecationWarning).To(HaveValue(Equal("metal.ironcore.dev/v1alpha1 BMCUser is deprecated")))
			}
		})
	}
}

func readCRD(t *testing.T, plural string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	path := filepath.Join(env.RootDir, "config", "crd", "bases", "metal.ironcore.dev_"+plural+".yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, crd); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(crd.Name, "metal.ironcore.dev") {
		t.Fatalf("unexpected CRD %s", crd.Name)
	}
	return crd
}
