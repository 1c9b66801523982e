package metrics

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

func server(name string, state metalv1alpha1.ServerState, power metalv1alpha1.ServerPowerState) client.Object {
	return &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status:     metalv1alpha1.ServerStatus{State: state, PowerState: power},
	}
}

// gather returns the value of every series of the named metric, by its one label's value.
func gather(g Gomega, reg *prometheus.Registry, name string) map[string]float64 {
	families, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			label := ""
			if len(m.GetLabel()) > 0 {
				label = m.GetLabel()[0].GetValue()
			}
			out[label] = m.GetGauge().GetValue()
		}
	}
	return out
}

// The gauges count servers per state, with a series for every state, Released and Parked
// included, and 0 for states no server is in.
func TestServerCollectorCountsServers(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	g.Expect(metalv1alpha1.AddToScheme(scheme)).To(Succeed())
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		server("a", metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState),
		server("b", metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState),
		server("c", metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerOnPowerState),
		server("d", metalv1alpha1.ServerStateReleased, metalv1alpha1.ServerOffPowerState),
		server("e", metalv1alpha1.ServerStateParked, metalv1alpha1.ServerPoweringOffPowerState),
		server("f", "", ""),
	).Build()
	reg := prometheus.NewRegistry()
	g.Expect(reg.Register(NewServerCollector(c))).To(Succeed())

	g.Expect(gather(g, reg, "metal_server_state")).To(Equal(map[string]float64{
		"Initial": 0, "Discovery": 0, "Available": 2, "Reserved": 1, "Released": 1, "Error": 0, "Parked": 1,
		"Wiping": 0, UnknownLabel: 1,
	}))
	g.Expect(gather(g, reg, "metal_server_power_state")).To(Equal(map[string]float64{
		"On": 1, "Off": 3, "Paused": 0, "PoweringOn": 0, "PoweringOff": 1, UnknownLabel: 1,
	}))
	g.Expect(gather(g, reg, "metal_server_metrics_scrape_error")).To(Equal(map[string]float64{"": 0}))
}

// Registering twice (a second manager in the same process) does not panic and switches the
// reader.
func TestRegisterServerMetricsTwice(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	g.Expect(metalv1alpha1.AddToScheme(scheme)).To(Succeed())
	first := fake.NewClientBuilder().WithScheme(scheme).Build()
	second := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		server("a", metalv1alpha1.ServerStateError, metalv1alpha1.ServerOffPowerState)).Build()
	g.Expect(func() {
		RegisterServerMetrics(first)
		RegisterServerMetrics(second)
	}).NotTo(Panic())
	reg := prometheus.NewRegistry()
	g.Expect(reg.Register(collector)).To(Succeed())
	g.Expect(gather(g, reg, "metal_server_state")).To(HaveKeyWithValue("Error", 1.0))
}

// histogramCount returns the number of samples of one BMC request series.
func histogramCount(g Gomega, method, code string) uint64 {
	m := &dto.Metric{}
	g.Expect(BMCRequestDuration.WithLabelValues(method, code).(prometheus.Histogram).Write(m)).To(Succeed())
	return m.GetHistogram().GetSampleCount()
}

// A BMC request is counted under its method and status code, or code "error" without a
// response, and the histogram is on controller-runtime's registry once registered.
func TestObserveBMCRequest(t *testing.T) {
	g := NewWithT(t)
	ok, failed := histogramCount(g, "GET", "200"), histogramCount(g, "GET", NoResponseCode)
	ObserveBMCRequest("GET", 200, 30*time.Millisecond)
	ObserveBMCRequest("GET", 0, 2*time.Second)
	ObserveBMCRequest("GET", 0, time.Second)
	g.Expect(histogramCount(g, "GET", "200")).To(Equal(ok + 1))
	g.Expect(histogramCount(g, "GET", NoResponseCode)).To(Equal(failed + 2))

	g.Expect(func() {
		RegisterBMCMetrics()
		RegisterBMCMetrics()
	}).NotTo(Panic())
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	var found *dto.MetricFamily
	for _, f := range families {
		if f.GetName() == "metal_bmc_request_duration_seconds" {
			found = f
		}
	}
	g.Expect(found).NotTo(BeNil())
	g.Expect(found.GetType()).To(Equal(dto.MetricType_HISTOGRAM))
}
