package v1alpha1_test

import (
	"context"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// warnings collects the warnings the API server sends.
type warnings struct {
	mu   sync.Mutex
	seen []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, text)
}

func (w *warnings) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.seen...)
}

// An older BMCUser manifest applies unchanged: the deprecation warning is sent, a field this
// API does not know is dropped (with a warning, not an error), and every field the reference
// defines is kept as written.
func TestBMCUserOlderManifestApplies(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	seen := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandlerWithContext = seen
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	g.Expect(err).NotTo(HaveOccurred())

	obj := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(`
apiVersion: metal.ironcore.dev/v1alpha1
kind: BMCUser
metadata:
  generateName: older-manifest-
spec:
  userName: operator
  roleID: ReadOnly
  description: read-only account for monitoring
  rotationPeriod: 720h
  bmcSecretRef:
    name: operator-secret
  bmcRef:
    name: my-bmc
  legacyField: dropped
`), &obj.Object)).To(Succeed())
	want, _, _ := unstructured.NestedMap(obj.Object, "spec")
	delete(want, "legacyField")

	g.Expect(c.Create(ctx, obj)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
	g.Expect(seen.list()).To(ContainElements(
		"metal.ironcore.dev/v1alpha1 BMCUser is deprecated",
		ContainSubstring(`unknown field "spec.legacyField"`),
	))

	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(obj.GroupVersionKind())
	g.Expect(env.Client.Get(ctx, keyOf(obj), got)).To(Succeed())
	spec, _, _ := unstructured.NestedMap(got.Object, "spec")
	g.Expect(spec).To(Equal(want))
}
