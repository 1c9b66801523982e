// Package metrics exports Prometheus metrics about Servers and their BMCs on
// controller-runtime's registry.
//
// State and power gauges count servers: metal_server_state{state="Available"} is the number
// of Available servers, and every state has a series (0 when no server is in it), so alerts
// such as "no Available servers" work with a plain comparison. They are computed at scrape
// time from the manager's cache, O(servers) per scrape and nothing per event.
// With --metrics-per-server, per_server_metrics.go adds one series per server and state,
// power state and condition under names that do not clash with these (the reference
// operator's per-server metal_server_state has other labels). Server reconciles are also
// counted under the reference's name, metal_server_reconciliation_total.
// Reconcile durations and counts come from controller-runtime itself. Every HTTP request to a
// BMC is timed by metal_bmc_request_duration_seconds (ObserveBMCRequest, wired into the
// Redfish client).
package metrics

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// UnknownLabel is the label value for servers whose state or power state is not set (yet).
const UnknownLabel = "Unknown"

// listTimeout bounds the List of one scrape.
const listTimeout = 5 * time.Second

// ServerStates are the states metal_server_state always reports, in order.
var ServerStates = []metalv1alpha1.ServerState{
	metalv1alpha1.ServerStateInitial,
	metalv1alpha1.ServerStateDiscovery,
	metalv1alpha1.ServerStateAvailable,
	metalv1alpha1.ServerStateReserved,
	metalv1alpha1.ServerStateReleased,
	metalv1alpha1.ServerStateError,
	metalv1alpha1.ServerStateParked,
	metalv1alpha1.ServerStateWiping,
}

// ServerPowerStates are the power states metal_server_power_state always reports, in order.
var ServerPowerStates = []metalv1alpha1.ServerPowerState{
	metalv1alpha1.ServerOnPowerState,
	metalv1alpha1.ServerOffPowerState,
	metalv1alpha1.ServerPausedPowerState,
	metalv1alpha1.ServerPoweringOnPowerState,
	metalv1alpha1.ServerPoweringOffPowerState,
}

// BMCErrors counts BMC failures seen by the server controller, by condition reason.
var BMCErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "metal_server_bmc_errors_total",
	Help: "BMC failures seen by the server controller, by reason (Unreachable, Unauthorized, TLSError, SystemNotFound, ...).",
}, []string{"reason"})

// Wipes counts finished wipes by result (Succeeded, Failed, Skipped).
var Wipes = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "metal_server_wipes_total",
	Help: "Wipes of servers between two claims, by result (Succeeded, Failed, Skipped).",
}, []string{"result"})

// WipeDuration is how long finished wipes took, from start to the last disk's report.
var WipeDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
	Name:    "metal_server_wipe_duration_seconds",
	Help:    "How long wipes took, from their start to the last disk's report.",
	Buckets: []float64{10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200},
})

// BMCResets counts the resets the BMC controller sent to BMCs (Redfish Manager.Reset), by
// why (UserRequested, AutoResetting) and outcome (sent, failed).
var BMCResets = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "metal_bmc_resets_total",
	Help: "Resets sent to BMCs (Redfish Manager.Reset), by reason (UserRequested, AutoResetting) and result (sent, failed).",
}, []string{"reason", "result"})

// NoResponseCode is the code label of a BMC request that got no HTTP response (connection
// refused, timeout, TLS failure).
const NoResponseCode = "error"

// BMCRequestDuration times the HTTP requests to BMCs, by method and status code. BMCs answer
// in tens of milliseconds to seconds, hence the buckets up to the request timeout's range.
var BMCRequestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "metal_bmc_request_duration_seconds",
	Help:    "Duration of HTTP requests to BMCs, by method and status code (code \"error\": no response).",
	Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
}, []string{"method", "code"})

// ObserveBMCRequest records one HTTP exchange with a BMC: method, status code (0 when no
// response arrived) and duration. It fits redfish.Config.Observer.
func ObserveBMCRequest(method string, code int, d time.Duration) {
	label := NoResponseCode
	if code > 0 {
		label = strconv.Itoa(code)
	}
	BMCRequestDuration.WithLabelValues(method, label).Observe(d.Seconds())
}

var (
	stateDesc = prometheus.NewDesc("metal_server_state",
		"Number of servers in each state.", []string{"state"}, nil)
	powerDesc = prometheus.NewDesc("metal_server_power_state",
		"Number of servers in each power state, as last reported by their BMC.", []string{"power_state"}, nil)
	scrapeErrorDesc = prometheus.NewDesc("metal_server_metrics_scrape_error",
		"1 if listing the servers for this scrape failed, else 0.", nil, nil)
)

