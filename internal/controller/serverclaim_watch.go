package controller

import (
	"context"
	"slices"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/index"
)

const (
	// wakeUnboundClaims is how many unbound selector claims a server that became free wakes:
	// it can satisfy one, and a few more cover claims that take another server meanwhile.
	// The others find servers on their own backoff.
	wakeUnboundClaims = 4
	// scanUnboundClaims bounds the claims looked at to find them.
	scanUnboundClaims = 256
)

type claimQueue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// serverEventHandler keeps the pool of free servers current and maps a server event to the
// claims it concerns, through field indexes and never a List of every claim:
//   - the claim its spec.serverClaimRef names (before and after the change);
//   - claims whose spec.serverRef names it, when something that decides claimability changed;
//   - a few unbound selector claims its labels may satisfy, when it became free.
func (r *ServerClaimReconciler) serverEventHandler() handler.EventHandler {
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q claimQueue) {
			s := e.Object.(*metalv1alpha1.Server)
			r.Pool.Observe(s)
			r.enqueueHolder(s, q, 0)
			r.enqueueNamingClaims(ctx, s, q)
			if binding.IsFree(s) {
				r.enqueueUnboundClaims(ctx, s, q)
			}
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q claimQueue) {
			old, s := e.ObjectOld.(*metalv1alpha1.Server), e.ObjectNew.(*metalv1alpha1.Server)
			r.Pool.Observe(s)
			r.enqueueHolder(old, q, 0)
			priority := 0
			if s.Status.State != old.Status.State {
				priority = finishFirst
			}
			r.enqueueHolder(s, q, priority)
			if claimabilityChanged(old, s) {
				r.enqueueNamingClaims(ctx, s, q)
				if binding.IsFree(s) {
					r.enqueueUnboundClaims(ctx, s, q)
				}
			}
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q claimQueue) {
			s, ok := e.Object.(*metalv1alpha1.Server)
			if !ok {
				return
			}
			r.Pool.Forget(s.Name)
			r.enqueueHolder(s, q, 0)
			r.enqueueNamingClaims(ctx, s, q)
		},
	}
}

// finishFirst is the queue priority of a claim whose server changed state (turned Reserved,
// most often): finishing a binding that waits for that beats starting another, so that a
// burst of claims binds them as it goes rather than all at its end.
const finishFirst = 1

// enqueueHolder enqueues the claim the server's spec.serverClaimRef names, at priority in the
// controller's priority queue (0: in turn).
func (r *ServerClaimReconciler) enqueueHolder(s *metalv1alpha1.Server, q claimQueue, priority int) {
	ref := s.Spec.ServerClaimRef
	if ref == nil {
		return
	}
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}}
	if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok && priority != 0 {
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(priority)}, req)
		return
	}
	q.Add(req)
}

// enqueueNamingClaims wakes the claims whose spec.serverRef names the server.
func (r *ServerClaimReconciler) enqueueNamingClaims(ctx context.Context, s *metalv1alpha1.Server, q claimQueue) {
	list := &metalv1alpha1.ServerClaimList{}
	if err := r.List(ctx, list, client.MatchingFields{index.ClaimServerRef: s.Name}, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing claims naming a server", "Server", s.Name)
		return
	}
	for i := range list.Items {
		q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
}

// enqueueUnboundClaims wakes a few unbound claims without spec.serverRef whose selector the
// server's labels satisfy, oldest first among those looked at.
func (r *ServerClaimReconciler) enqueueUnboundClaims(ctx context.Context, s *metalv1alpha1.Server, q claimQueue) {
	keys := make([]string, 0, len(s.Labels)+1)
	keys = append(keys, index.AnyLabel)
	for k, v := range s.Labels {
		keys = append(keys, index.LabelKey(k, v))
	}
	var found []*metalv1alpha1.ServerClaim
	seen := map[types.UID]bool{}
	scanned := 0
	for _, key := range keys {
		list := &metalv1alpha1.ServerClaimList{}
		if err := r.List(ctx, list, client.MatchingFields{index.ClaimUnboundLabel: key}, client.UnsafeDisableDeepCopy); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing unbound claims", "Server", s.Name)
			return
		}
		for i := range list.Items {
			c := &list.Items[i]
			if scanned >= scanUnboundClaims {
				break
			}
			scanned++
			if seen[c.UID] {
				continue
			}
			seen[c.UID] = true
			sel, err := claimSelector(c)
			if err != nil || (sel != nil && !sel.Matches(labels.Set(s.Labels))) {
				continue
			}
			if !binding.Tolerates(s.Spec.Taints, c.Spec.Tolerations) {
				continue
			}
			found = append(found, c)
		}
	}
	slices.SortFunc(found, func(a, b *metalv1alpha1.ServerClaim) int {
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	for _, c := range found[:min(len(found), wakeUnboundClaims)] {
		q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(c)})
	}
}

// claimabilityChanged reports whether a server update may change which claims can bind it.
func claimabilityChanged(old, s *metalv1alpha1.Server) bool {
	return binding.IsFree(old) != binding.IsFree(s) ||
		old.Status.State != s.Status.State ||
		old.Status.PowerState != s.Status.PowerState ||
		old.Spec.Unclaimable != s.Spec.Unclaimable ||
		(old.Spec.ServerClaimRef == nil) != (s.Spec.ServerClaimRef == nil) ||
		!s.DeletionTimestamp.Equal(old.DeletionTimestamp) ||
		!slices.Equal(old.Spec.Taints, s.Spec.Taints) ||
		!labels.Equals(old.Labels, s.Labels) ||
		binding.IsParked(old) != binding.IsParked(s)
}
