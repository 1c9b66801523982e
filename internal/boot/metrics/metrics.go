// Package metrics holds the Prometheus metrics of the boot service. They are registered on
// controller-runtime's registry, so the manager's metrics endpoint exports them.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results of a boot script or ignition request.
const (
	// ResultServed: the response was served.
	ResultServed = "served"
	// ResultNotFound: no such server, boot configuration or artifact.
	ResultNotFound = "not_found"
	// ResultNotReady: the server's boot configuration is not Ready.
	ResultNotReady = "not_ready"
	// ResultDenied: the ignition token was not valid.
	ResultDenied = "denied"
	// ResultInvalid: the ignition Secret is missing, lacks the key, or holds an invalid config.
	ResultInvalid = "invalid"
	// ResultError: an internal error (API server, registry).
	ResultError = "error"
)

var (
	// BootScriptsServed counts iPXE scripts and UEFI HTTP boot responses by result.
	BootScriptsServed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metal_boot_scripts_served_total",
		Help: "Boot scripts (iPXE and UEFI HTTP boot) requested, by result.",
	}, []string{"result"})

	// IgnitionServed counts ignition requests by result.
	IgnitionServed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metal_boot_ignition_served_total",
		Help: "Ignition configs requested, by result.",
	}, []string{"result"})

	// ImageResolutionErrors counts failed OS image resolutions by reason (the condition reason).
	ImageResolutionErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metal_boot_image_resolution_errors_total",
		Help: "OS image resolutions that failed, by reason.",
	}, []string{"reason"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(BootScriptsServed, IgnitionServed, ImageResolutionErrors)
}