// readerSlot holds the reader a scrape-time collector lists through: one collector per
// process, its reader replaced by each manager built (tests build several).
type readerSlot struct {
	mu     sync.RWMutex
	reader client.Reader
}

func (s *readerSlot) set(reader client.Reader) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reader = reader
}

// errNoReader: no manager has registered its cache yet.
var errNoReader = errors.New("no reader registered")

// list lists through the current reader, read-only (no deep copies), bounded by listTimeout.
func (s *readerSlot) list(list client.ObjectList) error {
	s.mu.RLock()
	reader := s.reader
	s.mu.RUnlock()
	if reader == nil {
		return errNoReader
	}
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	defer cancel()
	return reader.List(ctx, list, client.UnsafeDisableDeepCopy)
}

// ServerCollector computes the server gauges from a reader (the manager's cache) at scrape
// time.
type ServerCollector struct {
	readerSlot
}

// NewServerCollector returns a collector listing servers through reader.
func NewServerCollector(reader client.Reader) *ServerCollector {
	c := &ServerCollector{}
	c.set(reader)
	return c
}

// SetReader replaces the reader the collector lists servers with.
func (c *ServerCollector) SetReader(reader client.Reader) { c.set(reader) }

// Describe implements prometheus.Collector.
func (c *ServerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- stateDesc
	ch <- powerDesc
	ch <- scrapeErrorDesc
}

// Collect implements prometheus.Collector.
func (c *ServerCollector) Collect(ch chan<- prometheus.Metric) {
	var list metalv1alpha1.ServerList
	if err := c.list(&list); err != nil {
		ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, 0)

	states := map[string]int{}
	powers := map[string]int{}
	for i := range list.Items {
		s := &list.Items[i].Status
		states[labelOr(string(s.State), stateKnown)]++
		powers[labelOr(string(s.PowerState), powerKnown)]++
	}
	for _, st := range ServerStates {
		ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, float64(states[string(st)]), string(st))
	}
	ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, float64(states[UnknownLabel]), UnknownLabel)
	for _, p := range ServerPowerStates {
		ch <- prometheus.MustNewConstMetric(powerDesc, prometheus.GaugeValue, float64(powers[string(p)]), string(p))
	}
	ch <- prometheus.MustNewConstMetric(powerDesc, prometheus.GaugeValue, float64(powers[UnknownLabel]), UnknownLabel)
}

func stateKnown(v string) bool {
	for _, s := range ServerStates {
		if string(s) == v {
			return true
		}
	}
	return false
}

func powerKnown(v string) bool {
	for _, p := range ServerPowerStates {
		if string(p) == v {
			return true
		}
	}
	return false
}

func labelOr(v string, known func(string) bool) string {
	if known(v) {
		return v
	}
	return UnknownLabel
}

var (
	registerOnce    sync.Once
	registerBMCOnce sync.Once
	collector       = NewServerCollector(nil)
)

// RegisterBMCMetrics registers the BMC metrics (BMCErrors, BMCRequestDuration, BMCResets) on
// controller-runtime's registry, once per process.
func RegisterBMCMetrics() {
	registerBMCOnce.Do(func() {
		ctrlmetrics.Registry.MustRegister(BMCErrors, BMCRequestDuration, BMCResets)
	})
}

// RegisterServerMetrics registers the server and BMC metrics on controller-runtime's registry
// (once per process), metal_server_reconciliation_total with a 0 series for each result, and
// makes the state gauges list servers through reader. A later call
// only replaces the reader, so a process that builds more than one manager (tests) reports
// the newest one's servers.
func RegisterServerMetrics(reader client.Reader) {
	RegisterBMCMetrics()
	registerOnce.Do(func() {
		ctrlmetrics.Registry.MustRegister(collector, ServerReconciliations, Wipes, WipeDuration)
		for _, result := range []string{ReconcileSuccess, ReconcileErrorFetch, ReconcileError} {
			ServerReconciliations.WithLabelValues(result)
		}
		for _, result := range []metalv1alpha1.WipeResult{metalv1alpha1.WipeResultSucceeded, metalv1alpha1.WipeResultFailed, metalv1alpha1.WipeResultSkipped} {
			Wipes.WithLabelValues(string(result))
		}
	})
	collector.SetReader(reader)
}
