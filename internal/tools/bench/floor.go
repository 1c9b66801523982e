package bench

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
)

// floorWorkers is how many bindings the floor makes at once, as many as the claim
// controller's default workers.
const floorWorkers = 10

// bindFloor is the floor of a burst: without the operator, the harness makes, as the
// operator's user, exactly the writes the design needs per binding (docs/performance.md):
// the server's claim and boot configuration references (one locked patch), the claim's
// finalizer and spec.serverRef (one locked patch), the boot configuration's create, the
// server's Reserved status and the claim's Bound status. Claim i takes server i of the
// listed ones: no decision is made, so what is left is the cost of the writes themselves,
// to the API server and etcd, for the same number of bindings in the same run. The writes
// carry what the operator's carry (the boot configuration's owner, the claim's Ready
// condition), on the objects the operator leaves before a burst (startWriter lets it settle
// the servers, then stops it): the API server's cost per patch grows with the object.
//
// reader lists (as the harness); writer writes (as the operator's user, so that the audit log
// counts exactly the floor's writes).
func bindFloor(ctx context.Context, reader, writer client.Client, claims int) error {
	c := reader
	servers := &metalv1alpha1.ServerList{}
	if err := c.List(ctx, servers); err != nil {
		return err
	}
	list := &metalv1alpha1.ServerClaimList{}
	var cl []metalv1alpha1.ServerClaim
	// The claims were created just now: wait until all are listed.
	if err := retry.OnError(retry.DefaultBackoff, func(error) bool { return true }, func() error {
		if err := c.List(ctx, list, client.InNamespace(benchNamespace)); err != nil {
			return err
		}
		if len(list.Items) < claims {
			return fmt.Errorf("%d of %d claims listed", len(list.Items), claims)
		}
		cl = list.Items
		return nil
	}); err != nil {
		return err
	}
	n := min(len(cl), len(servers.Items))
	return parallel(ctx, n, floorWorkers, func(i int) error { return bindOne(ctx, writer, &servers.Items[i], &cl[i]) })
}

// bindOne makes the five writes of one binding.
func bindOne(ctx context.Context, c client.Client, s *metalv1alpha1.Server, claim *metalv1alpha1.ServerClaim) error {
	lock := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
	s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: claim.Namespace, Name: claim.Name, UID: string(claim.UID)}
	s.Spec.BootConfigurationRef = &metalv1alpha1.ObjectReference{Namespace: claim.Namespace, Name: claim.Name}
	if err := c.Patch(ctx, s, lock); err != nil {
		return fmt.Errorf("taking server %s: %w", s.Name, err)
	}
	claimLock := client.MergeFromWithOptions(claim.DeepCopy(), client.MergeFromWithOptimisticLock{})
	claim.Finalizers = append(claim.Finalizers, metalv1alpha1.ServerClaimFinalizer)
	claim.Spec.ServerRef = &metalv1alpha1.LocalObjectReference{Name: s.Name}
	if err := c.Patch(ctx, claim, claimLock); err != nil {
		return fmt.Errorf("recording claim %s: %w", claim.Name, err)
	}
	sbc := &metalv1alpha1.ServerBootConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: claim.Namespace, Name: claim.Name},
		Spec: metalv1alpha1.ServerBootConfigurationSpec{
			ServerRef: metalv1alpha1.LocalObjectReference{Name: s.Name}, Image: claim.Spec.Image,
			IgnitionSecretRef: claim.Spec.IgnitionSecretRef,
		},
	}
	if err := controllerutil.SetControllerReference(claim, sbc, c.Scheme()); err != nil {
		return err
	}
	if err := c.Create(ctx, sbc); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the boot configuration of %s: %w", claim.Name, err)
	}
	statusBase := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
	s.Status.State = metalv1alpha1.ServerStateReserved
	if err := c.Status().Patch(ctx, s, statusBase); err != nil {
		return fmt.Errorf("reserving server %s: %w", s.Name, err)
	}
	claimStatus := client.MergeFromWithOptions(claim.DeepCopy(), client.MergeFromWithOptimisticLock{})
	claim.Status.Phase = metalv1alpha1.PhaseBound
	claim.Status.ObservedGeneration = claim.Generation
	meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{Type: metalv1alpha1.ServerClaimBound,
		Status: metav1.ConditionTrue, Reason: metalv1alpha1.ReasonBound, Message: "Bound to server " + s.Name,
		ObservedGeneration: claim.Generation})
	// The status the operator writes: Bound, and Ready as far as it is.
	ready := binding.ReadyCondition(claim, s, sbc, "")
	ready.ObservedGeneration = claim.Generation
	meta.SetStatusCondition(&claim.Status.Conditions, ready)
	if err := c.Status().Patch(ctx, claim, claimStatus); err != nil {
		return fmt.Errorf("marking claim %s Bound: %w", claim.Name, err)
	}
	return nil
}
