package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase is the binding phase of a ServerClaim.
// +kubebuilder:validation:Enum=Bound;Unbound
type Phase string

const (
	// PhaseBound: the claim holds a Reserved server and its boot configuration exists.
	PhaseBound Phase = "Bound"
	// PhaseUnbound: the claim holds no server (yet, or any more); its conditions say why.
	PhaseUnbound Phase = "Unbound"
)

// ServerClaimSpec is the desired state of a ServerClaim.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.serverRef) || has(self.serverRef)",message="serverRef is required once set"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.serverSelector) || has(self.serverSelector)",message="serverSelector is required once set"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.leaseDuration) || has(self.leaseDuration)",message="leaseDuration cannot be removed once set; raise it to extend the lease"
type ServerClaimSpec struct {
	// Power is the desired power state of the claimed server: On or Off.
	// +required
	Power Power `json:"power"`

	// ServerRef names the server to claim. When empty, the controller fills it with the
	// server it binds. It can be set after creation, but never changed or removed.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="serverRef is immutable"
	ServerRef *LocalObjectReference `json:"serverRef,omitempty"`

	// ServerSelector selects the servers that may be claimed by their labels. It can be set
	// after creation, but never changed or removed.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="serverSelector is immutable"
	ServerSelector *metav1.LabelSelector `json:"serverSelector,omitempty"`

	// IgnitionSecretRef names the Secret, in the claim's namespace, holding the ignition
	// configuration the server boots with.
	// +optional
	IgnitionSecretRef *LocalObjectReference `json:"ignitionSecretRef,omitempty"`

	// UserDataRef names a Secret of type metal.ironcore.dev/user-data, in the claim's
	// namespace, served to the server as user data.
	// +optional
	UserDataRef *LocalObjectReference `json:"userDataRef,omitempty"`

	// Image is the OS image to boot, as an OCI reference (e.g. my-osimage:latest).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Image string `json:"image"`

	// Tolerations let the claim bind servers with matching NoBind taints.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Tolerations []Toleration `json:"tolerations,omitempty"`

	// Placement says which of the fitting servers the claim prefers. Without it, claims
	// spread over the fitting servers (policy Spread).
	// +optional
	Placement *Placement `json:"placement,omitempty"`

	// LeaseDuration limits how long the claim holds its server, counted from the binding (or
	// from the moment a lease is added to a bound claim). Raising it extends the lease;
	// lowering it below the time already used ends the lease at once. At the end the server
	// is released as on deletion and the claim stays Unbound (reason LeaseExpired) for good.
	// Once set it can be changed but not removed.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="leaseDuration must be positive"
	LeaseDuration *metav1.Duration `json:"leaseDuration,omitempty"`
}

// PlacementPolicy says which fitting server a claim prefers.
// +kubebuilder:validation:Enum=Spread;Pack
type PlacementPolicy string

const (
	// PlacementSpread: each claim starts its search at a different place, so that a burst of
	// claims spreads over the fitting servers (the behaviour without a placement).
	PlacementSpread PlacementPolicy = "Spread"
	// PlacementPack: best fit, the fitting server with the fewest labels beyond those the
	// selector names (ties by name), so that larger, more specific servers stay free.
	PlacementPack PlacementPolicy = "Pack"
)

// Placement is a claim's preference among the servers that fit it.
// +kubebuilder:validation:XValidation:rule="!has(self.group) || has(self.topologyKey)",message="placement.group needs placement.topologyKey: the label whose domains the group spreads over"
type Placement struct {
	// Policy is Spread (the default) or Pack.
	// +optional
	// +kubebuilder:default=Spread
	Policy PlacementPolicy `json:"policy,omitempty"`

	// Group is an anti-affinity group: claims in the same namespace with the same group
	// prefer servers in different domains of TopologyKey.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Group string `json:"group,omitempty"`

	// TopologyKey is the server label whose values are the domains a group spreads over,
	// e.g. metadata.metal.ironcore.dev/rack.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=317
	TopologyKey string `json:"topologyKey,omitempty"`
}

// ServerClaimStatus is the observed state of a ServerClaim.
type ServerClaimStatus struct {
	// Phase is Bound while the claim holds a Reserved server with its boot configuration,
	// and Unbound otherwise.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// ObservedGeneration is the generation of the spec the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions say why the claim is or is not bound and ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LeaseStartedAt is when the lease of spec.leaseDuration began: the binding, or the
	// moment a lease was added to a bound claim. Kept from then on.
	// +optional
	LeaseStartedAt *metav1.Time `json:"leaseStartedAt,omitempty"`

	// LeaseExpiresAt is when the lease ends: leaseStartedAt plus spec.leaseDuration. After it
	// the claim is never bound again.
	// +optional
	LeaseExpiresAt *metav1.Time `json:"leaseExpiresAt,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=scl
// +kubebuilder:printcolumn:name="Server",type=string,JSONPath=`.spec.serverRef.name`
// +kubebuilder:printcolumn:name="Ignition",type=string,JSONPath=`.spec.ignitionSecretRef.name`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Bound")].reason`,priority=1
// +kubebuilder:printcolumn:name="Lease-Ends",type=string,JSONPath=`.status.leaseExpiresAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ServerClaim is a user's claim on one physical server.
type ServerClaim struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ServerClaimSpec `json:"spec"`
	// +optional
	Status ServerClaimStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ServerClaimList is a list of ServerClaims.
type ServerClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServerClaim `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ServerClaim{}, &ServerClaimList{})
}
