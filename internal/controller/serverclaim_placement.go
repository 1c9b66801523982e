package controller

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"k8s.io/apimachinery/pkg/labels"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/index"
)

// placementScore is the claim's preference among fitting servers (binding.PreferenceOf), or
// nil when it has none beyond today's spreading. For an anti-affinity group it reads the
// group's other claims through the index on spec.placement.group and the cached servers
// they name: work in the size of the group, not of the fleet.
func (r *ServerClaimReconciler) placementScore(ctx context.Context, claim *metalv1alpha1.ServerClaim) (func(binding.Candidate) int, error) {
	pl := claim.Spec.Placement
	if pl == nil {
		return nil, nil
	}
	domains := map[string]int{}
	if pl.Group != "" {
		list := &metalv1alpha1.ServerClaimList{}
		if err := r.List(ctx, list, client.InNamespace(claim.Namespace),
			client.MatchingFields{index.ClaimPlacementGroup: index.NamespacedKey(claim.Namespace, pl.Group)}); err != nil {
			return nil, fmt.Errorf("listing the claims of placement group %s: %w", pl.Group, err)
		}
		for i := range list.Items {
			other := &list.Items[i]
			if other.UID == claim.UID || other.Spec.ServerRef == nil {
				continue
			}
			s := &metalv1alpha1.Server{}
			if err := r.Get(ctx, client.ObjectKey{Name: other.Spec.ServerRef.Name}, s); err != nil {
				if client.IgnoreNotFound(err) == nil {
					continue
				}
				return nil, err
			}
			if d, ok := s.Labels[pl.TopologyKey]; ok {
				domains[d]++
			}
		}
	}
	pref, ok := binding.PreferenceOf(claim, domains)
	if !ok {
		return nil, nil
	}
	return pref.Score, nil
}

// holdForSet serves a member of a ServerClaimSet while its set's placement is taken: the
// claim takes the server the set assigned it, and only that one, as a proposal (the server's
// claim reference with the claim's uid) that it does not record. The server stays Available
// and off, since a claim naming no server confirms nothing (binding.Confirmed). The set
// records every member's server at once when all hold theirs, or deletes the members, which
// lets their proposals go. A server that cannot be taken is reported with its reason; the
// set sees it on the server and decides again.
func (r *ServerClaimReconciler) holdForSet(ctx context.Context, claim *metalv1alpha1.ServerClaim, sel labels.Selector, assigned string, held *metalv1alpha1.Server) (ctrl.Result, error) {
	if held != nil {
		// Held (the assigned server, or, should the assignment have changed, one the claim
		// took before: the set sees which and decides). The set's write wakes the claim.
		return ctrl.Result{}, nil
	}
	s := &metalv1alpha1.Server{}
	if err := r.Get(ctx, client.ObjectKey{Name: assigned}, s); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return r.setUnbound(ctx, claim, metalv1alpha1.ReasonServerNotFound,
				fmt.Sprintf("Server %s, assigned by the claim's set, does not exist", assigned), true)
		}
		return ctrl.Result{}, err
	}
	if reason, msg := binding.Check(s, claim, sel); reason != "" {
		return r.setUnbound(ctx, claim, reason, msg, true)
	}
	taken, err := r.take(ctx, claim, s)
	if err != nil || taken {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.Options.UnboundRetryMin / 4}, nil
}
