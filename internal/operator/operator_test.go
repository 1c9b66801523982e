package operator

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
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
// objects without their managedFields. (One manager per process: controller names must be
// unique.)
func TestNewAcceptsTheDefaults(t *testing.T) {
	g := NewWithT(t)
	o := DefaultOptions()
	o.MetricsAddr, o.ProbeAddr = "0", "0"
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
}
