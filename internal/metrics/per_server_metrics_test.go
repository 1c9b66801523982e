package metrics

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// Each reconcile counts once, under the result its outcome and fetch say.
func TestCountServerReconcile(t *testing.T) {
	for _, tc := range []struct {
		fetched bool
		err     error
		result  string
	}{
		{true, nil, ReconcileSuccess},
		{false, nil, ReconcileSuccess},
		{false, errors.New("read"), ReconcileErrorFetch},
		{true, errors.New("bmc"), ReconcileError},
	} {
		g := NewWithT(t)
		before := map[string]float64{}
		for _, r := range []string{ReconcileSuccess, ReconcileErrorFetch, ReconcileError} {
			before[r] = counterValue(g, r)
		}
		CountServerReconcile(tc.fetched, tc.err)
		for r, v := range before {
			if r == tc.result {
				v++
			}
			g.Expect(counterValue(g, r)).To(Equal(v), r)
		}
	}
}

func counterValue(g Gomega, result string) float64 {
	m := &dto.Metric{}
	g.Expect(ServerReconciliations.WithLabelValues(result).Write(m)).To(Succeed())
	return m.GetCounter().GetValue()
}

// seriesCount returns how many series of the named family the registry gathers.
func seriesCount(g Gomega, reg *prometheus.Registry, name string) int {
	families, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	n := 0
	for _, f := range families {
		if f.GetName() == name {
			n += len(f.GetMetric())
		}
	}
	return n
}

// The per-server series: 0/1 per server and state and power state, 1 per condition, nothing
// without a reader; and they register beside the counting gauges without a clash.
func TestPerServerCollector(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	g.Expect(metalv1alpha1.AddToScheme(scheme)).To(Succeed())
	withCondition := server("b", metalv1alpha1.ServerStateError, "").(*metalv1alpha1.Server)
	withCondition.Status.Conditions = []metav1.Condition{{Type: "BMCReachable", Status: metav1.ConditionFalse, Reason: "Unreachable"}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		server("a", metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState), withCondition).Build()

	col := &perServerCollector{}
	reg := prometheus.NewRegistry()
	g.Expect(reg.Register(NewServerCollector(c))).To(Succeed())
	g.Expect(reg.Register(col)).To(Succeed())
	for _, name := range []string{"metal_server_state_by_server", "metal_server_power_state_by_server", "metal_server_condition_status"} {
		g.Expect(seriesCount(g, reg, name)).To(Equal(0), "off without a reader")
	}

	col.set(c)
	perState := len(ServerStates) + 1
	perPower := len(ServerPowerStates) + 1
	g.Expect(seriesCount(g, reg, "metal_server_state_by_server")).To(Equal(2 * perState))
	g.Expect(seriesCount(g, reg, "metal_server_power_state_by_server")).To(Equal(2 * perPower))
	g.Expect(seriesCount(g, reg, "metal_server_condition_status")).To(Equal(1))

	families, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	ones := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetName() == "metal_server_state" || f.GetName() == "metal_server_power_state" || m.GetGauge().GetValue() != 1 {
				continue
			}
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			ones[key] = true
		}
	}
	g.Expect(ones).To(Equal(map[string]bool{
		"metal_server_state_by_server,server=a,state=Available":                           true,
		"metal_server_state_by_server,server=b,state=Error":                               true,
		"metal_server_power_state_by_server,power_state=Off,server=a":                     true,
		"metal_server_power_state_by_server,power_state=Unknown,server=b":                 true,
		"metal_server_condition_status,condition_type=BMCReachable,server=b,status=False": true,
	}))
}
