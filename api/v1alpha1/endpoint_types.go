package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EndpointSpec is where a BMC is found on the network.
type EndpointSpec struct {
	// MACAddress of the BMC. (Not validated: older manifests use various notations.)
	// +optional
	// +kubebuilder:validation:MaxLength=64
	MACAddress string `json:"macAddress,omitempty"`

	// IP address of the BMC.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	IP string `json:"ip,omitempty"`
}

// EndpointStatus is empty: an Endpoint only carries an address.
type EndpointStatus struct{}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=mep
// +kubebuilder:deprecatedversion:warning="metal.ironcore.dev/v1alpha1 Endpoint is deprecated; set BMC spec.access instead"
// +kubebuilder:printcolumn:name="MACAddress",type=string,JSONPath=`.spec.macAddress`
// +kubebuilder:printcolumn:name="IP",type=string,JSONPath=`.spec.ip`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Endpoint is the deprecated way to give a BMC object its address (BMC spec.endpointRef);
// BMC spec.access replaces it. It is kept so that existing manifests apply.
type Endpoint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec EndpointSpec `json:"spec,omitempty"`
	// +optional
	Status EndpointStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// EndpointList is a list of Endpoints.
type EndpointList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Endpoint `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Endpoint{}, &EndpointList{})
}
