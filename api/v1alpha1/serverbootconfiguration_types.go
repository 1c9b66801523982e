package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServerBootConfigurationState is the state of a boot configuration.
// +kubebuilder:validation:Enum=Pending;Ready;Error
type ServerBootConfigurationState string

const (
	// ServerBootConfigurationStatePending: the boot service is still preparing the boot.
	ServerBootConfigurationStatePending ServerBootConfigurationState = "Pending"
	// ServerBootConfigurationStateReady: the server can be network-booted with it.
	ServerBootConfigurationStateReady ServerBootConfigurationState = "Ready"
	// ServerBootConfigurationStateError: the boot cannot be prepared; a condition says why.
	ServerBootConfigurationStateError ServerBootConfigurationState = "Error"
)

// ServerBootConfigurationSpec is what one server should boot.
type ServerBootConfigurationSpec struct {
	// ServerRef names the server that boots with this configuration.
	// +required
	ServerRef LocalObjectReference `json:"serverRef"`

	// Image is the OS image to boot, as an OCI reference.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Image string `json:"image,omitempty"`

	// IgnitionSecretRef names the Secret, in this namespace, holding the ignition config.
	// +optional
	IgnitionSecretRef *LocalObjectReference `json:"ignitionSecretRef,omitempty"`
}

// BootArtifact is one layer of a resolved OS image, pinned by digest.
type BootArtifact struct {
	// Digest of the layer, e.g. sha256:...
	// +required
	Digest string `json:"digest"`
	// MediaType of the layer.
	// +optional
	MediaType string `json:"mediaType,omitempty"`
	// Size of the layer in bytes.
	// +optional
	Size int64 `json:"size,omitempty"`
}

// ResolvedImage is an OS image resolved to the artifacts a network boot loads.
type ResolvedImage struct {
	// Reference is the fully qualified reference the image was resolved from.
	// +required
	Reference string `json:"reference"`
	// Digest of the image manifest.
	// +required
	Digest string `json:"digest"`
	// Kernel layer.
	// +optional
	Kernel *BootArtifact `json:"kernel,omitempty"`
	// Initrd layer.
	// +optional
	Initrd *BootArtifact `json:"initrd,omitempty"`
	// RootFS layer.
	// +optional
	RootFS *BootArtifact `json:"rootfs,omitempty"`
}

// ServerBootConfigurationStatus is the observed state of a ServerBootConfiguration.
type ServerBootConfigurationStatus struct {
	// State is Pending, Ready or Error.
	// +optional
	State ServerBootConfigurationState `json:"state,omitempty"`

	// ObservedGeneration is the generation of the spec the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Image is the resolved OS image, pinned by digest, that a booting server gets.
	// +optional
	Image *ResolvedImage `json:"image,omitempty"`

	// Conditions say why the configuration is or is not ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// BootCredential is the window of the boot the operator expects and the credential the
	// boot server issued for it (docs/security.md). Only a hash of the credential is stored.
	// +optional
	BootCredential *BootCredentialStatus `json:"bootCredential,omitempty"`
}

// BootCredentialStatus is one expected network boot of a configuration's server.
//
// The server controller opens the window (sets WindowOpenedAt, clears the rest) when it
// starts a network boot; the boot server issues the credential on the first iPXE request
// inside the window, pins it to the requester's IP, counts ignition fetches and revokes it
// when the boot is reported done.
type BootCredentialStatus struct {
	// WindowOpenedAt is when the operator started the network boot.
	// +required
	WindowOpenedAt metav1.Time `json:"windowOpenedAt"`

	// Hash is the hex SHA-256 of the credential's secret part; empty until issued.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Hash string `json:"hash,omitempty"`

	// IssuedAt is when the boot server issued the credential.
	// +optional
	IssuedAt *metav1.Time `json:"issuedAt,omitempty"`

	// ExpiresAt is when the credential stops being honoured.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// PinnedIP is the address the credential was issued to; every later request of the boot,
	// and metadata requests while the claim holds the server, must come from it.
	// +optional
	// +kubebuilder:validation:MaxLength=45
	PinnedIP string `json:"pinnedIP,omitempty"`

	// IgnitionFetches counts the ignition fetches served with the credential.
	// +optional
	// +kubebuilder:validation:Minimum=0
	IgnitionFetches int32 `json:"ignitionFetches,omitempty"`

	// BootDone is true once the server reported its boot state: the credential is revoked.
	// +optional
	BootDone bool `json:"bootDone,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=sbc
// +kubebuilder:printcolumn:name="ServerRef",type=string,JSONPath=`.spec.serverRef.name`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`
// +kubebuilder:printcolumn:name="IgnitionRef",type=string,JSONPath=`.spec.ignitionSecretRef.name`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ServerBootConfiguration tells the boot service what one server boots.
type ServerBootConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ServerBootConfigurationSpec `json:"spec"`
	// +optional
	Status ServerBootConfigurationStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ServerBootConfigurationList is a list of ServerBootConfigurations.
type ServerBootConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServerBootConfiguration `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ServerBootConfiguration{}, &ServerBootConfigurationList{})
}
