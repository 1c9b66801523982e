package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/message"
)

// setBootOrderCondition sets condition BootOrderApplied False for the current spec: its
// observedGeneration says which spec the refusal is about, so that it is not sent again
// until the spec changes. (True carries no generation: every spec change, a binding
// included, would otherwise cost a status write.)
func setBootOrderCondition(s *metalv1alpha1.Server, reason, msg string) {
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: metalv1alpha1.ServerBootOrderApplied,
		Status: metav1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: s.Generation})
}

// maxBootOrderText bounds a boot order quoted in a condition or event message (an event's
// note may not exceed 1 kB).
const maxBootOrderText = 200

// desiredBootOrder returns the devices of spec.bootOrder, lowest priority first; entries of
// equal priority keep their order. It returns nil for an empty spec.bootOrder.
func desiredBootOrder(entries []metalv1alpha1.BootOrder) []string {
	if len(entries) == 0 {
		return nil
	}
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b metalv1alpha1.BootOrder) int { return cmp.Compare(a.Priority, b.Priority) })
	devices := make([]string, len(sorted))
	for i, e := range sorted {
		devices[i] = e.Device
	}
	return devices
}

// bootOrderText renders a boot order for a message.
func bootOrderText(order []string) string {
	if len(order) == 0 {
		return "none"
	}
	return message.Truncate(strings.Join(order, ", "), maxBootOrderText)
}

// applyBootOrder sets the system's persistent boot order to the devices of spec.bootOrder
// (by priority) when the BMC reports another order (sc.info, observed in this reconcile), and
// records the outcome in condition BootOrderApplied:
//
//	True, Applied                the BMC reports the order (event BootOrderApplied if it was changed)
//	False, BootOrderRejected     the BMC refused it, with the BMC's message (a Warning event when
//	                             the rejection is new), or reports no boot order at all
//	False, BootOrderPending      the BMC accepted it but still reports another order
//
// A rejected or pending order is not sent again until spec.bootOrder changes (the condition's
// observedGeneration); an order the BMC reported and someone changed at the BMC is. A failure
// that is no answer about the order (busy, unreachable) is retried at the next resync and
// never holds up the rest of the reconcile. An empty spec.bootOrder leaves the BMC's order
// alone and removes the condition. Nothing is written when nothing changed.
func (r *ServerReconciler) applyBootOrder(ctx context.Context, sc *serverScope) error {
	s := sc.obj
	want := desiredBootOrder(s.Spec.BootOrder)
	if len(want) == 0 {
		meta.RemoveStatusCondition(&s.Status.Conditions, metalv1alpha1.ServerBootOrderApplied)
		return nil
	}
	applied := fmt.Sprintf("The BMC reports the boot order %s", bootOrderText(want))
	had := sc.info.BootOrder
	if slices.Equal(had, want) {
		setCondition(s, metalv1alpha1.ServerBootOrderApplied, metav1.ConditionTrue, metalv1alpha1.ReasonBootOrderApplied, applied)
		return nil
	}
	if len(had) == 0 {
		// The system resource has no Boot.BootOrder: nothing to set it through.
		setBootOrderCondition(s, metalv1alpha1.ReasonBootOrderRejected,
			"The BMC reports no boot order for this system, so spec.bootOrder cannot be applied")
		return nil
	}
	// A refused order, or one the BMC accepted but stages (some apply it at the next boot),
	// is not sent again for the same spec: only a spec change or a True condition lost to a
	// change made at the BMC sends it again.
	if c := findCondition(s, metalv1alpha1.ServerBootOrderApplied); c != nil && c.Status == metav1.ConditionFalse &&
		c.ObservedGeneration == s.Generation &&
		(c.Reason == metalv1alpha1.ReasonBootOrderRejected || c.Reason == metalv1alpha1.ReasonBootOrderPending) {
		return nil
	}

	uri := s.Spec.SystemURI
	if err := sc.bmc.SetBootOrder(ctx, uri, want); err != nil {
		if !errors.Is(err, bmc.ErrBadRequest) && !errors.Is(err, bmc.ErrNotSupported) {
			// Not an answer about the order (the BMC is busy or unreachable): the other
			// requests of this reconcile tell the BMC's state; the order is tried again at
			// the next resync and never holds up power or the claim's boot.
			log.FromContext(ctx).V(1).Info("Setting the boot order failed; retrying at the next resync", "error", access.Message(err))
			return nil
		}
		msg := fmt.Sprintf("The BMC refused the boot order %s: %s", bootOrderText(want), access.Message(err))
		if c := findCondition(s, metalv1alpha1.ServerBootOrderApplied); c == nil ||
			c.Reason != metalv1alpha1.ReasonBootOrderRejected || c.Message != msg {
			sc.eventf(nil, corev1.EventTypeWarning, "BootOrderRejected", "SetBootOrder", "%s", msg)
		}
		setBootOrderCondition(s, metalv1alpha1.ReasonBootOrderRejected, msg)
		return nil
	}

	info, err := sc.bmc.SystemInfo(ctx, uri)
	if err != nil {
		return fmt.Errorf("reading the boot order: %w", err)
	}
	sc.info.BootOrder = info.BootOrder
	if !slices.Equal(info.BootOrder, want) {
		setBootOrderCondition(s, metalv1alpha1.ReasonBootOrderPending,
			fmt.Sprintf("The BMC accepted the boot order %s but reports %s (some BMCs apply it at the next boot); it is sent again when spec.bootOrder changes",
				bootOrderText(want), bootOrderText(info.BootOrder)))
		return nil
	}
	setCondition(s, metalv1alpha1.ServerBootOrderApplied, metav1.ConditionTrue, metalv1alpha1.ReasonBootOrderApplied, applied)
	sc.eventf(nil, corev1.EventTypeNormal, "BootOrderApplied", "SetBootOrder",
		"Boot order set to %s (the BMC had %s)", bootOrderText(want), bootOrderText(had))
	return nil
}
