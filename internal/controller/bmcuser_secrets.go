package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
)

// rotationDue says why the password in use is to be replaced now ("" if it is not) and, if
// not, how long until it is (0: never by schedule). An expiration the BMC reports for a
// password older than status.lastRotation is not taken for the new one's.
func rotationDue(u *metalv1alpha1.BMCUser, cur *bmc.Account, now time.Time) (string, time.Duration) {
	if u.Annotations[metalv1alpha1.OperationAnnotation] == metalv1alpha1.OperationAnnotationRotateCredentials {
		return newSecretRequested, 0
	}
	last := u.Status.LastRotation
	var next time.Duration
	if cur != nil && !cur.PasswordExpiration.IsZero() && (last == nil || last.Time.Before(cur.PasswordExpiration)) {
		if !cur.PasswordExpiration.After(now) {
			return newSecretExpired, 0
		}
		next = cur.PasswordExpiration.Sub(now)
	}
	if p := u.Spec.RotationPeriod; p != nil && p.Duration > 0 && last != nil {
		at := last.Add(p.Duration)
		if !at.After(now) {
			return newSecretScheduled, 0
		}
		if d := at.Sub(now); next == 0 || d < next {
			next = d
		}
	}
	return "", next
}

// newSecretReason says why the BMCUser needs a new generated secret ("" if it does not). A
// due rotation waits while a secret is on its way into use, unless it was asked for.
func (r *BMCUserReconciler) newSecretReason(u *metalv1alpha1.BMCUser, secret *metalv1alpha1.BMCSecret, due string) string {
	inUse := u.Spec.BMCSecretRef != nil && u.Status.EffectiveBMCSecretRef != nil &&
		u.Status.EffectiveBMCSecretRef.Name == u.Spec.BMCSecretRef.Name
	switch {
	case u.Spec.BMCSecretRef == nil:
		return newSecretInitial
	case due == newSecretRequested:
		return due
	case secret != nil && metav1.IsControlledBy(secret, u):
		if user, _, _ := secret.Credentials(); user != u.Spec.UserName {
			return newSecretUserName
		}
	}
	if inUse {
		return due
	}
	return ""
}

// readSecret reads a BMCSecret from the cache, or around it when the cache does not have it
// (yet). It returns nil for a secret that does not exist, or no reference.
func (r *BMCUserReconciler) readSecret(ctx context.Context, ref *metalv1alpha1.LocalObjectReference) (*metalv1alpha1.BMCSecret, error) {
	if ref == nil {
		return nil, nil
	}
	s := &metalv1alpha1.BMCSecret{}
	err := r.Get(ctx, client.ObjectKey{Name: ref.Name}, s)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, client.ObjectKey{Name: ref.Name}, s)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading BMCSecret %s: %w", ref.Name, err)
	}
	return s, nil
}

// generateSecret generates a password within the BMC's rules, keeps it in a new immutable
// BMCSecret owned by the BMCUser and points spec.bmcSecretRef at it, removing the
// rotate-credentials annotation in the same write.
func (r *BMCUserReconciler) generateSecret(ctx context.Context, sc *bmcUserScope, t *bmcUserTarget, svc bmc.AccountService, why string) (*metalv1alpha1.BMCSecret, error) {
	u := sc.obj
	password, err := bmc.GeneratePassword(svc, t.obj.Status.Manufacturer)
	if errors.Is(err, bmc.ErrPasswordRules) {
		return nil, access.NewError(metalv1alpha1.ReasonInvalidPasswordPolicy, "BMC %s: %v", t.obj.Name, err)
	}
	if err != nil {
		return nil, err
	}
	immutable := true
	secret := &metalv1alpha1.BMCSecret{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: u.Name + "-",
			Labels:       map[string]string{metalv1alpha1.BMCUserUIDLabel: string(u.UID)},
		},
		Immutable: &immutable,
		Data: map[string][]byte{
			metalv1alpha1.BMCSecretUsernameKey: []byte(u.Spec.UserName),
			metalv1alpha1.BMCSecretPasswordKey: []byte(password),
		},
	}
	if err := controllerutil.SetControllerReference(u, secret, r.Scheme); err != nil {
		return nil, fmt.Errorf("owning the new BMCSecret: %w", err)
	}
	if err := r.Create(ctx, secret); err != nil {
		return nil, fmt.Errorf("creating a BMCSecret: %w", err)
	}
	err = r.writer.patchSpec(ctx, sc, func(o *metalv1alpha1.BMCUser) {
		o.Spec.BMCSecretRef = &metalv1alpha1.LocalObjectReference{Name: secret.Name}
		if o.Annotations[metalv1alpha1.OperationAnnotation] == metalv1alpha1.OperationAnnotationRotateCredentials {
			delete(o.Annotations, metalv1alpha1.OperationAnnotation)
		}
	})
	if err != nil {
		// Nothing refers to the secret: take it back (the owner reference would, later).
		_ = r.Delete(ctx, secret, client.Preconditions{UID: &secret.UID})
		return nil, err
	}
	ctrl.LoggerFrom(ctx).Info("Generated a BMCSecret", "BMCSecret", secret.Name, "why", why)
	sc.eventf(nil, corev1.EventTypeNormal, "SecretGenerated", "Rotate",
		"Generated BMCSecret %s (%s)", secret.Name, why)
	return secret, nil
}

// pruneSecrets deletes the BMCSecrets the BMCUser generated, except the last
// keepGeneratedSecrets and those spec or status refer to.
func (r *BMCUserReconciler) pruneSecrets(ctx context.Context, u *metalv1alpha1.BMCUser) error {
	var list metalv1alpha1.BMCSecretList
	if err := r.List(ctx, &list, client.MatchingLabels{metalv1alpha1.BMCUserUIDLabel: string(u.UID)}); err != nil {
		return fmt.Errorf("listing the generated BMCSecrets: %w", err)
	}
	var owned []*metalv1alpha1.BMCSecret
	for i := range list.Items {
		if s := &list.Items[i]; metav1.IsControlledBy(s, u) && s.DeletionTimestamp.IsZero() {
			owned = append(owned, s)
		}
	}
	// Newest first.
	slices.SortFunc(owned, func(a, b *metalv1alpha1.BMCSecret) int {
		if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(b.Name, a.Name)
	})
	inUse := func(name string) bool {
		return (u.Spec.BMCSecretRef != nil && u.Spec.BMCSecretRef.Name == name) ||
			(u.Status.EffectiveBMCSecretRef != nil && u.Status.EffectiveBMCSecretRef.Name == name)
	}
	for i, s := range owned {
		if i < keepGeneratedSecrets || inUse(s.Name) {
			continue
		}
		if err := r.Delete(ctx, s, client.Preconditions{UID: &s.UID}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting the old BMCSecret %s: %w", s.Name, err)
		}
		ctrl.LoggerFrom(ctx).V(1).Info("Deleted an old generated BMCSecret", "BMCSecret", s.Name)
	}
	return nil
}
