package events

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Bounds on what BMCs can make the metrics hold.
const (
	// maxLabelLen bounds a label value taken from a BMC; a longer one is cut.
	maxLabelLen = 64
	// maxAlertSeriesPerBMC bounds the distinct (message_id, component) pairs counted per
	// BMC; later ones are counted as "other".
	maxAlertSeriesPerBMC = 64
	// maxReadingsPerBMC and maxReadings bound the reading series per BMC and in all.
	maxReadingsPerBMC = 256
	maxReadings       = 20000
	// readingTTL is how long a reading is exported after it arrived.
	readingTTL = 10 * time.Minute
	// pruneInterval: stale readings are dropped at every scrape, and at most this often
	// when readings arrive.
	pruneInterval = time.Minute
	// otherLabel replaces a label value that is not acceptable or over a bound.
	otherLabel = "other"
)

// alertsTotal is the reference's alert counter.
var alertsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "redfish_event_alert_total",
	Help: "Redfish alerts received from BMCs, by BMC (hostname), severity, message id and component (last segment of the origin of condition).",
}, []string{"hostname", "severity", "message_id", "component"})

var registerOnce sync.Once

// RegisterMetrics registers the receiver's metrics on controller-runtime's registry, once.
func RegisterMetrics() {
	registerOnce.Do(func() {
		ctrlmetrics.Registry.MustRegister(alertsTotal, defaultReadings)
	})
}

// labelValue makes a BMC-provided string a label value: letters, digits and ._:- only
// (anything else gives "other"), at most maxLabelLen bytes, def when empty.
func labelValue(s, def string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return def
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == ':' || r == '-') {
			return otherLabel
		}
	}
	if len(s) > maxLabelLen {
		s = s[:maxLabelLen]
	}
	return s
}

// severityLabel maps a Redfish severity to OK, Warning or Critical ("other" for anything else).
func severityLabel(s string) string {
	for _, known := range []string{"OK", "Warning", "Critical"} {
		if strings.EqualFold(strings.TrimSpace(s), known) {
			return known
		}
	}
	return otherLabel
}

// alertSeries remembers the (message_id, component) pairs counted per BMC, to bound them.
type alertSeries struct {
	mu     sync.Mutex
	byHost map[string]map[[2]string]bool
}

var countedAlerts = &alertSeries{byHost: map[string]map[[2]string]bool{}}

// admit returns the message id and component to count: the given ones while the BMC has
// fewer than maxAlertSeriesPerBMC pairs (or already has this one), else "other" for both.
func (a *alertSeries) admit(host, messageID, component string) (string, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	pairs := a.byHost[host]
	if pairs == nil {
		pairs = map[[2]string]bool{}
		a.byHost[host] = pairs
	}
	key := [2]string{messageID, component}
	if pairs[key] {
		return messageID, component
	}
	if len(pairs) >= maxAlertSeriesPerBMC {
		return otherLabel, otherLabel
	}
	pairs[key] = true
	return messageID, component
}

// countAlert counts one alert of a BMC.
func countAlert(host, severity, messageID, component string) {
	messageID, component = countedAlerts.admit(host, messageID, component)
	alertsTotal.WithLabelValues(host, severity, messageID, component).Inc()
}

// readingKey is one reading series.
type readingKey struct {
	host, metricID, kind, unit, origin string
}

type reading struct {
	value float64
	at    time.Time
}

// readings is the collector of redfish_monitor_reading: the last value of each series,
// keyed with the BMC's name (the reference overwrites one BMC's reading with another's),
// dropped readingTTL after it arrived.
type readings struct {
	desc *prometheus.Desc
	now  func() time.Time

	mu        sync.Mutex
	series    map[readingKey]reading
	perHost   map[string]int
	lastPrune time.Time
}

func newReadings(now func() time.Time) *readings {
	return &readings{
		desc: prometheus.NewDesc("redfish_monitor_reading",
			"Last reading of a metric a BMC reported in a Redfish metric report, by BMC (hostname), metric id, type, unit and origin (MetricProperty); dropped 10 minutes after it arrived.",
			[]string{"hostname", "metric_id", "type", "unit", "origin_context"}, nil),
		now:     now,
		series:  map[readingKey]reading{},
		perHost: map[string]int{},
	}
}

var defaultReadings = newReadings(time.Now)

// set records a reading; a new series past the bounds is dropped. It reports whether the
// reading was kept.
func (r *readings) set(k readingKey, v float64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.lastPrune) > pruneInterval {
		r.pruneLocked(now)
	}
	if _, ok := r.series[k]; !ok {
		if r.perHost[k.host] >= maxReadingsPerBMC || len(r.series) >= maxReadings {
			return false
		}
		r.perHost[k.host]++
	}
	r.series[k] = reading{value: v, at: now}
	return true
}

// pruneLocked drops readings older than readingTTL. Callers hold mu.
func (r *readings) pruneLocked(now time.Time) {
	r.lastPrune = now
	for k, v := range r.series {
		if now.Sub(v.at) > readingTTL {
			delete(r.series, k)
			if r.perHost[k.host]--; r.perHost[k.host] <= 0 {
				delete(r.perHost, k.host)
			}
		}
	}
}

// Describe implements prometheus.Collector.
func (r *readings) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

// Collect implements prometheus.Collector.
func (r *readings) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(r.now())
	for k, v := range r.series {
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.GaugeValue, v.value, k.host, k.metricID, k.kind, k.unit, k.origin)
	}
}
