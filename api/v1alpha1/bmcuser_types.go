package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BMCUserFinalizer holds a BMCUser until its account is removed from (or disabled on) the BMC.
const BMCUserFinalizer = "metal.ironcore.dev/bmcuser"

// OperationAnnotationRotateCredentials on a BMCUser asks for a new password at once; the
// controller removes the annotation when it has made the new secret.
const OperationAnnotationRotateCredentials = "rotate-credentials"

// BMCUserUIDLabel on a BMCSecret holds the uid of the BMCUser that generated it (a name may
// be longer than a label value can be).
const BMCUserUIDLabel = "metal.ironcore.dev/bmcuser-uid"

// BMCUserSpec is the account a BMCUser keeps on a BMC.
type BMCUserSpec struct {
	// UserName of the account on the BMC.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	UserName string `json:"userName"`

	// RoleID is the Redfish RoleId of the account, e.g. Administrator, Operator or ReadOnly.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	RoleID string `json:"roleID"`

	// Description of the account, for people; the controller does not use it.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// RotationPeriod is how often the password is replaced; unset means never on a schedule.
	// +optional
	RotationPeriod *metav1.Duration `json:"rotationPeriod,omitempty"`

	// BMCSecretRef names the BMCSecret whose password the account should have. When unset, the
	// controller generates a password, keeps it in a BMCSecret it owns and sets this reference;
	// it sets it again on every rotation.
	// +optional
	BMCSecretRef *LocalObjectReference `json:"bmcSecretRef,omitempty"`

	// BMCRef names the BMC the account is on. Without it the BMCUser does nothing.
	// +optional
	BMCRef *LocalObjectReference `json:"bmcRef,omitempty"`
}

// BMCUserStatus is the observed state of a BMCUser.
type BMCUserStatus struct {
	// EffectiveBMCSecretRef names the BMCSecret whose credentials were last proven to log in
	// to the BMC. It follows spec.bmcSecretRef only once the new secret works.
	// +optional
	EffectiveBMCSecretRef *LocalObjectReference `json:"effectiveBMCSecretRef,omitempty"`

	// LastRotation is when the account last got a new password.
	// +optional
	LastRotation *metav1.Time `json:"lastRotation,omitempty"`

	// PasswordExpiration is when the BMC says the password expires, if it says so.
	// +optional
	PasswordExpiration *metav1.Time `json:"passwordExpiration,omitempty"`

	// ID is the Redfish Id of the account on the BMC.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ID string `json:"id,omitempty"`

	// ObservedGeneration is the generation of the spec the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions say whether the account is in place with a working password, and why not.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=bmcu
// +kubebuilder:deprecatedversion:warning="metal.ironcore.dev/v1alpha1 BMCUser is deprecated"
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="UserName",type=string,JSONPath=`.spec.userName`
// +kubebuilder:printcolumn:name="RoleID",type=string,JSONPath=`.spec.roleID`
// +kubebuilder:printcolumn:name="LastRotation",type=date,JSONPath=`.status.lastRotation`
// +kubebuilder:printcolumn:name="PasswordExpiration",type=date,JSONPath=`.status.passwordExpiration`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// BMCUser is an account on a BMC that the operator creates, keeps in the role asked for and
// whose password it generates and rotates. It is deprecated and kept so that existing
// manifests apply and keep working.
type BMCUser struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BMCUserSpec `json:"spec"`
	// +optional
	Status BMCUserStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// BMCUserList is a list of BMCUsers.
type BMCUserList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BMCUser `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BMCUser{}, &BMCUserList{})
}
