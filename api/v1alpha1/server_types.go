package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServerPowerState is a power state as the BMC reports it.
// +kubebuilder:validation:Enum=On;Off;Paused;PoweringOn;PoweringOff
type ServerPowerState string

const (
	// ServerOnPowerState: the system is powered on.
	ServerOnPowerState ServerPowerState = "On"
	// ServerOffPowerState: the system is powered off (the BMC may still have power).
	ServerOffPowerState ServerPowerState = "Off"
	// ServerPausedPowerState: the system is paused.
	ServerPausedPowerState ServerPowerState = "Paused"
	// ServerPoweringOnPowerState: the system is between Off and On.
	ServerPoweringOnPowerState ServerPowerState = "PoweringOn"
	// ServerPoweringOffPowerState: the system is between On and Off.
	ServerPoweringOffPowerState ServerPowerState = "PoweringOff"
)

// ServerState is the lifecycle state of a server.
// +kubebuilder:validation:Enum=Initial;Discovery;Available;Reserved;Released;Error;Parked;Wiping
type ServerState string

const (
	// ServerStateInitial: the server is new and not yet inventoried.
	ServerStateInitial ServerState = "Initial"
	// ServerStateDiscovery: the server's inventory is being read from its BMC.
	ServerStateDiscovery ServerState = "Discovery"
	// ServerStateAvailable: the server is powered off and free to be claimed.
	ServerStateAvailable ServerState = "Available"
	// ServerStateReserved: the server is bound to a claim.
	ServerStateReserved ServerState = "Reserved"
	// ServerStateReleased: the server's claim is gone and its reclaim policy is Retain; it
	// waits for an operator to clear spec.serverClaimRef.
	ServerStateReleased ServerState = "Released"
	// ServerStateError: the server's BMC cannot be used; a condition says why.
	ServerStateError ServerState = "Error"
	// ServerStateWiping: the server's disks are being wiped after its claim (wipe policy
	// Quick or Secure); it returns to Available only once every disk reports success.
	ServerStateWiping ServerState = "Wiping"
	// ServerStateParked: the server was parked by the operation annotation.
	ServerStateParked ServerState = "Parked"
)

// IndicatorLED is the state of a server's identification LED.
// +kubebuilder:validation:Enum=Unknown;Lit;Blinking;Off
type IndicatorLED string

const (
	// UnknownIndicatorLED: the LED state cannot be determined.
	UnknownIndicatorLED IndicatorLED = "Unknown"
	// LitIndicatorLED: the LED is lit.
	LitIndicatorLED IndicatorLED = "Lit"
	// BlinkingIndicatorLED: the LED is blinking.
	BlinkingIndicatorLED IndicatorLED = "Blinking"
	// OffIndicatorLED: the LED is off.
	OffIndicatorLED IndicatorLED = "Off"
)

// ReclaimPolicy says what happens to a server once its claim is gone.
// +kubebuilder:validation:Enum=Recycle;Retain
type ReclaimPolicy string

const (
	// ReclaimPolicyRecycle powers the server off and returns it to Available.
	ReclaimPolicyRecycle ReclaimPolicy = "Recycle"
	// ReclaimPolicyRetain powers the server off and keeps it Released, with its claim
	// reference, until an operator clears the reference.
	ReclaimPolicyRetain ReclaimPolicy = "Retain"
)

// StorageState is the state of a storage device.
// +kubebuilder:validation:Enum=Enabled;Disabled;Absent
type StorageState string

const (
	// StorageStateEnabled: the device is enabled.
	StorageStateEnabled StorageState = "Enabled"
	// StorageStateDisabled: the device is disabled.
	StorageStateDisabled StorageState = "Disabled"
	// StorageStateAbsent: the device is absent.
	StorageStateAbsent StorageState = "Absent"
)

// BMCAccess says how to reach a server's BMC without a BMC object.
type BMCAccess struct {
	// Protocol spoken with the BMC.
	// +required
	Protocol Protocol `json:"protocol"`

	// Address of the BMC: an IP address or a host name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Address string `json:"address"`

	// BMCSecretRef names the BMCSecret holding the BMC's credentials.
	// +required
	BMCSecretRef LocalObjectReference `json:"bmcSecretRef"`
}

