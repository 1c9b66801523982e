package samples

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

func fromUnstructured(u *unstructured.Unstructured, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true)
}

func metav1LabelSelectorAsSelector(claim *metalv1alpha1.ServerClaim) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(claim.Spec.ServerSelector)
}

func labelsSet(m map[string]string) labels.Set { return labels.Set(m) }
