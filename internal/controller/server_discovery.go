package controller

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/agent/report"
	"github.com/metalfleet/metal-operator/internal/boot"
	"github.com/metalfleet/metal-operator/internal/inventory"
)

// discoveryBoot is the agent boot of discovery.
var discoveryBoot = agentBoot{mode: metalv1alpha1.AgentModeDiscover, condition: metalv1alpha1.ServerDiscovered}

// reconcileDiscovery reads the inventory from the BMC into status. Without discovery boots
// the server is Available then. With them (--discovery-boot), the in-band agent boots next
// (runAgentBoot) and its report is merged into status: network interfaces with their IPs
// and LLDP neighbours, the disks the OS sees, and processors and memory where the BMC said
// nothing; labels follow the --label-from-inventory rules. The server is powered off and
// Available once the report is in.
func (r *ServerReconciler) reconcileDiscovery(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	// An agent boot under way (or waiting to retry) has the BMC's inventory already.
	if c := findCondition(s, metalv1alpha1.ServerDiscovered); !r.Options.DiscoveryBoot || c == nil || c.Status != metav1.ConditionFalse {
		if err := r.readInventory(ctx, sc); err != nil {
			return ctrl.Result{}, err
		}
	}
	if !r.Options.DiscoveryBoot {
		// No event: condition Discovered and the state say it, and at fleet scale an event
		// per server costs the API server as much as a write. An agent's report has one
		// (below), with the report's digest for the audit.
		setCondition(s, metalv1alpha1.ServerDiscovered, metav1.ConditionTrue, metalv1alpha1.ReasonInventoryRead,
			"The inventory was read from the BMC")
		if res, err := r.transition(ctx, sc, metalv1alpha1.ServerStateAvailable); err != nil || s.Status.State != metalv1alpha1.ServerStateAvailable {
			return res, err
		}
		// Reading the inventory changed nothing at the BMC: Available follows on this read.
		sc.keepObservation = true
		return r.nextStep()
	}
	cm, res, err := r.runAgentBoot(ctx, sc, discoveryBoot)
	if cm == nil || err != nil {
		return res, err
	}
	var d report.Discovery
	if err := decodeReport(cm, &d); err != nil {
		return r.rejectAgentBoot(ctx, sc, discoveryBoot, "The agent's discovery report is not valid")
	}
	inventory.Merge(&s.Status, &d)
	if labels := inventory.Labels(r.Options.InventoryLabels, &d); !subset(labels, s.Labels) {
		if err := r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) {
			if o.Labels == nil {
				o.Labels = map[string]string{}
			}
			maps.Copy(o.Labels, labels)
		}); err != nil {
			return ctrl.Result{}, err
		}
	}
	neighbours := 0
	for _, n := range d.NICs {
		neighbours += len(n.Neighbors)
	}
	msg := fmt.Sprintf("The in-band agent reported %d network interfaces (%d LLDP neighbours), %d disks, %d processors (report %s)",
		len(d.NICs), neighbours, len(d.BlockDevices), len(d.CPUs), cm.Annotations[boot.ReportDigestAnnotation])
	setCondition(s, metalv1alpha1.ServerDiscovered, metav1.ConditionTrue, metalv1alpha1.ReasonReportAccepted, msg)
	sc.eventf(nil, corev1.EventTypeNormal, "Discovered", "Discover", "%s; server is Available", msg)
	// Available powers the server off and removes the agent boot's objects.
	return r.transition(ctx, sc, metalv1alpha1.ServerStateAvailable)
}

// subset reports whether every key of a has its value in b.
func subset(a, b map[string]string) bool {
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
