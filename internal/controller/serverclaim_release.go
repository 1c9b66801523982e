package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/index"
)

// releaseExtra undoes a binding this claim must not keep: a second server (which only a
// lost race can produce) or a server other than the one spec.serverRef names. Only the
// claim's references are removed, under the server's optimistic lock; the server controller
// powers it off if it had been Reserved.
func (r *ServerClaimReconciler) releaseExtra(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) error {
	if err := r.clearServerRefs(ctx, claim, s); err != nil {
		return err
	}
	r.Recorder.Eventf(claim, s, "Warning", "ExtraServerReleased", "Release",
		"Released server %s, which held this claim although the claim is bound to another server", s.Name)
	return nil
}

// clearServerRefs removes the claim's references from a server, if the copy the caller
// decided on holds them, under that copy's resourceVersion: a server that changed since
// (taken up, refused and taken by another claim) is not touched, and the conflict sends the
// caller round again.
func (r *ServerClaimReconciler) clearServerRefs(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) error {
	if name, ok := r.expect.server(claim.UID); ok && name == s.Name {
		r.expect.observedServer(claim.UID)
	}
	if !binding.HeldBy(s, claim) {
		return nil
	}
	_, err := patchLocked(ctx, r.Client, s, func(o *metalv1alpha1.Server) {
		o.Spec.ServerClaimRef = nil
		if ref := o.Spec.BootConfigurationRef; ref != nil && ref.Namespace == claim.Namespace && ref.Name == claim.Name {
			o.Spec.BootConfigurationRef = nil
		}
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("releasing server %s: %w", s.Name, err)
	}
	return nil
}

// reconcileDelete removes the claim's boot configuration, undoes a binding the server never
// took up, and lets the claim go. Powering the server off and applying its reclaim policy is
// the server controller's job; the claim does not wait for it, so a claim on an unreachable
// server stays deletable.
func (r *ServerClaimReconciler) reconcileDelete(ctx context.Context, claim *metalv1alpha1.ServerClaim) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(claim, metalv1alpha1.ServerClaimFinalizer) {
		r.expect.forget(claim.UID)
		return ctrl.Result{}, nil
	}
	if err := r.deleteBootConfiguration(ctx, claim); err != nil {
		return ctrl.Result{}, err
	}

	held, err := r.heldServers(ctx, claim)
	if err != nil {
		return ctrl.Result{}, err
	}
	for _, s := range held {
		if binding.TakenUp(s, claim) {
			// Released by the server controller once the claim is gone.
			r.Recorder.Eventf(claim, s, "Normal", "Unbinding", "Delete",
				"Claim deleted; server %s is powered off and reclaimed by its policy", s.Name)
			continue
		}
		// Never taken up: nothing was booted for this claim, so the binding is simply undone
		// (a Retain policy does not apply to a server the claim never had).
		if err := r.clearServerRefs(ctx, claim, s); err != nil {
			return ctrl.Result{}, err
		}
	}

	base := claim.DeepCopy()
	controllerutil.RemoveFinalizer(claim, metalv1alpha1.ServerClaimFinalizer)
	if err := r.Patch(ctx, claim, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("removing the finalizer: %w", err)
	}
	r.expect.forget(claim.UID)
	return ctrl.Result{}, nil
}

// releaseOrphans undoes bindings to a claim that is gone before it recorded them: a claim
// deleted between the server patch and its own patch had no finalizer, so it vanished
// without cleaning up. Only servers that never took the binding up (not Reserved) are
// released here, after confirming around the cache that the claim they hold is gone; a
// Reserved server is released by the server controller.
func (r *ServerClaimReconciler) releaseOrphans(ctx context.Context, key types.NamespacedName) error {
	list := &metalv1alpha1.ServerList{}
	if err := r.List(ctx, list, client.MatchingFields{index.ServerClaimKey: index.NamespacedKey(key.Namespace, key.Name)}); err != nil {
		return fmt.Errorf("listing servers holding %s: %w", key, err)
	}
	var live *metalv1alpha1.ServerClaim
	for i := range list.Items {
		s := &list.Items[i]
		if s.Status.State != metalv1alpha1.ServerStateAvailable && s.Status.State != metalv1alpha1.ServerStateInitial &&
			s.Status.State != metalv1alpha1.ServerStateDiscovery && s.Status.State != "" {
			continue // taken up, or in Error: the server controller releases it
		}
		if live == nil {
			live = &metalv1alpha1.ServerClaim{}
			if err := r.APIReader.Get(ctx, key, live); err != nil {
				if !apierrors.IsNotFound(err) {
					return fmt.Errorf("confirming that claim %s is gone: %w", key, err)
				}
				live.UID = ""
			}
		}
		if live.UID != "" && (s.Spec.ServerClaimRef.UID == "" || s.Spec.ServerClaimRef.UID == string(live.UID)) {
			continue // the claim exists after all: the cache was behind
		}
		orphan := &metalv1alpha1.ServerClaim{ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace, Name: key.Name, UID: types.UID(s.Spec.ServerClaimRef.UID)}}
		if err := r.clearServerRefs(ctx, orphan, s); err != nil {
			return err
		}
		r.expect.forget(orphan.UID)
	}
	return nil
}