// BootOrder is one entry of a server's boot order.
type BootOrder struct {
	// Name of the boot device.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Priority of the device; lower boots first.
	// +required
	Priority int `json:"priority"`

	// Device to boot from.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Device string `json:"device"`
}

// ServerSpec is the desired state of a Server.
type ServerSpec struct {
	// UUID is deprecated in favour of systemUUID and ignored.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	UUID string `json:"uuid,omitempty"`

	// SystemUUID is the UUID of the Redfish system this server is.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	SystemUUID string `json:"systemUUID"`

	// SystemURI is the Redfish URI of the system; the controller fills it when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	SystemURI string `json:"systemURI,omitempty"`

	// Power is deprecated and cleared by the controller: a server's power follows its claim.
	// +optional
	Power Power `json:"power,omitempty"`

	// IndicatorLED is the desired state of the identification LED.
	// +optional
	IndicatorLED IndicatorLED `json:"indicatorLED,omitempty"`

	// ReclaimPolicy says what happens once the bound claim is gone: Recycle (the default)
	// returns the server to Available, Retain keeps it Released until an operator clears
	// serverClaimRef.
	// +optional
	// +kubebuilder:default=Recycle
	ReclaimPolicy ReclaimPolicy `json:"reclaimPolicy,omitempty"`

	// ServerClaimRef is the binding to a ServerClaim. It is written by the claim controller;
	// it cannot be edited in place, only cleared.
	// +optional
	ServerClaimRef *ImmutableObjectReference `json:"serverClaimRef,omitempty"`

	// BMCRef names the BMC object through which this server is reached.
	// +optional
	BMCRef *LocalObjectReference `json:"bmcRef,omitempty"`

	// BMC is inline access to the server's BMC, for a server without a BMC object.
	// +optional
	BMC *BMCAccess `json:"bmc,omitempty"`

	// BootConfigurationRef names the ServerBootConfiguration currently driving the boot.
	// +optional
	BootConfigurationRef *ObjectReference `json:"bootConfigurationRef,omitempty"`

	// BootOrder is the desired boot order.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	BootOrder []BootOrder `json:"bootOrder,omitempty"`

	// Taints keep claims that do not tolerate them from binding this server.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Taints []Taint `json:"taints,omitempty"`

	// Unclaimable cordons the server: no new claim binds it; an existing binding stays.
	// +optional
	// +kubebuilder:default=false
	Unclaimable bool `json:"unclaimable,omitempty"`

	// WipePolicy says how the server's disks are wiped after a claim, before the server is
	// Available again: Disabled (no wipe), Quick (partition tables, signatures, first and
	// last MiB, discard) or Secure (sanitize, crypto or secure erase, else a full
	// overwrite). Empty means the manager's --default-wipe-policy. Our addition; see
	// docs/wipe.md.
	// +optional
	WipePolicy WipePolicy `json:"wipePolicy,omitempty"`
}

// WipePolicy is how a server's disks are wiped between two claims.
// +kubebuilder:validation:Enum=Disabled;Quick;Secure
type WipePolicy string

// Wipe policies, weakest first.
const (
	WipePolicyDisabled WipePolicy = "Disabled"
	WipePolicyQuick    WipePolicy = "Quick"
	WipePolicySecure   WipePolicy = "Secure"
)

// WipeResult is the outcome of a wipe.
type WipeResult string

// Wipe results.
const (
	WipeResultRunning   WipeResult = "Running"
	WipeResultSucceeded WipeResult = "Succeeded"
	WipeResultFailed    WipeResult = "Failed"
	WipeResultSkipped   WipeResult = "Skipped"
	// WipeResultNotRequired: the server was released under wipe policy Disabled; the claim's
	// data was left on its disks on purpose.
	WipeResultNotRequired WipeResult = "NotRequired"
)

