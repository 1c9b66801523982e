package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Keys of a BMCSecret's data.
const (
	// BMCSecretUsernameKey holds the BMC user name.
	BMCSecretUsernameKey = "username"
	// BMCSecretPasswordKey holds the BMC password.
	BMCSecretPasswordKey = "password"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=bmcsec
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.immutable) || !oldSelf.immutable || (has(self.immutable) && self.immutable)",message="immutable cannot be unset once true"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.immutable) || !oldSelf.immutable || (has(self.data) == has(oldSelf.data) && (!has(self.data) || self.data == oldSelf.data))",message="data is immutable while immutable is true"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.immutable) || !oldSelf.immutable || (has(self.stringData) == has(oldSelf.stringData) && (!has(self.stringData) || self.stringData == oldSelf.stringData))",message="stringData is immutable while immutable is true"

// BMCSecret holds the credentials of one or more BMCs. Like a core Secret, its fields sit at
// the top level.
type BMCSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Immutable, when true, forbids changing data and stringData, and cannot be unset again
	// (as for a core Secret).
	// +optional
	Immutable *bool `json:"immutable,omitempty"`

	// Data holds the credentials, base64-encoded: keys username and password.
	// +optional
	Data map[string][]byte `json:"data,omitempty"`

	// StringData holds credentials as plain strings; merged into data on write.
	// +optional
	StringData map[string]string `json:"stringData,omitempty"`

	// Type of the secret.
	// +optional
	Type corev1.SecretType `json:"type,omitempty"`
}

// +kubebuilder:object:root=true

// BMCSecretList is a list of BMCSecrets.
type BMCSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BMCSecret `json:"items"`
}

// Credentials returns the username and password of the secret, taking stringData over
// data as the API server would have merged it.
func (s *BMCSecret) Credentials() (username, password string, ok bool) {
	get := func(key string) (string, bool) {
		if v, found := s.StringData[key]; found {
			return v, true
		}
		v, found := s.Data[key]
		return string(v), found
	}
	username, uok := get(BMCSecretUsernameKey)
	password, pok := get(BMCSecretPasswordKey)
	return username, password, uok && pok && username != ""
}

func init() {
	SchemeBuilder.Register(&BMCSecret{}, &BMCSecretList{})
}
