package controller

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

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
	metrics.Registry.MustRegister(claimBindSeconds, claimReadySeconds)
}

func observeBound(claim *metalv1alpha1.ServerClaim) {
	claimBindSeconds.Observe(time.Since(claim.CreationTimestamp.Time).Seconds())
}

func observeReady(claim *metalv1alpha1.ServerClaim) {
	claimReadySeconds.Observe(time.Since(claim.CreationTimestamp.Time).Seconds())
}

// claimCollector counts claims by phase from the cache at scrape time: O(claims) per scrape,
// nothing per event.
type claimCollector struct {
	reader client.Reader
	desc   *prometheus.Desc
}

// RegisterClaimMetrics registers the claims-by-phase gauge, read from reader (the cache).
func RegisterClaimMetrics(reader client.Reader) {
	metrics.Registry.MustRegister(&claimCollector{
		reader: reader,
		desc:   prometheus.NewDesc("metal_serverclaims", "Number of ServerClaims by phase.", []string{"phase"}, nil),
	})
}

func (c *claimCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *claimCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list := &metalv1alpha1.ServerClaimList{}
	if err := c.reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
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
