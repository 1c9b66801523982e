package v1alpha1

// Power is a desired power state.
// +kubebuilder:validation:Enum=On;Off
type Power string

const (
	// PowerOn asks for the server to be powered on.
	PowerOn Power = "On"
	// PowerOff asks for the server to be powered off.
	PowerOff Power = "Off"
)

// LocalObjectReference names an object in the same namespace as the referrer (or a
// cluster-scoped object).
// +structType=atomic
type LocalObjectReference struct {
	// Name of the referenced object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ObjectReference names a namespaced object.
// +structType=atomic
type ObjectReference struct {
	// Namespace of the referenced object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`

	// Name of the referenced object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ImmutableObjectReference names a namespaced object and, optionally, the uid of the
// instance meant. Once set it cannot be edited in place: it can only be cleared and then set
// anew, so that a binding never silently moves from one object to another.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.uid) || has(self.uid)",message="the reference uid cannot be removed in place: clear the reference first"
type ImmutableObjectReference struct {
	// Namespace of the referenced object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="the reference cannot be edited in place: clear it first, then set a new one"
	Namespace string `json:"namespace"`

	// Name of the referenced object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="the reference cannot be edited in place: clear it first, then set a new one"
	Name string `json:"name"`

	// UID of the referenced object. When set, only the object with this uid is meant: an
	// object deleted and re-created under the same name is a different object.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="the reference uid cannot be changed in place: clear the reference first"
	UID string `json:"uid,omitempty"`
}

// TaintEffect is what a taint does to claims that do not tolerate it.
// +kubebuilder:validation:Enum=NoBind;Evict
type TaintEffect string

const (
	// TaintEffectNoBind keeps claims that do not tolerate the taint from binding the server.
	TaintEffectNoBind TaintEffect = "NoBind"
	// TaintEffectEvict is reserved: today it does not unbind existing claims.
	TaintEffectEvict TaintEffect = "Evict"
)

// Taint marks a server so that only claims tolerating it may bind it.
type Taint struct {
	// Key of the taint.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	Key string `json:"key"`

	// Value of the taint.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Value string `json:"value,omitempty"`

	// Effect of the taint on claims that do not tolerate it.
	// +optional
	// +kubebuilder:default=NoBind
	Effect TaintEffect `json:"effect,omitempty"`
}

// TolerationOperator is how a toleration compares its value with a taint's.
// +kubebuilder:validation:Enum=Equal;Exists
type TolerationOperator string

const (
	// TolerationOpEqual matches a taint with the same key and value (the default).
	TolerationOpEqual TolerationOperator = "Equal"
	// TolerationOpExists matches a taint with the same key, whatever its value.
	TolerationOpExists TolerationOperator = "Exists"
)

// Toleration lets a claim bind a server carrying a matching taint.
type Toleration struct {
	// Key of the taint tolerated.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	Key string `json:"key"`

	// Operator compares values: Equal (the default) or Exists.
	// +optional
	Operator TolerationOperator `json:"operator,omitempty"`

	// Value to compare with the taint's value when the operator is Equal.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Value string `json:"value,omitempty"`

	// Effect tolerated; empty tolerates every effect.
	// +optional
	Effect TaintEffect `json:"effect,omitempty"`
}

// ProtocolName is the protocol spoken with a BMC.
// +kubebuilder:validation:Enum=Redfish;RedfishLocal;RedfishWithRegistryPatch;IPMI;SSH
type ProtocolName string

const (
	// ProtocolRedfish is DMTF Redfish over HTTP(S).
	ProtocolRedfish ProtocolName = "Redfish"
	// ProtocolRedfishLocal is Redfish against a local emulator or mock (development).
	ProtocolRedfishLocal ProtocolName = "RedfishLocal"
	// ProtocolRedfishWithRegistryPatch is Redfish with the reference's development-only
	// registry shortcut; it is treated like Redfish here.
	ProtocolRedfishWithRegistryPatch ProtocolName = "RedfishWithRegistryPatch"
	// ProtocolIPMI is IPMI over LAN.
	ProtocolIPMI ProtocolName = "IPMI"
	// ProtocolSSH is a vendor SSH console.
	ProtocolSSH ProtocolName = "SSH"
)

// ProtocolScheme is the URL scheme used to reach a BMC.
// +kubebuilder:validation:Enum=http;https
type ProtocolScheme string

const (
	// HTTPScheme is plain HTTP.
	HTTPScheme ProtocolScheme = "http"
	// HTTPSScheme is HTTP over TLS.
	HTTPSScheme ProtocolScheme = "https"
)

// Protocol says how to talk to a BMC.
type Protocol struct {
	// Name of the protocol.
	// +required
	Name ProtocolName `json:"name"`

	// Port the BMC listens on.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// Scheme of the URL: http or https (the default for Redfish is https).
	// +optional
	Scheme ProtocolScheme `json:"scheme,omitempty"`
}

// Annotation keys of our own group on reference kinds.
const (
	// SkipWipeAnnotation on a Server skips the wipe it is about to run, or is running,
	// once. Its value is the operator's reason; it is recorded in status.lastWipe and an
	// event, and the annotation is removed.
	SkipWipeAnnotation = "fleet.metalfleet.dev/skip-wipe"
	// AgentModeAnnotation on an internal ServerBootConfiguration says the boot runs the
	// in-band agent, in mode discover or wipe; the boot server reads it only on
	// configurations in the agent namespace.
	AgentModeAnnotation = "fleet.metalfleet.dev/agent-mode"
	// WipePolicyAnnotation on an internal wipe ServerBootConfiguration is the policy the
	// agent wipes with.
	WipePolicyAnnotation = "fleet.metalfleet.dev/wipe-policy"
	// AgentReportServerLabel on an agent report ConfigMap names the server it is about.
	AgentReportServerLabel = "fleet.metalfleet.dev/agent-report-for"
)

// Agent modes (AgentModeAnnotation).
const (
	AgentModeDiscover = "discover"
	AgentModeWipe     = "wipe"
)

// Annotation keys and values shared by the kinds of this group.
const (
	// OperationAnnotation asks a controller for a one-off operation on an object.
	OperationAnnotation = "metal.ironcore.dev/operation"
	// OperationAnnotationIgnore makes every controller of this group skip the object.
	OperationAnnotationIgnore = "ignore"
	// OperationAnnotationPark asks the server controller to power a server off and park it.
	OperationAnnotationPark = "park"
	// OperationAnnotationUnpark returns a parked server to service.
	OperationAnnotationUnpark = "unpark"
	// OperationAnnotationGracefulRestartServer asks for a graceful restart of the server.
	OperationAnnotationGracefulRestartServer = "graceful-restart-server"
	// OperationAnnotationHardRestartServer asks for a forced restart of the server.
	OperationAnnotationHardRestartServer = "hard-restart-server"
	// OperationAnnotationPowerCycleServer asks for a power cycle of the server.
	OperationAnnotationPowerCycleServer = "power-cycle-server"
	// OperationAnnotationForceOffServer asks for the server to be forced off.
	OperationAnnotationForceOffServer = "force-off-server"
	// OperationAnnotationForceOnServer asks for the server to be forced on.
	OperationAnnotationForceOnServer = "force-on-server"
	// OperationAnnotationGracefulRestartBMC asks for a graceful restart of the BMC (Redfish
	// Manager.Reset GracefulRestart), on a BMC or on a Server (its BMC).
	OperationAnnotationGracefulRestartBMC = "graceful-restart-bmc"
	// OperationAnnotationForceResetBMC asks for a forced restart of the BMC. The reference
	// resets the BMC over SSH; this operator has no SSH client and sends a Redfish
	// Manager.Reset ForceRestart instead.
	OperationAnnotationForceResetBMC = "force-ssh-reset-bmc"
	// OperationAnnotationRetry, OperationAnnotationRetryPropagated,
	// OperationAnnotationAllowInProgressUpdate and OperationAnnotationAllowInProgressDelete
	// are used by companion controllers on their own kinds; the controllers of this operator
	// do not act on them (a Server drops them as unsupported, a BMC leaves them alone).
	OperationAnnotationRetry                 = "retry"
	OperationAnnotationRetryPropagated       = "retry-propagated"
	OperationAnnotationAllowInProgressUpdate = "allow-in-progress-update"
	OperationAnnotationAllowInProgressDelete = "allow-in-progress-delete"

	// ParkedAnnotation is set by the server controller (value "true") while a server is parked.
	ParkedAnnotation = "metal.ironcore.dev/parked"

	// AdoptByBMCAnnotation on a Server names the BMC object that may adopt it although the
	// Server's BMC is set elsewhere (inline spec.bmc, or spec.bmcRef naming another BMC).
	// Adopting points spec.bmcRef at that BMC and drops spec.bmc. Without it a BMC adopts
	// only a Server whose BMC is unset or already that BMC.
	AdoptByBMCAnnotation = "metal.ironcore.dev/adopt-by-bmc"

	// BMCLabelsAnnotation lists, comma-separated and sorted, the label keys a Server carries
	// from its BMC, so that a label removed from the BMC is removed from its Servers too and
	// labels set on a Server by anyone else are left alone.
	BMCLabelsAnnotation = "metal.ironcore.dev/bmc-labels"

	// BootConfigurationTypeAnnotation marks boot configurations the operator made for itself.
	BootConfigurationTypeAnnotation = "metal.ironcore.dev/type"
	// BootConfigurationTypeInternal is the value of BootConfigurationTypeAnnotation for those.
	BootConfigurationTypeInternal = "Internal"

	// UserDataSecretType is the Secret type of a claim's user data.
	UserDataSecretType = "metal.ironcore.dev/user-data"

	// FieldOwner is the field manager name of the operator's writes.
	FieldOwner = "metal.ironcore.dev/controller-manager"
)

// Finalizers.
const (
	// ServerFinalizer holds a Server until its claim is gone and its boot configuration cleaned.
	ServerFinalizer = "metal.ironcore.dev/server"
	// ServerClaimFinalizer holds a ServerClaim until its binding is cleaned up.
	ServerClaimFinalizer = "metal.ironcore.dev/serverclaim"
	// BMCFinalizer holds a BMC until the servers it enrolled are safe to let go.
	BMCFinalizer = "metal.ironcore.dev/bmc"
)
