package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServerQuotaSpec limits the servers the claims of one namespace may hold.
type ServerQuotaSpec struct {
	// Hard lists the limits: each counts the servers, matching its selector, held by claims
	// of this namespace, and caps them at max.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Hard []QuotaLimit `json:"hard"`
}

// QuotaLimit caps the servers matching a selector that claims of the namespace hold.
type QuotaLimit struct {
	// Name identifies the limit in status and in a claim's QuotaExceeded message.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// Selector selects the servers the limit counts by their labels; empty or absent counts
	// every server.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// Max is the number of such servers the namespace's claims may hold at once.
	// +required
	// +kubebuilder:validation:Minimum=0
	Max int32 `json:"max"`
}

// QuotaUsage is one limit's count.
type QuotaUsage struct {
	// Name is the limit's name.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Used is the number of allocations that count against the limit.
	// +required
	Used int32 `json:"used"`
	// Hard is the limit's max.
	// +required
	Hard int32 `json:"hard"`
}

// QuotaAllocation is one claim's share of the quota, written by the claim controller under
// the quota's resourceVersion before the claim takes its server; it is the record that makes
// the limits hold when managers race.
type QuotaAllocation struct {
	// ClaimName is the claim's name.
	// +required
	// +kubebuilder:validation:MaxLength=253
	ClaimName string `json:"claimName"`
	// ClaimUID is the claim's uid.
	// +required
	// +kubebuilder:validation:MaxLength=36
	ClaimUID string `json:"claimUID"`
	// Server is the server the claim takes or holds.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Server string `json:"server"`
	// Limits are the names of the limits whose selectors the server matched when the
	// allocation was written: the limits it counts against.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	Limits []string `json:"limits,omitempty"`
	// Since is when the allocation was written.
	// +required
	Since metav1.Time `json:"since"`
}

// ServerQuotaStatus is the observed state of a ServerQuota.
type ServerQuotaStatus struct {
	// Used is the count of each limit.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Used []QuotaUsage `json:"used,omitempty"`

	// Allocations are the claims counted, one per claim.
	// +optional
	// +listType=map
	// +listMapKey=claimUID
	// +kubebuilder:validation:MaxItems=10000
	Allocations []QuotaAllocation `json:"allocations,omitempty"`

	// Conditions: Exceeded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=sq
// +kubebuilder:printcolumn:name="Exceeded",type=string,JSONPath=`.status.conditions[?(@.type=="Exceeded")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ServerQuota caps the servers the claims of its namespace hold, per label selector.
type ServerQuota struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ServerQuotaSpec `json:"spec"`
	// +optional
	Status ServerQuotaStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ServerQuotaList is a list of ServerQuotas.
type ServerQuotaList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServerQuota `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ServerQuota{}, &ServerQuotaList{})
}
