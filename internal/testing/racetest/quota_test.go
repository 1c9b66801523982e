package racetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmanager "sigs.k8s.io/controller-runtime/pkg/manager"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/controller"
)

const quotaMax = 10

// startQuotaManager starts the claim controller and the ServerQuota controller.
func startQuotaManager(t *testing.T) *manager {
	t.Helper()
	return startManagerWith(t, nil, func(mgr ctrlmanager.Manager, c client.Client) error {
		o := controller.DefaultServerQuotaOptions()
		o.AllocationGrace = 30 * time.Second
		return (&controller.ServerQuotaReconciler{Client: c, APIReader: mgr.GetAPIReader(),
			Recorder: mgr.GetEventRecorder("serverquota-controller"), Options: o}).SetupWithManager(mgr)
	})
}

// heldClaims counts the distinct claims of ns that servers hold (proposals included).
func heldClaims(ctx context.Context, ns string) (int, error) {
	list := &metalv1alpha1.ServerList{}
	if err := env.Client.List(ctx, list); err != nil {
		return 0, err
	}
	held := map[string]bool{}
	for _, s := range list.Items {
		if ref := s.Spec.ServerClaimRef; ref != nil && ref.Namespace == ns {
			held[ref.Name] = true
		}
	}
	return len(held), nil
}

// watchQuota samples that no more than quotaMax claims of ns are held by servers, and
// returns every breach seen.
func watchQuota(ns string) (stop func() []string) {
	return sample(func(ctx context.Context) []string {
		if n, err := heldClaims(ctx, ns); err == nil && n > quotaMax {
			return []string{fmt.Sprintf("%d claims held, quota %d", n, quotaMax)}
		}
		return nil
	})
}

// 50 claims against a quota of 10 (30 fitting servers): exactly 10 bind, the other 40 say
// QuotaExceeded, and never more than 10 are held, with a manager killed mid-burst and a new
// one taking over; in odd rounds two managers race from the start (leader election off).
func TestQuotaHoldsUnderRacesAndKills(t *testing.T) {
	eachRound(t, "quota", func(t *testing.T, g *WithT, round int, ns, pool string) {
		servers(t, 30, pool)
		q := &fleetv1alpha1.ServerQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pool"},
			Spec: fleetv1alpha1.ServerQuotaSpec{Hard: []fleetv1alpha1.QuotaLimit{{Name: "pool", Max: quotaMax,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"race": pool}}}}}}
		g.Expect(env.Client.Create(context.Background(), q)).To(Succeed())
		stopWatch := watchQuota(ns)
		stopViolations := watchViolations(t, ns)

		first := startQuotaManager(t)
		var other *manager
		if round%2 == 1 {
			other = startQuotaManager(t)
		}
		createClaims(t, ns, pool, 0, 50)
		g.Eventually(func(g Gomega) {
			g.Expect(bound(g, ns)).To(BeNumerically(">=", 2+round*3))
		}, 60*time.Second, 5*time.Millisecond).Should(Succeed())
		first.stop(t) // killed mid-burst
		next := startQuotaManager(t)
		defer next.stop(t)
		if other != nil {
			defer other.stop(t)
		}

		staysSettled(g, ns, quotaMax)
		g.Eventually(func(g Gomega) {
			list := &metalv1alpha1.ServerClaimList{}
			g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
			over := 0
			for _, c := range list.Items {
				if cond := meta.FindStatusCondition(c.Status.Conditions, metalv1alpha1.ServerClaimBound); cond != nil &&
					cond.Reason == metalv1alpha1.ReasonQuotaExceeded {
					over++
				}
			}
			g.Expect(over).To(Equal(50 - quotaMax))
			cur := &fleetv1alpha1.ServerQuota{}
			g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(q), cur)).To(Succeed())
			g.Expect(cur.Status.Allocations).To(HaveLen(quotaMax))
			g.Expect(cur.Status.Used).To(Equal([]fleetv1alpha1.QuotaUsage{{Name: "pool", Used: quotaMax, Hard: quotaMax}}))
		}, 60*time.Second, 100*time.Millisecond).Should(Succeed())
		g.Expect(stopWatch()).To(BeEmpty())
		g.Expect(stopViolations()).To(BeEmpty())
		cleanupClaims(t, ns)
	})
}
