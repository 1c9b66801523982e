package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverbootconfigurations/status,verbs=patch

// openBootWindow says on a boot configuration that its server is about to boot from the
// network: it opens a new boot-credential window and drops what the previous boot left (its
// credential hash, pinned address, fetch count). The boot server issues the credential on
// the first iPXE request inside the window (docs/security.md). Written under the optimistic
// lock, so a credential issued concurrently is not silently dropped: the conflict sends the
// server round again.
func (r *ServerReconciler) openBootWindow(ctx context.Context, sbc *metalv1alpha1.ServerBootConfiguration) error {
	before := sbc.DeepCopy()
	if c := sbc.Status.BootCredential; c != nil && c.Hash != "" && !c.BootDone && c.IgnitionFetches == 0 {
		// A credential of an earlier attempt was issued and its boot never fetched the
		// ignition: say so before the new window drops its pinned address.
		meta.SetStatusCondition(&sbc.Status.Conditions, metav1.Condition{
			Type: metalv1alpha1.BootConfigurationBootCredentialMisused, Status: metav1.ConditionTrue,
			Reason: metalv1alpha1.ReasonBootNotCompleted, ObservedGeneration: sbc.Generation,
			Message: fmt.Sprintf("An earlier boot credential was issued to %s and its boot did not complete; a new boot window opens", c.PinnedIP),
		})
	}
	sbc.Status.BootCredential = &metalv1alpha1.BootCredentialStatus{WindowOpenedAt: metav1.Now()}
	if err := r.Status().Patch(ctx, sbc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("opening the boot window of ServerBootConfiguration %s/%s: %w", sbc.Namespace, sbc.Name, err)
	}
	return nil
}
