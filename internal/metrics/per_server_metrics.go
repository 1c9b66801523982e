package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// Results of metal_server_reconciliation_total, the reference's names.
const (
	ReconcileSuccess    = "success"
	ReconcileErrorFetch = "error_fetch"
	ReconcileError      = "error_reconcile"
)

// ServerReconciliations counts Server reconciles by result: success, error_fetch (reading
// the server failed) or error_reconcile (any later step failed). The reference operator's
// name; controller_runtime_reconcile_total{controller="server"} counts the same reconciles.
var ServerReconciliations = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "metal_server_reconciliation_total",
	Help: "Server reconciles by result (success, error_fetch, error_reconcile).",
}, []string{"result"})

// CountServerReconcile records one Server reconcile: fetched tells whether the server was
// read, err is what the reconcile returned.
func CountServerReconcile(fetched bool, err error) {
	result := ReconcileSuccess
	switch {
	case err != nil && !fetched:
		result = ReconcileErrorFetch
	case err != nil:
		result = ReconcileError
	}
	ServerReconciliations.WithLabelValues(result).Inc()
}

// The per-server series: one series per server and state (0/1), per server and power state
// (0/1), and per server and condition (1). servers x states series, so only with
// --metrics-per-server. The state and power series do not reuse metal_server_state and
// metal_server_power_state: those count servers by state, and one name has one label set.
var (
	serverStateDesc = prometheus.NewDesc("metal_server_state_by_server",
		"1 for the state each server is in, 0 for the others (--metrics-per-server).", []string{"server", "state"}, nil)
	serverPowerDesc = prometheus.NewDesc("metal_server_power_state_by_server",
		"1 for the power state each server's BMC last reported, 0 for the others (--metrics-per-server).", []string{"server", "power_state"}, nil)
	serverConditionDesc = prometheus.NewDesc("metal_server_condition_status",
		"1 for each condition of each server, by type and status (--metrics-per-server).", []string{"server", "condition_type", "status"}, nil)
)

// perServerCollector computes the per-server series from the cache at scrape time, and
// nothing while its reader is nil (the flag off).
type perServerCollector struct {
	readerSlot
}

var (
	perServer             = &perServerCollector{}
	registerPerServerOnce sync.Once
)

// RegisterPerServerMetrics registers the per-server collector (once per process) and makes it
// list servers through reader; a nil reader turns the series off. A later call replaces the
// reader, so a process that builds more than one manager reports the newest one's setting.
func RegisterPerServerMetrics(reader client.Reader) {
	registerPerServerOnce.Do(func() { ctrlmetrics.Registry.MustRegister(perServer) })
	perServer.set(reader)
}

// Describe implements prometheus.Collector.
func (c *perServerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- serverStateDesc
	ch <- serverPowerDesc
	ch <- serverConditionDesc
}

// Collect implements prometheus.Collector. Without a reader (the flag off) it reports
// nothing; a failed List shows in
// metal_server_metrics_scrape_error, which lists the same cache.
func (c *perServerCollector) Collect(ch chan<- prometheus.Metric) {
	var list metalv1alpha1.ServerList
	if err := c.list(&list); err != nil {
		return
	}
	for i := range list.Items {
		s := &list.Items[i]
		state := labelOr(string(s.Status.State), stateKnown)
		for _, st := range ServerStates {
			ch <- prometheus.MustNewConstMetric(serverStateDesc, prometheus.GaugeValue, oneIf(state == string(st)), s.Name, string(st))
		}
		ch <- prometheus.MustNewConstMetric(serverStateDesc, prometheus.GaugeValue, oneIf(state == UnknownLabel), s.Name, UnknownLabel)
		power := labelOr(string(s.Status.PowerState), powerKnown)
		for _, p := range ServerPowerStates {
			ch <- prometheus.MustNewConstMetric(serverPowerDesc, prometheus.GaugeValue, oneIf(power == string(p)), s.Name, string(p))
		}
		ch <- prometheus.MustNewConstMetric(serverPowerDesc, prometheus.GaugeValue, oneIf(power == UnknownLabel), s.Name, UnknownLabel)
		for _, cond := range s.Status.Conditions {
			ch <- prometheus.MustNewConstMetric(serverConditionDesc, prometheus.GaugeValue, 1, s.Name, cond.Type, string(cond.Status))
		}
	}
}

func oneIf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
