package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// kubeconfig writes a kubeconfig for the test API server whose current context is broken
// (it points at a port nobody listens on) and whose context "test" works, with namespace ns:
// the commands must honour --context.
func kubeconfig(t *testing.T, cfg *rest.Config, ns string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin", Namespace: ns}
	kc.Contexts["broken"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: "admin"}
	kc.CurrentContext = "broken"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// cli runs kubectl-metal commands against the test API server.
type cli struct {
	t          *testing.T
	kubeconfig string
}

func newCLI(t *testing.T, ns string) *cli {
	return &cli{t: t, kubeconfig: kubeconfig(t, env.Config, ns)}
}

// run runs one command with stdin and returns its output and error output.
func (c *cli) run(stdin string, args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewCommand(Streams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{"--kubeconfig", c.kubeconfig, "--context", "test"}, args...))
	err = cmd.ExecuteContext(c.t.Context())
	return out.String(), errOut.String(), err
}

// ok runs a command that must succeed and returns its output.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run("", args...)
	if err != nil {
		c.t.Fatalf("kubectl metal %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// server creates a server (left alone by any controller: none runs here) with the given
// status, and deletes it when the test ends.
func server(t *testing.T, name string, lbls map[string]string, state metalv1alpha1.ServerState, power metalv1alpha1.ServerPowerState, mutate ...func(*metalv1alpha1.Server)) *metalv1alpha1.Server {
	t.Helper()
	s := &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec:       metalv1alpha1.ServerSpec{SystemUUID: "00000000-0000-0000-0000-000000000000"},
	}
	for _, m := range mutate {
		m(s)
	}
	status := s.Status
	env.Create(t, s)
	g := NewWithT(t)
	g.Eventually(func() error {
		cur := &metalv1alpha1.Server{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(s), cur); err != nil {
			return err
		}
		base := cur.DeepCopy()
		cur.Status = status
		cur.Status.State, cur.Status.PowerState = state, power
		return env.Client.Status().Patch(context.Background(), cur, client.MergeFrom(base))
	}).Should(Succeed())
	return s
}

func get(t *testing.T, s *metalv1alpha1.Server) *metalv1alpha1.Server {
	t.Helper()
	cur := &metalv1alpha1.Server{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(s), cur); err != nil {
		t.Fatal(err)
	}
	return cur
}

// uniqueName is a name for cluster-scoped objects that no other test of the package uses.
func uniqueName(t *testing.T, suffix string) string {
	return strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + suffix
}
