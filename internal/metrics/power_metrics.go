package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	powerOnQueueLength = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "metal_power_on_queue_length",
		Help: "Servers waiting for their turn to power on in their power domain (all domains together).",
	})
	powerOnWaitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "metal_power_on_wait_seconds",
		Help:    "Time a power-on waited for its turn in its power domain, for those that waited.",
		Buckets: prometheus.ExponentialBuckets(0.1, 2, 14),
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(powerOnQueueLength, powerOnWaitSeconds)
}

// SetPowerOnQueueLength reports how many servers wait for a power-on slot.
func SetPowerOnQueueLength(n int) { powerOnQueueLength.Set(float64(n)) }

// ObservePowerOnWait records how long a power-on waited before it was admitted.
func ObservePowerOnWait(d time.Duration) { powerOnWaitSeconds.Observe(d.Seconds()) }
