package controller

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/index"
)

// claimChangedForServer lets through claim changes a server acts on: creation, deletion, the
// start of deletion, a change of spec.power, and the claim recording its server
// (spec.serverRef set): a server takes a binding up only once the claim has recorded it.
// Status writes are ignored (the server learns of the end of a binding from its own spec),
// except the one that reports the end of the claim's lease.
func claimChangedForServer() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*metalv1alpha1.ServerClaim)
			n, ok2 := e.ObjectNew.(*metalv1alpha1.ServerClaim)
			if !ok1 || !ok2 {
				return true
			}
			return o.Spec.Power != n.Spec.Power || !o.DeletionTimestamp.Equal(n.DeletionTimestamp) ||
				(o.Spec.ServerRef == nil) != (n.Spec.ServerRef == nil) ||
				binding.LeaseExpiredReported(o) != binding.LeaseExpiredReported(n)
		},
	}
}

// bootConfigurationChangedForServer lets through boot configuration changes a server acts
// on: deletion, a change of status.state or spec, and the creation of one that already has a
// state (as after a restart; a new one has none, and its server waits for it to turn Ready:
// a reconcile per binding saved).
func bootConfigurationChangedForServer() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool {
			sbc, ok := e.Object.(*metalv1alpha1.ServerBootConfiguration)
			return !ok || sbc.Status.State != ""
		},
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*metalv1alpha1.ServerBootConfiguration)
			n, ok2 := e.ObjectNew.(*metalv1alpha1.ServerBootConfiguration)
			return !ok1 || !ok2 || o.Status.State != n.Status.State || o.Generation != n.Generation
		},
	}
}

// bmcChangedForServer lets through BMC changes that can make its servers reachable or not:
// the BMC turning usable or unusable for them (access.Usable), a spec change, another
// address to reach it at (access.Address). A new BMC's first status (no state yet -> Enabled, status.ip as in its spec) changes nothing for its
// servers, which reach it meanwhile: waking all of them then would cost a reconcile and a
// read of the system per server while they onboard.
func bmcChangedForServer() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*metalv1alpha1.BMC)
			n, ok2 := e.ObjectNew.(*metalv1alpha1.BMC)
			return !ok1 || !ok2 || access.Usable(o) != access.Usable(n) || o.Generation != n.Generation ||
				access.Address(o) != access.Address(n)
		},
	}
}

// enqueueServersForClaim maps a claim to the servers holding it (index index.ServerClaimKey).
func (r *ServerReconciler) enqueueServersForClaim() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		return r.serversByIndex(ctx, index.ServerClaimKey, index.NamespacedKey(obj.GetNamespace(), obj.GetName()))
	})
}

// enqueueServersForBootConfiguration maps a boot configuration to the server whose
// spec.bootConfigurationRef names it (index index.ServerBootConfiguration).
func (r *ServerReconciler) enqueueServersForBootConfiguration() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		return r.serversByIndex(ctx, index.ServerBootConfiguration, index.NamespacedKey(obj.GetNamespace(), obj.GetName()))
	})
}

// enqueueServerForAgentReport maps an agent report ConfigMap to the server its label names.
func (r *ServerReconciler) enqueueServerForAgentReport() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		name, ok := obj.GetLabels()[metalv1alpha1.AgentReportServerLabel]
		if !ok || obj.GetNamespace() != r.Options.AgentNamespace {
			return nil
		}
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: name}}}
	})
}

// enqueueServersForBMC maps a BMC to the servers reached through it (index index.ServerBMCRef).
func (r *ServerReconciler) enqueueServersForBMC() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		return r.serversByIndex(ctx, index.ServerBMCRef, obj.GetName())
	})
}

// enqueueServersForBMCSecret maps a BMCSecret to the servers using it inline (index
// index.ServerBMCSecret) and through a BMC object (indexes index.BMCSecret, index.ServerBMCRef).
func (r *ServerReconciler) enqueueServersForBMCSecret() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		reqs := r.serversByIndex(ctx, index.ServerBMCSecret, obj.GetName())
		var bmcs metalv1alpha1.BMCList
		if err := r.List(ctx, &bmcs, client.MatchingFields{index.BMCSecret: obj.GetName()}); err != nil {
			log.FromContext(ctx).Error(err, "Listing BMCs for a BMCSecret", "BMCSecret", obj.GetName())
			return reqs
		}
		for i := range bmcs.Items {
			reqs = append(reqs, r.serversByIndex(ctx, index.ServerBMCRef, bmcs.Items[i].Name)...)
		}
		return reqs
	})
}

func (r *ServerReconciler) serversByIndex(ctx context.Context, field, key string) []reconcile.Request {
	var servers metalv1alpha1.ServerList
	if err := r.List(ctx, &servers, client.MatchingFields{field: key}); err != nil {
		// A map function cannot return an error; the periodic resync covers a missed event.
		log.FromContext(ctx).Error(err, "Listing servers by index", "index", field, "key", key)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(servers.Items))
	for i := range servers.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&servers.Items[i])})
	}
	return reqs
}
