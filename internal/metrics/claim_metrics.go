package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

var (
	claimBindSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "metal_serverclaim_bind_duration_seconds",
		Help:    "Time from a ServerClaim's creation to its first Bound status.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 16),
	})
	claimReadySeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "metal_serverclaim_ready_duration_seconds",
		Help:    "Time from a ServerClaim's creation to its Ready condition turning True.",
		Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(claimBindSeconds, claimReadySeconds)
}

// ObserveBound records a claim's time from creation to its first Bound status.
func ObserveBound(claim *metalv1alpha1.ServerClaim) {
	claimBindSeconds.Observe(time.Since(claim.CreationTimestamp.Time).Seconds())
}

// ObserveReady records a claim's time from creation to Ready.
func ObserveReady(claim *metalv1alpha1.ServerClaim) {
	claimReadySeconds.Observe(time.Since(claim.CreationTimestamp.Time).Seconds())
}

// claimCollector counts claims by phase from the cache at scrape time: O(claims) per scrape,
// nothing per event.
type claimCollector struct {
	readerSlot
	desc *prometheus.Desc
}

var (
	claims = &claimCollector{
		desc: prometheus.NewDesc("metal_serverclaims", "Number of ServerClaims by phase.", []string{"phase"}, nil),
	}
	registerClaimsOnce sync.Once
)

// RegisterClaimMetrics registers the claims-by-phase gauge (once per process) and makes it
// list claims through reader (the cache). A later call only replaces the reader, so a
// process that builds more than one manager (tests) reports the newest one's claims.
func RegisterClaimMetrics(reader client.Reader) {
	registerClaimsOnce.Do(func() { ctrlmetrics.Registry.MustRegister(claims) })
	claims.set(reader)
}

func (c *claimCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *claimCollector) Collect(ch chan<- prometheus.Metric) {
	list := &metalv1alpha1.ServerClaimList{}
	if err := c.list(list); err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	counts := map[metalv1alpha1.Phase]int{metalv1alpha1.PhaseBound: 0, metalv1alpha1.PhaseUnbound: 0}
	for i := range list.Items {
		phase := list.Items[i].Status.Phase
		if phase == "" {
			phase = metalv1alpha1.PhaseUnbound
		}
		counts[phase]++
	}
	for phase, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(phase))
	}
}
