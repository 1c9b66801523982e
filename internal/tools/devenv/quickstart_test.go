package devenv

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// quickstartTerminal sets the test up as cmd/devenv sets up `make run`: the progress lines
// to the terminal (the returned buffer), the logs of the control plane and the operator to
// the log file of the data folder.
func quickstartTerminal(t *testing.T, o *Options) *bytes.Buffer {
	t.Helper()
	terminal := &bytes.Buffer{}
	o.Log = terminal
	logFile, err := OpenLog(filepath.Join(o.DataDir, LogFileName))
	if err != nil {
		t.Fatal(err)
	}
	logf.SetLogger(zap.New(zap.UseFlagOptions(&zap.Options{Development: true, DestWriter: logFile})))
	t.Cleanup(func() {
		logf.SetLogger(logr.Discard())
		_ = logFile.Close()
	})
	return terminal
}

// checkTerminal checks what `make run` shows: its progress and the banner, no log lines;
// and that the control plane's lines went to the log file.
func checkTerminal(g Gomega, shown string, env *Env, o Options) {
	logPath := filepath.Join(o.DataDir, LogFileName)
	g.Expect(shown).NotTo(ContainSubstring("DEBUG"), shown)
	g.Expect(shown).NotTo(ContainSubstring("INFO"), shown)
	g.Expect(shown).To(HavePrefix("Starting the control plane (data in " + o.DataDir + ")\n"))
	g.Expect(shown).To(ContainSubstring("export KUBECONFIG=" + env.Kubeconfig + "\n"))
	g.Expect(shown).To(ContainSubstring("Logs of the control plane and the operator: " + logPath))
	g.Expect(shown).To(HaveSuffix("Press Ctrl-C to stop.\n"))
	g.Expect(strings.Count(shown, "\n")).To(BeNumerically("<", 20), "the terminal shows progress and the banner only")
	logged, err := os.ReadFile(logPath)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(logged)).To(ContainSubstring("DEBUG\tcontroller-runtime.test-env\tinstalling CRDs"),
		"the control plane's lines are in the log file")
}

// applySamples does what `kubectl apply -f config/samples/` does, and checks that kubectl
// would not warn: an object that exists already must carry the last-applied annotation
// apply reads (the environment made my-bmc-secret, from its sample file).
func applySamples(ctx context.Context, g Gomega, c client.Client, objs []*unstructured.Unstructured) {
	preexisting := 0
	for _, obj := range objs {
		if obj.GetKind() == "BMC" {
			continue // enrolment is tested with the BMC controller; here the servers are registered
		}
		cur := obj.DeepCopy()
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), cur)
		if apierrors.IsNotFound(err) {
			g.Expect(c.Create(ctx, obj)).To(Succeed(), "%s %s", obj.GetKind(), obj.GetName())
			continue
		}
		g.Expect(err).NotTo(HaveOccurred())
		preexisting++
		g.Expect(cur.GetAnnotations()).To(HaveKey(LastAppliedAnnotation),
			"kubectl apply warns that %s %s lacks the last-applied annotation", obj.GetKind(), obj.GetName())
		g.Expect(cur.GetAnnotations()[LastAppliedAnnotation]).To(MatchJSON(toJSON(g, obj.Object)),
			"%s %s was made from its sample file", obj.GetKind(), obj.GetName())
	}
	g.Expect(preexisting).To(Equal(1), "the environment makes my-bmc-secret, and only it, before the samples are applied")
}

// checkSampleBootConfiguration: `kubectl get sbc` shows the sample configuration, which
// names a server that does not exist, Pending and not Ready, with a condition saying why.
func checkSampleBootConfiguration(ctx context.Context, g Gomega, c client.Client) {
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	g.Eventually(func(g Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "my-boot-configuration"}, sbc)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(sbc.Status.Conditions, metalv1alpha1.BootConfigurationImageResolved)).To(BeTrue())
		cond := meta.FindStatusCondition(sbc.Status.Conditions, metalv1alpha1.BootConfigurationServerFound)
		g.Expect(cond).NotTo(BeNil())
		g.Expect([]string{string(cond.Status), cond.Reason, cond.Message}).To(Equal([]string{
			string(metav1.ConditionFalse), metalv1alpha1.ReasonServerNotFound, "Server my-spare-server does not exist"}))
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	g.Expect(sbc.Status.State).To(Equal(metalv1alpha1.ServerBootConfigurationStatePending))
}

func toJSON(g Gomega, v any) string {
	data, err := json.Marshal(v)
	g.Expect(err).NotTo(HaveOccurred())
	return string(data)
}
