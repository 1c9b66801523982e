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
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

// TestQuickstartAsAUserSeesIt follows the README's quickstart and checks what a new user
// sees: `make run` shows its progress and the banner, with the control plane's and the
// operator's logs in a file of the data folder; `kubectl apply -f config/samples/` finds
// every object the environment made already as apply would have left it (no warning about
// a missing last-applied annotation); the sample boot configuration for a server that does
// not exist says so instead of showing Ready; Ctrl-C ends it cleanly.
func TestQuickstartAsAUserSeesIt(t *testing.T) {
	g := NewWithT(t)
	o, root := testOptions(t, 3)
	o.BMCAddr = freeAddr(t) // my-server is not the point here
	var terminal bytes.Buffer
	o.Log = &terminal

	// The logging of cmd/devenv: everything to the log file.
	logPath := filepath.Join(o.DataDir, LogFileName)
	logFile, err := OpenLog(logPath)
	g.Expect(err).NotTo(HaveOccurred())
	defer logFile.Close()
	logf.SetLogger(zap.New(zap.UseFlagOptions(&zap.Options{Development: true, DestWriter: logFile})))
	defer logf.SetLogger(logr.Discard())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, err := Start(ctx, o)
	g.Expect(err).NotTo(HaveOccurred())
	defer env.Stop()
	terminal.WriteString(env.Banner(o, logPath))

	shown := terminal.String()
	g.Expect(shown).NotTo(ContainSubstring("DEBUG"), shown)
	g.Expect(shown).NotTo(ContainSubstring("INFO"), shown)
	g.Expect(shown).To(HavePrefix("Starting the control plane (data in " + o.DataDir + ")\n"))
	g.Expect(shown).To(ContainSubstring("export KUBECONFIG=" + env.Kubeconfig + "\n"))
	g.Expect(shown).To(ContainSubstring("Logs of the control plane and the operator: " + logPath))
	g.Expect(shown).To(HaveSuffix("Press Ctrl-C to stop.\n"))
	g.Expect(strings.Count(shown, "\n")).To(BeNumerically("<", 20), "the terminal shows progress and the banner only")
	logged, err := os.ReadFile(logPath)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(logged)).To(ContainSubstring("DEBUG\tcontroller-runtime.test-env\tinstalling CRDs"), "the control plane's lines are in the log file")

	// kubectl apply -f config/samples/: what exists already must carry the annotation apply
	// reads, else kubectl warns; the rest is created.
	c, err := client.New(env.Config, client.Options{Scheme: testenv.NewScheme()})
	g.Expect(err).NotTo(HaveOccurred())
	preexisting := 0
	for _, obj := range samples(t, root) {
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

	// kubectl get sbc: the sample configuration names a server that does not exist.
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

	// Ctrl-C: the operator stops without an error.
	cancel()
	g.Expect(env.Wait()).To(Succeed())
}

func toJSON(g Gomega, v any) string {
	data, err := json.Marshal(v)
	g.Expect(err).NotTo(HaveOccurred())
	return string(data)
}
