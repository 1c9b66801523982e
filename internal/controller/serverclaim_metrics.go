package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
