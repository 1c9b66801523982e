package binding

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

func TestLease(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: t0.Add(d)} }
	dur := func(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
	expired := []metav1.Condition{{Type: metalv1alpha1.ServerClaimBound, Status: metav1.ConditionFalse, Reason: metalv1alpha1.ReasonLeaseExpired}}
	cases := []struct {
		name       string
		duration   *metav1.Duration
		started    *metav1.Time
		recorded   *metav1.Time
		conditions []metav1.Condition
		now        time.Duration // after t0
		ended      bool
		warn       bool
		next       time.Duration
	}{
		{name: "no lease", now: time.Hour},
		{name: "not started (never bound)", duration: dur(time.Hour), now: 2 * time.Hour},
		{name: "running, before the warning", duration: dur(3 * time.Hour), started: at(0), now: time.Hour, next: time.Hour},
		{name: "running, in the warning", duration: dur(3 * time.Hour), started: at(0), now: 150 * time.Minute, warn: true, next: 30 * time.Minute},
		{name: "at the end", duration: dur(3 * time.Hour), started: at(0), now: 3 * time.Hour, ended: true},
		{name: "lowered below the time used", duration: dur(time.Hour), started: at(0), recorded: at(3 * time.Hour), now: 2 * time.Hour, ended: true},
		{name: "raised while running", duration: dur(5 * time.Hour), started: at(0), recorded: at(3 * time.Hour), now: 2 * time.Hour, next: 2 * time.Hour},
		{name: "raised after the recorded end", duration: dur(5 * time.Hour), started: at(0), recorded: at(3 * time.Hour), now: 4 * time.Hour, ended: true},
		{name: "reported expired, raised since", duration: dur(50 * time.Hour), started: at(0), recorded: at(3 * time.Hour), conditions: expired, now: time.Hour, ended: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c := &metalv1alpha1.ServerClaim{
				Spec: metalv1alpha1.ServerClaimSpec{LeaseDuration: tc.duration},
				Status: metalv1alpha1.ServerClaimStatus{LeaseStartedAt: tc.started, LeaseExpiresAt: tc.recorded,
					Conditions: tc.conditions},
			}
			now := t0.Add(tc.now)
			g.Expect(LeaseEnded(c, now)).To(Equal(tc.ended))
			warn, next := LeaseWarning(c, now, time.Hour)
			g.Expect(warn).To(Equal(tc.warn))
			g.Expect(next).To(Equal(tc.next))
		})
	}
}