// WipeRecord is the record of the last wipe of a server: what it followed, how it was done,
// and per disk what was done and verified.
type WipeRecord struct {
	// ClaimUID is the uid of the claim whose release the wipe followed.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ClaimUID string `json:"claimUID,omitempty"`
	// Claim is namespace/name of that claim, for the reader.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Claim string `json:"claim,omitempty"`
	// Policy the wipe ran with.
	// +required
	Policy WipePolicy `json:"policy"`
	// Method is how the disks were wiped: Agent (the in-band agent booted over the network)
	// or RedfishSecureErase (the BMC's Drive.SecureErase).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Method string `json:"method,omitempty"`
	// Result of the wipe.
	// +required
	Result WipeResult `json:"result"`
	// Message says why a wipe failed or was skipped (never text from the machine).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
	// StartedAt is when the wipe started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// FinishedAt is when the last disk reported.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// Disks wiped, one entry per disk.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	Disks []DiskWipeRecord `json:"disks,omitempty"`
	// ReportDigest is the SHA-256 of the agent's report the operator accepted.
	// +optional
	// +kubebuilder:validation:MaxLength=80
	ReportDigest string `json:"reportDigest,omitempty"`
}

// DiskWipeRecord is the wipe of one disk.
type DiskWipeRecord struct {
	// +required
	// +kubebuilder:validation:MaxLength=256
	Path string `json:"path"`
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Model string `json:"model,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Serial string `json:"serial,omitempty"`
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// Method is what was done to the disk (e.g. signatures+ends, overwrite, SecureErase).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Method string `json:"method,omitempty"`
	// +required
	Result WipeResult `json:"result"`
	// Error says why this disk's wipe failed.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Error string `json:"error,omitempty"`
	// SampledBlocks read back after the wipe, and how many of them were not clean.
	// +optional
	SampledBlocks int32 `json:"sampledBlocks,omitempty"`
	// +optional
	Mismatches int32 `json:"mismatches,omitempty"`
	// Verified is true when every sampled block read back clean, or, for a Redfish secure
	// erase, when the BMC's task completed.
	// +optional
	Verified bool `json:"verified,omitempty"`
	// Task is the BMC's task monitor of a Redfish secure erase in flight.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Task string `json:"task,omitempty"`
}

// LLDPNeighbor is a neighbour seen through LLDP.
type LLDPNeighbor struct {
	// +optional
	MACAddress string `json:"macAddress,omitempty"`
	// +optional
	PortID string `json:"portID,omitempty"`
	// +optional
	PortDescription string `json:"portDescription,omitempty"`
	// +optional
	SystemName string `json:"systemName,omitempty"`
	// +optional
	SystemDescription string `json:"systemDescription,omitempty"`
}

// NetworkInterface is a network interface of a server.
type NetworkInterface struct {
	// Name of the interface.
	// +required
	Name string `json:"name"`

	// IP is deprecated; always empty. Use ips.
	// +optional
	IP *string `json:"ip,omitempty"`

	// IPs assigned to the interface.
	// +optional
	// +listType=atomic
	IPs []string `json:"ips,omitempty"`

	// MACAddress of the interface.
	// +required
	MACAddress string `json:"macAddress"`

	// CarrierStatus is the link state of the interface.
	// +optional
	CarrierStatus string `json:"carrierStatus,omitempty"`

	// Neighbors seen through LLDP.
	// +optional
	// +listType=atomic
	Neighbors []LLDPNeighbor `json:"neighbors,omitempty"`
}

// Processor is a processor of a server.
type Processor struct {
	// +required
	ID string `json:"id"`
	// +optional
	Type string `json:"type,omitempty"`
	// +optional
	Architecture string `json:"architecture,omitempty"`
	// +optional
	InstructionSet string `json:"instructionSet,omitempty"`
	// +optional
	Manufacturer string `json:"manufacturer,omitempty"`
	// +optional
	Model string `json:"model,omitempty"`
	// +optional
	MaxSpeedMHz int32 `json:"maxSpeedMHz,omitempty"`
	// +optional
	TotalCores int32 `json:"totalCores,omitempty"`
	// +optional
	TotalThreads int32 `json:"totalThreads,omitempty"`
}

// StorageDrive is a drive of a storage device.
type StorageDrive struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	MediaType string `json:"mediaType,omitempty"`
	// +optional
	Type string `json:"type,omitempty"`
	// +optional
	Capacity *resource.Quantity `json:"capacity,omitempty"`
	// +optional
	Vendor string `json:"vendor,omitempty"`
	// +optional
	Model string `json:"model,omitempty"`
	// +optional
	State StorageState `json:"state,omitempty"`
}

// StorageVolume is a volume of a storage device.
type StorageVolume struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Capacity *resource.Quantity `json:"capacity,omitempty"`
	// +optional
	State StorageState `json:"state,omitempty"`
	// +optional
	RAIDType string `json:"raidType,omitempty"`
	// +optional
	VolumeUsage string `json:"volumeUsage,omitempty"`
}

// Storage is a storage device of a server.
type Storage struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	State StorageState `json:"state,omitempty"`
	// +optional
	// +listType=atomic
	Volumes []StorageVolume `json:"volumes,omitempty"`
	// +optional
	// +listType=atomic
	Drives []StorageDrive `json:"drives,omitempty"`
}

// ServerStatus is the observed state of a Server. The server controller is its only writer.
type ServerStatus struct {
	// +optional
	Manufacturer string `json:"manufacturer,omitempty"`
	// +optional
	BIOSVersion string `json:"biosVersion,omitempty"`
	// +optional
	Model string `json:"model,omitempty"`
	// +optional
	SKU string `json:"sku,omitempty"`
	// +optional
	SerialNumber string `json:"serialNumber,omitempty"`

	// PowerState is the power state last reported by the BMC.
	// +optional
	PowerState ServerPowerState `json:"powerState,omitempty"`

	// IndicatorLED is the LED state last reported by the BMC.
	// +optional
	IndicatorLED IndicatorLED `json:"indicatorLED,omitempty"`

	// State is the lifecycle state of the server.
	// +optional
	State ServerState `json:"state,omitempty"`

	// NetworkInterfaces of the server.
	// +optional
	// +listType=atomic
	NetworkInterfaces []NetworkInterface `json:"networkInterfaces,omitempty"`

	// TotalSystemMemory of the server.
	// +optional
	TotalSystemMemory *resource.Quantity `json:"totalSystemMemory,omitempty"`

	// Processors of the server.
	// +optional
	// +listType=atomic
	Processors []Processor `json:"processors,omitempty"`

	// Storages of the server.
	// +optional
	// +listType=atomic
	Storages []Storage `json:"storages,omitempty"`

	// NetworkBootClaimUID is the uid of the claim for which the one-time network boot was
	// issued. A later power-on for the same claim boots from disk instead of provisioning
	// the server again.
	// +optional
	NetworkBootClaimUID string `json:"networkBootClaimUID,omitempty"`

	// LastWipe is the record of the server's last wipe between two claims.
	// +optional
	LastWipe *WipeRecord `json:"lastWipe,omitempty"`

	// Conditions are the latest observations of the server.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=srv
// +kubebuilder:printcolumn:name="SystemUUID",type=string,JSONPath=`.spec.systemUUID`
// +kubebuilder:printcolumn:name="Manufacturer",type=string,JSONPath=`.status.manufacturer`
// +kubebuilder:printcolumn:name="Model",type=string,JSONPath=`.status.model`
// +kubebuilder:printcolumn:name="Memory",type=string,JSONPath=`.status.totalSystemMemory`
// +kubebuilder:printcolumn:name="SKU",type=string,JSONPath=`.status.sku`,priority=100
// +kubebuilder:printcolumn:name="SerialNumber",type=string,JSONPath=`.status.serialNumber`,priority=100
// +kubebuilder:printcolumn:name="PowerState",type=string,JSONPath=`.status.powerState`
// +kubebuilder:printcolumn:name="IndicatorLED",type=string,JSONPath=`.status.indicatorLED`,priority=100
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Unclaimable",type=boolean,JSONPath=`.spec.unclaimable`,priority=100
// +kubebuilder:printcolumn:name="LastWipe",type=string,JSONPath=`.status.lastWipe.result`,priority=100
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Server is a physical machine reached through its BMC.
type Server struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec ServerSpec `json:"spec,omitempty"`
	// +optional
	Status ServerStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ServerList is a list of Servers.
type ServerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Server `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Server{}, &ServerList{})
}
