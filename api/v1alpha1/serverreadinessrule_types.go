package v1alpha1

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EnforcementMode says how long a ServerReadinessRule looks after a Server.
// +kubebuilder:validation:Enum=BootstrapOnly;Continuous
type EnforcementMode string

const (
	// EnforcementModeBootstrapOnly taints a Server until its conditions hold once; then the
	// taint is removed for good and the Server gets BootstrapCompletedAnnotationPrefix+<rule>.
	EnforcementModeBootstrapOnly EnforcementMode = "BootstrapOnly"
	// EnforcementModeContinuous taints a Server whenever its conditions do not hold.
	EnforcementModeContinuous EnforcementMode = "Continuous"
)

// ConditionRequirement is a Server condition and the status it must have.
type ConditionRequirement struct {
	// Type of the Server condition.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	Type string `json:"type"`

	// RequiredStatus is the status the condition must have: True, False or Unknown. A Server
	// without the condition does not meet the requirement, whatever the status asked for.
	// +required
	// +kubebuilder:validation:Enum=True;False;Unknown
	RequiredStatus metav1.ConditionStatus `json:"requiredStatus"`
}

// ServerReadinessRuleSpec is what a ServerReadinessRule asks for. Every field is immutable.
type ServerReadinessRuleSpec struct {
	// Conditions the selected Servers must have, each with its required status. While a
	// Server lacks one of them, it carries the rule's taint.
	// +required
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="conditions is immutable"
	Conditions []ConditionRequirement `json:"conditions"`

	// EnforcementMode is BootstrapOnly (the taint is lifted once, for good) or Continuous
	// (the taint comes back whenever the conditions stop holding).
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="enforcementMode is immutable"
	EnforcementMode EnforcementMode `json:"enforcementMode"`

	// Taint the rule puts on the Servers that do not meet its conditions (effect NoBind
	// unless set).
	// +required
	// +kubebuilder:validation:XValidation:rule="self.key.size() <= 253",message="taint key length must be at most 253 characters"
	// +kubebuilder:validation:XValidation:rule="!has(oldSelf.key) || self.key == oldSelf.key",message="taint key is immutable"
	// +kubebuilder:validation:XValidation:rule="!has(oldSelf.effect) || self.effect == oldSelf.effect",message="taint effect is immutable"
	// +kubebuilder:validation:XValidation:rule="!has(oldSelf.value) || self.value == oldSelf.value",message="taint value is immutable"
	Taint Taint `json:"taint"`

	// ServerSelector picks the Servers the rule applies to; an empty selector picks all.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="serverSelector is immutable"
	ServerSelector metav1.LabelSelector `json:"serverSelector"`
}

// ServerReadinessRuleStatus is what the controller observed about a rule. The reference
// declares only conditions and never writes them; the counts are this operator's.
type ServerReadinessRuleStatus struct {
	// ObservedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// SelectedServers is the number of Servers the rule's selector picks.
	// +optional
	SelectedServers int32 `json:"selectedServers"`

	// TaintedServers is the number of Servers carrying the rule's taint on the rule's
	// account (annotation ReadinessTaintsAnnotation), not counting an equal taint set by
	// someone else.
	// +optional
	TaintedServers int32 `json:"taintedServers"`

	// Conditions: Ready says whether the rule is enforced and, if not, why.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.enforcementMode`
// +kubebuilder:printcolumn:name="Selected",type=integer,JSONPath=`.status.selectedServers`
// +kubebuilder:printcolumn:name="Tainted",type=integer,JSONPath=`.status.taintedServers`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ServerReadinessRule taints the Servers it selects while they lack the conditions it lists,
// so that claims not tolerating the taint leave them alone until they are ready.
type ServerReadinessRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ServerReadinessRuleSpec `json:"spec"`
	// +optional
	Status ServerReadinessRuleStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ServerReadinessRuleList is a list of ServerReadinessRules.
type ServerReadinessRuleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServerReadinessRule `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ServerReadinessRule{}, &ServerReadinessRuleList{})
}

// Annotations and the finalizer of ServerReadinessRules.
const (
	// ServerReadinessRuleFinalizer holds a rule until no Server carries its taint.
	ServerReadinessRuleFinalizer = "readiness.metal.ironcore.dev/cleanup-taints"

	// BootstrapCompletedAnnotationPrefix followed by a rule's name marks (value "true") a
	// Server on which the BootstrapOnly rule of that name was met once: the rule leaves it
	// alone from then on. It stays when the rule is deleted, so a rule re-created under the
	// same name skips the Server too. An annotation key's name part is at most 63
	// characters, so a BootstrapOnly rule's name may have at most
	// MaxBootstrapOnlyRuleNameLength characters.
	BootstrapCompletedAnnotationPrefix = "readiness.metal.ironcore.dev/bootstrap-completed-"

	// MaxBootstrapOnlyRuleNameLength is the longest name of a BootstrapOnly rule whose
	// bootstrap-completed annotation key is valid.
	MaxBootstrapOnlyRuleNameLength = 63 - len("bootstrap-completed-")

	// ReadinessTaintsAnnotation records, as a JSON object from rule name to taint, the
	// taints a Server carries because a readiness rule put them there. A rule removes only
	// a taint recorded for it, never an equal one set by someone else; the record of a rule
	// that no longer exists lets its taint be removed without it.
	ReadinessTaintsAnnotation = "readiness.metal.ironcore.dev/taints"
)

// BootstrapCompletedAnnotation is the key of the annotation that marks a Server on which the
// BootstrapOnly rule of that name was met.
func BootstrapCompletedAnnotation(rule string) string {
	return BootstrapCompletedAnnotationPrefix + rule
}

// ReadinessTaints reads ReadinessTaintsAnnotation from an object's annotations: the taints
// it carries on account of readiness rules, by rule name. A missing or malformed annotation
// reads as none.
func ReadinessTaints(annotations map[string]string) map[string]Taint {
	v := annotations[ReadinessTaintsAnnotation]
	if v == "" {
		return nil
	}
	var out map[string]Taint
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return nil
	}
	return out
}
