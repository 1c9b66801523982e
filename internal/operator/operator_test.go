package operator

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// TestNewRejectsClientRateLimitsThatThrottleEverything: a zero QPS would fall back to
// client-go's 5 requests per second, and a positive QPS with no burst lets nothing through.
func TestNewRejectsClientRateLimitsThatThrottleEverything(t *testing.T) {
	for _, tc := range []struct {
		qps   float64
		burst int
	}{{0, 2000}, {100, 0}} {
		o := DefaultOptions()
		o.ClientQPS, o.ClientBurst = tc.qps, tc.burst
		_, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, o)
		NewWithT(t).Expect(err).To(MatchError(ContainSubstring("--kube-api-qps must be positive")))
	}
}

// TestNewRejectsUnboundedWork: the reconcile timeout and the BMC response bounds must be set.
func TestNewRejectsUnboundedWork(t *testing.T) {
	for name, unset := range map[string]func(*Options){
		"reconcile timeout":  func(o *Options) { o.ReconcileTimeout = 0 },
		"response bytes":     func(o *Options) { o.BMCMaxResponseBytes = 0 },
		"collection members": func(o *Options) { o.BMCMaxCollectionMembers = -1 },
	} {
		o := DefaultOptions()
		unset(&o)
		_, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, o)
		NewWithT(t).Expect(err).To(MatchError(ContainSubstring("must be positive")), name)
	}
}

// TestNewAcceptsTheDefaults: the flag defaults make a manager that runs, and its cache holds
// objects without their managedFields; its metrics endpoint (on a loopback port, with
// --metrics-per-server) shows every metric docs/metrics.md lists. (One manager per process:
// controller names must be unique.)
func TestNewAcceptsTheDefaults(t *testing.T) {
	g := NewWithT(t)
	o := DefaultOptions()
	o.MetricsAddr, o.ProbeAddr = freeLoopbackAddr(t), "0"
	o.MetricsPerServer = true
	o.Boot.Enabled = false
	mgr, err := New(env.Config, o)
	g.Expect(err).NotTo(HaveOccurred())
	// Every controller inherits the manager's reconcile timeout.
	g.Expect(o.ReconcileTimeout).To(BeNumerically(">", 0))
	g.Expect(mgr.GetControllerOptions().ReconciliationTimeout).To(Equal(o.ReconcileTimeout))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		g.Expect(<-done).To(Succeed())
	})

	s := env.IdleServer(t, map[string]string{"operator-test": "defaults"})
	live := &metalv1alpha1.Server{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(s), live)).To(Succeed())
	g.Expect(live.ManagedFields).NotTo(BeEmpty(), "the API server tracks them")
	g.Eventually(func(g Gomega) {
		cached := &metalv1alpha1.Server{}
		g.Expect(mgr.GetClient().Get(ctx, client.ObjectKeyFromObject(s), cached)).To(Succeed())
		g.Expect(cached.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		g.Expect(cached.ManagedFields).To(BeEmpty())
	}).Should(Succeed())

	// A condition, so that metal_server_condition_status has a series.
	g.Eventually(func() error {
		cur := &metalv1alpha1.Server{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(s), cur); err != nil {
			return err
		}
		base := cur.DeepCopy()
		meta.SetStatusCondition(&cur.Status.Conditions, metav1.Condition{
			Type: "MetricsTest", Status: metav1.ConditionTrue, Reason: "Testing"})
		return env.Client.Status().Patch(ctx, cur, client.MergeFrom(base))
	}).Should(Succeed())

	always, lazy := documentedMetrics(t)
	g.Expect(always).To(ContainElements("metal_server_state", "metal_server_reconciliation_total",
		"metal_server_condition_status", "controller_runtime_reconcile_total"), "the doc's tables are read")
	t.Logf("Metrics documented as appearing with their first event, not checked: %v", lazy)
	g.Eventually(func(g Gomega) {
		names, samples := scrapedMetrics(g, o.MetricsAddr)
		for _, name := range always {
			g.Expect(names).To(HaveKey(name), "documented in docs/metrics.md but not exported")
		}
		g.Expect(samples).To(ContainElement(And(
			HavePrefix("metal_server_condition_status{"), ContainSubstring(`server="`+s.Name+`"`),
			ContainSubstring(`condition_type="MetricsTest"`), ContainSubstring(`status="True"`), HaveSuffix(" 1"))))
		g.Expect(samples).To(ContainElement(And(
			HavePrefix("metal_server_state_by_server{"), ContainSubstring(`server="`+s.Name+`"`),
			ContainSubstring(`state="Available"`), HaveSuffix(" 1"))))
		g.Expect(samples).To(ContainElement(And(
			HavePrefix("metal_server_power_state_by_server{"), ContainSubstring(`server="`+s.Name+`"`),
			ContainSubstring(`power_state="On"`), HaveSuffix(" 0"))))
	}).WithTimeout(30 * time.Second).Should(Succeed())
}
