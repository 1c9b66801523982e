package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
)

// ServerQuotas (fleet.metalfleet.dev) cap the servers a namespace's claims hold. A claim
// consumes its share before it takes a server: one status patch of each quota whose limits
// the server matches, adding the claim's allocation under the quota's resourceVersion (see
// docs/concepts/serverquota.md). Two managers that race for the last share both write from
// the same version; one of the writes fails, and that claim looks again. A namespace without
// quotas pays one cache List per take and no write.

// +kubebuilder:rbac:groups=fleet.metalfleet.dev,resources=serverquotas,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.metalfleet.dev,resources=serverquotas/status,verbs=patch

// quotaAllocationRefresh is the age past which a claim's unchanged allocation is written
// again before a take; the quota controller's grace must be well above it.
const quotaAllocationRefresh = 10 * time.Second

// quotaExceededError says that a limit of a quota has no room for the claim's server.
type quotaExceededError struct {
	quota, limit string
	max          int32
}

func (e *quotaExceededError) Error() string {
	return fmt.Sprintf("ServerQuota %s: limit %s allows %d servers, all held by other claims of the namespace", e.quota, e.limit, e.max)
}

// namespaceQuotas lists the quotas of the claim's namespace from the cache; a quota the
// cache shows older than this controller's own last write to it is read around the cache,
// so that the next allocation starts from that write.
func (r *ServerClaimReconciler) namespaceQuotas(ctx context.Context, ns string) ([]fleetv1alpha1.ServerQuota, error) {
	list := &fleetv1alpha1.ServerQuotaList{}
	if err := r.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing ServerQuotas: %w", err)
	}
	out := list.Items[:0]
	for i := range list.Items {
		q := &list.Items[i]
		if trusted, _ := r.versions.Observe(quotaVersionKey(q), q.ResourceVersion); !trusted {
			if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(q), q); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("reading ServerQuota %s: %w", q.Name, err)
			}
		}
		out = append(out, *q)
	}
	return out, nil
}

// quotaVersionKey is a quota's key in the claim controller's version store (apart from the
// claims' keys).
func quotaVersionKey(q *fleetv1alpha1.ServerQuota) string { return "ServerQuota/" + versionKey(q) }

