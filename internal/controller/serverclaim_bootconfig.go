package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// ensureBootConfiguration creates the claim's ServerBootConfiguration, or brings its spec in
// line with the claim. It returns the configuration as the cache has it (nil right after
// creating it) and a problem message when a foreign object stands in the way.
func (r *ServerClaimReconciler) ensureBootConfiguration(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) (*metalv1alpha1.ServerBootConfiguration, string, error) {
	want := metalv1alpha1.ServerBootConfigurationSpec{
		ServerRef:         metalv1alpha1.LocalObjectReference{Name: s.Name},
		Image:             claim.Spec.Image,
		IgnitionSecretRef: claim.Spec.IgnitionSecretRef,
	}
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	err := r.Get(ctx, client.ObjectKeyFromObject(claim), sbc)
	switch {
	case apierrors.IsNotFound(err):
		if r.expect.bootConfigurationCreated(claim.UID) {
			return nil, "", nil // created by us, not in the cache yet
		}
		sbc = &metalv1alpha1.ServerBootConfiguration{
			ObjectMeta: metav1.ObjectMeta{Namespace: claim.Namespace, Name: claim.Name},
			Spec:       want,
		}
		if err := controllerutil.SetControllerReference(claim, sbc, r.Scheme); err != nil {
			return nil, "", err
		}
		if err := r.Create(ctx, sbc); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, "", fmt.Errorf("creating ServerBootConfiguration %s: %w", claim.Name, err)
		}
		r.expect.setBootConfigurationCreated(claim.UID)
		return nil, "", nil
	case err != nil:
		return nil, "", err
	}
	r.expect.observedBootConfiguration(claim.UID)
	if !metav1.IsControlledBy(sbc, claim) {
		return sbc, fmt.Sprintf("ServerBootConfiguration %s/%s exists and is not owned by this claim", sbc.Namespace, sbc.Name), nil
	}
	if !bootSpecEqual(sbc.Spec, want) {
		base := sbc.DeepCopy()
		sbc.Spec = want
		if err := r.Patch(ctx, sbc, client.MergeFrom(base)); err != nil {
			return nil, "", fmt.Errorf("updating ServerBootConfiguration %s: %w", sbc.Name, err)
		}
	}
	return sbc, "", nil
}

func bootSpecEqual(a, b metalv1alpha1.ServerBootConfigurationSpec) bool {
	if a.ServerRef != b.ServerRef || a.Image != b.Image {
		return false
	}
	if (a.IgnitionSecretRef == nil) != (b.IgnitionSecretRef == nil) {
		return false
	}
	return a.IgnitionSecretRef == nil || *a.IgnitionSecretRef == *b.IgnitionSecretRef
}

// deleteBootConfiguration deletes the claim's boot configuration, if the claim owns it.
func (r *ServerClaimReconciler) deleteBootConfiguration(ctx context.Context, claim *metalv1alpha1.ServerClaim) error {
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	if err := r.Get(ctx, client.ObjectKeyFromObject(claim), sbc); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(sbc, claim) {
		return nil
	}
	r.expect.observedBootConfiguration(claim.UID)
	if err := r.Delete(ctx, sbc, client.Preconditions{UID: &sbc.UID}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting ServerBootConfiguration %s: %w", sbc.Name, err)
	}
	return nil
}
