package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// Labels, annotations and finalizers of the ServerClaimSet controller.
const (
	// AssignedServerAnnotation is on a member ServerClaim while the set's placement is being
	// taken: the server the set assigned it. While it is there, the claim takes only that
	// server, as a proposal it does not record (the server stays Available and off); the set
	// records every member's server at once when all hold theirs, and removes it.
	AssignedServerAnnotation = "fleet.metalfleet.dev/assigned-server"
	// PlacementAnnotation is on a member ServerClaim beside AssignedServerAnnotation: the
	// identity of the placement decision that created it. Members of one pending placement
	// carry one identity; members of two decisions (two managers deciding at once) are never
	// recorded together.
	PlacementAnnotation = "fleet.metalfleet.dev/placement"
	// ServerClaimSetFinalizer keeps a set until its member claims are deleted.
	ServerClaimSetFinalizer = "fleet.metalfleet.dev/serverclaimset"
)

// WhenUnsatisfiable says what a set does when the free servers cannot hold its replicas
// under the topology.
// +kubebuilder:validation:Enum=DoNotBind;BestEffort
type WhenUnsatisfiable string

const (
	// DoNotBind: bind nothing and wait until the topology can hold every replica.
	DoNotBind WhenUnsatisfiable = "DoNotBind"
	// BestEffort: bind every replica anyway, over the limits, as evenly as the domains allow.
	BestEffort WhenUnsatisfiable = "BestEffort"
)

// TopologyLevel is one level of a set's topology: servers are grouped into domains by the
// value of the label Key (within their domain of the level above), and at most MaxPerDomain
// replicas are placed in one domain.
type TopologyLevel struct {
	// Key is the server label whose values are this level's domains, e.g.
	// metadata.metal.ironcore.dev/rack.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=317
	Key string `json:"key"`

	// MaxPerDomain is the most replicas placed in one domain of this level.
	// +required
	// +kubebuilder:validation:Minimum=1
	MaxPerDomain int32 `json:"maxPerDomain"`
}

// ServerClaimSetSpec is the desired state of a ServerClaimSet.
// +kubebuilder:validation:XValidation:rule="!has(self.template.serverRef)",message="template.serverRef cannot be set: every replica gets a server of its own"
// +kubebuilder:validation:XValidation:rule="!has(self.template.placement)",message="template.placement cannot be set: the set places its replicas by spec.topology"
// +kubebuilder:validation:XValidation:rule="!has(self.topology) || self.topology.all(l, self.topology.exists_one(m, m.key == l.key))",message="topology keys must be unique: each label is one level"
type ServerClaimSetSpec struct {
	// Replicas is the number of servers the set claims. Raising it adds members under the
	// same topology; lowering it deletes the members with the highest indices.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	Replicas int32 `json:"replicas"`

	// Template is the spec of every member ServerClaim (named <set>-<index>): selector,
	// tolerations, power, image, ignition, user data.
	// +required
	Template metalv1alpha1.ServerClaimSpec `json:"template"`

	// Topology is the ordered list of levels (e.g. location, then rack) the replicas are
	// spread over. Servers that lack one of its labels are not placed.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Topology []TopologyLevel `json:"topology,omitempty"`

	// WhenUnsatisfiable is DoNotBind (the default) or BestEffort.
	// +optional
	// +kubebuilder:default=DoNotBind
	WhenUnsatisfiable WhenUnsatisfiable `json:"whenUnsatisfiable,omitempty"`
}

// DomainStatus is how many bound replicas one domain of the topology's last level holds.
type DomainStatus struct {
	// Domain is the domain's label values from the first level to the last, joined by "/".
	// +required
	// +kubebuilder:validation:MaxLength=2600
	Domain string `json:"domain"`

	// Replicas is the number of bound replicas in the domain.
	// +required
	Replicas int32 `json:"replicas"`
}

// ServerClaimSetStatus is the observed state of a ServerClaimSet.
type ServerClaimSetStatus struct {
	// Phase is Bound while every replica holds a Reserved server, and Unbound otherwise.
	// +optional
	Phase metalv1alpha1.Phase `json:"phase,omitempty"`

	// Replicas is the number of member claims that exist.
	// +optional
	Replicas int32 `json:"replicas"`

	// Bound is the number of members bound to a Reserved server.
	// +optional
	Bound int32 `json:"bound"`

	// Ready is the number of members whose claim is Ready.
	// +optional
	Ready int32 `json:"ready"`

	// Domains are the bound replicas per domain of the topology's last level.
	// +optional
	// +listType=map
	// +listMapKey=domain
	// +kubebuilder:validation:MaxItems=1024
	Domains []DomainStatus `json:"domains,omitempty"`

	// ObservedGeneration is the generation of the spec the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions say whether the set is bound and ready, and why not.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=scls
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Bound",type=integer,JSONPath=`.status.bound`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Bound")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ServerClaimSet claims a number of servers under a topology, all or nothing: it owns the
// ServerClaims <set>-<index> (controller owner reference).
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 247",message="the name may have at most 247 characters: the member claims are named <set>-<index>"
type ServerClaimSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ServerClaimSetSpec `json:"spec"`
	// +optional
	Status ServerClaimSetStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ServerClaimSetList is a list of ServerClaimSets.
type ServerClaimSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServerClaimSet `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ServerClaimSet{}, &ServerClaimSetList{})
}