// patchQuotaStatus writes a quota's status under its resourceVersion and remembers the write.
func (r *ServerClaimReconciler) patchQuotaStatus(ctx context.Context, q, base *fleetv1alpha1.ServerQuota) error {
	q.Status.Used = binding.QuotaUsage(q)
	if err := r.Status().Patch(ctx, q, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	r.versions.Expect(quotaVersionKey(q), q.ResourceVersion)
	return nil
}

// quotaBlocks returns the error of the first quota limit that has no room for the server
// with these labels, as the cached quotas show it, or nil: a filter for candidates before any
// write.
func quotaBlocks(quotas []fleetv1alpha1.ServerQuota, claim *metalv1alpha1.ServerClaim, serverLabels map[string]string) *quotaExceededError {
	for i := range quotas {
		q := &quotas[i]
		if full := binding.QuotaFull(q, string(claim.UID), binding.QuotaLimitsFor(q, serverLabels)); full != "" {
			return &quotaExceededError{quota: q.Name, limit: full, max: limitMax(q, full)}
		}
	}
	return nil
}

func limitMax(q *fleetv1alpha1.ServerQuota, name string) int32 {
	for _, l := range q.Spec.Hard {
		if l.Name == name {
			return l.Max
		}
	}
	return 0
}

// consumeQuotas writes the claim's allocation for server s into every quota of its namespace
// whose limits s matches (and drops an allocation for another server from quotas s does not
// concern), each under the quota's resourceVersion as the cache shows it. It returns a
// *quotaExceededError when a limit has no room, and a conflict error when a quota changed
// since the cache showed it (the caller looks again).
func (r *ServerClaimReconciler) consumeQuotas(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) error {
	quotas, err := r.namespaceQuotas(ctx, claim.Namespace)
	if err != nil || len(quotas) == 0 {
		return err
	}
	for i := range quotas {
		q := &quotas[i]
		limits := binding.QuotaLimitsFor(q, s.Labels)
		if full := binding.QuotaFull(q, string(claim.UID), limits); full != "" {
			return &quotaExceededError{quota: q.Name, limit: full, max: limitMax(q, full)}
		}
		base := q.DeepCopy()
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		changed := binding.SetQuotaAllocation(q, fleetv1alpha1.QuotaAllocation{
			ClaimName: claim.Name, ClaimUID: string(claim.UID), Server: s.Name, Limits: limits, Since: now,
		})
		if !changed {
			// An allocation unchanged and recent is trusted as the cache shows it; an older
			// one is written again (a newer since), so that one the quota controller reclaimed
			// meanwhile fails on the resourceVersion instead of being taken for granted.
			cur := binding.QuotaAllocationOf(q, string(claim.UID))
			if cur == nil || time.Since(cur.Since.Time) <= quotaAllocationRefresh {
				continue
			}
			cur.Since = now
		}
		if err := r.patchQuotaStatus(ctx, q, base); err != nil {
			if apierrors.IsNotFound(err) {
				continue // deleted meanwhile: it limits nothing any more
			}
			return fmt.Errorf("allocating from ServerQuota %s: %w", q.Name, err)
		}
	}
	return nil
}

// syncAllocations makes the allocations of a claim that holds server s name s, in every quota
// of its namespace whose limits s matches: after a race in which another manager's server
// was recorded on the claim, or for a binding older than the quota. It never refuses (a
// binding is never undone for a quota) and writes only what differs.
func (r *ServerClaimReconciler) syncAllocations(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) error {
	quotas, err := r.namespaceQuotas(ctx, claim.Namespace)
	if err != nil || len(quotas) == 0 {
		return err
	}
	for i := range quotas {
		q := &quotas[i]
		base := q.DeepCopy()
		if !binding.SetQuotaAllocation(q, fleetv1alpha1.QuotaAllocation{
			ClaimName: claim.Name, ClaimUID: string(claim.UID), Server: s.Name,
			Limits: binding.QuotaLimitsFor(q, s.Labels), Since: metav1.NewTime(time.Now().Truncate(time.Second)),
		}) {
			continue
		}
		if err := r.patchQuotaStatus(ctx, q, base); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("recording the allocation of server %s in ServerQuota %s: %w", s.Name, q.Name, err)
		}
	}
	return nil
}

// quotaFreed wakes the claims of a quota's namespace that wait with QuotaExceeded when the
// quota may have room again: an allocation was dropped, or its spec changed.
func (r *ServerClaimReconciler) quotaFreed() handler.EventHandler {
	return handler.Funcs{
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q claimQueue) {
			o, n := e.ObjectOld.(*fleetv1alpha1.ServerQuota), e.ObjectNew.(*fleetv1alpha1.ServerQuota)
			if len(n.Status.Allocations) >= len(o.Status.Allocations) && n.Generation == o.Generation {
				return
			}
			list := &metalv1alpha1.ServerClaimList{}
			if err := r.List(ctx, list, client.InNamespace(n.Namespace), client.UnsafeDisableDeepCopy); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "Listing claims waiting for quota", "ServerQuota", n.Name)
				return
			}
			for i := range list.Items {
				c := &list.Items[i]
				if cond := meta.FindStatusCondition(c.Status.Conditions, metalv1alpha1.ServerClaimBound); cond != nil &&
					cond.Reason == metalv1alpha1.ReasonQuotaExceeded {
					q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(c)})
				}
			}
		},
	}
}

// asQuotaExceeded returns err as a *quotaExceededError, if it is one.
func asQuotaExceeded(err error) (*quotaExceededError, bool) {
	var qe *quotaExceededError
	ok := errors.As(err, &qe)
	return qe, ok
}
