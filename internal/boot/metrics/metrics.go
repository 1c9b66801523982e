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
	// ResultLocalBoot: no boot was expected (or its credential was already issued), so the
	// script boots from local disk.
	ResultLocalBoot = "local_boot"
	// ResultRefused: a valid credential refused: from another address, or after the
	// ignition fetch limit.
	ResultRefused = "refused"
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

	// CredentialMisuse counts valid boot credentials presented from another address than
	// the pinned one, or after the ignition fetch limit, by reason (the condition reason).
	CredentialMisuse = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metal_boot_credential_misuse_total",
		Help: "Boot credentials refused as misused (wrong source address, ignition fetched again), by reason.",
	}, []string{"reason"})

	// MetadataServed counts metadata service requests by result.
	MetadataServed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metal_boot_metadata_requests_total",
		Help: "Metadata service requests, by result.",
	}, []string{"result"})

	// RequestsLimited counts requests refused (429) because their source address was over
	// its request rate.
	RequestsLimited = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "metal_boot_requests_limited_total",
		Help: "Boot server requests refused because their source address was over its request rate.",
	})

	// AgentReports counts reports of the in-band agent by kind (discovery, wipe) and result
	// (accepted, or why one was refused).
	AgentReports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metal_boot_agent_reports_total",
		Help: "Reports of the in-band agent (discovery, wipe), by kind and result.",
	}, []string{"kind", "result"})

	// ImageResolutionErrors counts failed OS image resolutions by reason (the condition reason).
	ImageResolutionErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metal_boot_image_resolution_errors_total",
		Help: "OS image resolutions that failed, by reason.",
	}, []string{"reason"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(BootScriptsServed, IgnitionServed, CredentialMisuse, MetadataServed, ImageResolutionErrors, RequestsLimited, AgentReports)
}
