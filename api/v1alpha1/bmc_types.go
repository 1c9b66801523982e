package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BMCState is the state of a BMC.
// +kubebuilder:validation:Enum=Enabled;Error;Pending
type BMCState string

const (
	// BMCStateEnabled: the BMC answers with valid credentials and its systems are enrolled.
	BMCStateEnabled BMCState = "Enabled"
	// BMCStateError: the BMC cannot be used; a condition says why.
	BMCStateError BMCState = "Error"
	// BMCStatePending: the BMC has not been reached yet.
	BMCStatePending BMCState = "Pending"
)

// BMCPowerState is the power state of a BMC.
// +kubebuilder:validation:Enum=On;Off;Paused;PoweringOn;PoweringOff;Unknown
type BMCPowerState string

const (
	// BMCOnPowerState: on.
	BMCOnPowerState BMCPowerState = "On"
	// BMCOffPowerState: off.
	BMCOffPowerState BMCPowerState = "Off"
	// BMCPausedPowerState: paused.
	BMCPausedPowerState BMCPowerState = "Paused"
	// BMCPoweringOnPowerState: powering on.
	BMCPoweringOnPowerState BMCPowerState = "PoweringOn"
	// BMCPoweringOffPowerState: powering off.
	BMCPoweringOffPowerState BMCPowerState = "PoweringOff"
	// BMCUnknownPowerState: unknown.
	BMCUnknownPowerState BMCPowerState = "Unknown"
)

// InlineEndpoint is the network identity of a BMC.
type InlineEndpoint struct {
	// MACAddress of the BMC.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$`
	MACAddress string `json:"macAddress,omitempty"`

	// IP address of the BMC.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	IP string `json:"ip,omitempty"`
}

// ConsoleProtocolName is the protocol of a BMC's serial console.
// +kubebuilder:validation:Enum=IPMI;SSH;SSHLenovo
type ConsoleProtocolName string

// ConsoleProtocol says how to reach a BMC's serial console.
type ConsoleProtocol struct {
	// Name of the console protocol.
	// +required
	Name ConsoleProtocolName `json:"name"`

	// Port of the console.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// BMCSpec is the desired state of a BMC.
// +kubebuilder:validation:XValidation:rule="has(self.access) != has(self.endpointRef)",message="exactly one of access or endpointRef must be set"
type BMCSpec struct {
	// BMCUUID is the UUID of the BMC, when known.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	BMCUUID string `json:"bmcUUID,omitempty"`

	// EndpointRef is deprecated: use access.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="endpointRef is immutable"
	EndpointRef *LocalObjectReference `json:"endpointRef,omitempty"`

	// Access is where the BMC is reached.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="access is immutable"
	Access *InlineEndpoint `json:"access,omitempty"`

	// BMCSecretRef names the BMCSecret holding the credentials.
	// +required
	BMCSecretRef LocalObjectReference `json:"bmcSecretRef"`

	// Protocol spoken with the BMC.
	// +required
	Protocol Protocol `json:"protocol"`

	// ConsoleProtocol of the BMC's serial console.
	// +optional
	ConsoleProtocol *ConsoleProtocol `json:"consoleProtocol,omitempty"`

	// Hostname of the BMC; used instead of access.ip when set.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Hostname *string `json:"hostname,omitempty"`
}

// BMCStatus is the observed state of a BMC.
type BMCStatus struct {
	// +optional
	// +kubebuilder:validation:Pattern=`^$|^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$`
	MACAddress string `json:"macAddress,omitempty"`
	// +optional
	IP string `json:"ip,omitempty"`
	// +optional
	Manufacturer string `json:"manufacturer,omitempty"`
	// +optional
	Model string `json:"model,omitempty"`
	// +optional
	SKU string `json:"sku,omitempty"`
	// +optional
	SerialNumber string `json:"serialNumber,omitempty"`
	// +optional
	FirmwareVersion string `json:"firmwareVersion,omitempty"`

	// State is Pending until the BMC is reached, Enabled once it is, Error when it cannot be used.
	// +optional
	// +kubebuilder:default=Pending
	State BMCState `json:"state,omitempty"`

	// PowerState of the BMC.
	// +optional
	PowerState BMCPowerState `json:"powerState,omitempty"`

	// LastResetTime is when the BMC was last reset by the operator.
	// +optional
	LastResetTime *metav1.Time `json:"lastResetTime,omitempty"`

	// ResetTimes are the times of the resets the operator sent to the BMC within the last
	// hour, oldest first: they bound the automatic resets per hour across restarts of the
	// manager.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	ResetTimes []metav1.Time `json:"resetTimes,omitempty"`

	// MetricsReportSubscriptionLink is the BMC's Redfish event subscription that sends metric
	// reports to the operator's event receiver (with --event-url).
	// +optional
	MetricsReportSubscriptionLink string `json:"metricsReportSubscriptionLink,omitempty"`
	// EventsSubscriptionLink is the BMC's Redfish event subscription that sends alerts to the
	// operator's event receiver (with --event-url).
	// +optional
	EventsSubscriptionLink string `json:"eventsSubscriptionLink,omitempty"`
	// EventTokenHash is the SHA-256 (hex) of the secret token the destinations of both
	// subscriptions carry: the receiver accepts events for this BMC only with that token.
	// Our addition; the reference accepts events from anyone who knows the BMC's name.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	EventTokenHash string `json:"eventTokenHash,omitempty"`

	// ObservedGeneration is the generation of the spec the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions say whether the BMC is reachable and its systems enrolled, and why not.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:printcolumn:name="MACAddress",type=string,JSONPath=`.spec.access.macAddress`
// +kubebuilder:printcolumn:name="IP",type=string,JSONPath=`.spec.access.ip`
// +kubebuilder:printcolumn:name="Model",type=string,JSONPath=`.status.model`
// +kubebuilder:printcolumn:name="SKU",type=string,JSONPath=`.status.sku`,priority=100
// +kubebuilder:printcolumn:name="SerialNumber",type=string,JSONPath=`.status.serialNumber`,priority=100
// +kubebuilder:printcolumn:name="FirmwareVersion",type=string,JSONPath=`.status.firmwareVersion`,priority=100
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="PowerState",type=string,JSONPath=`.status.powerState`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// BMC is a baseboard management controller; the servers behind it are enrolled from it.
type BMC struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BMCSpec `json:"spec"`
	// +optional
	Status BMCStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// BMCList is a list of BMCs.
type BMCList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BMC `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BMC{}, &BMCList{})
}
