package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/bmc/redfish"
	"github.com/metalfleet/metal-operator/internal/metrics"
)

// startBMCResetController starts the BMC controller with automatic resets on: after 500ms
// of failure, at most once an hour, 3s to come back.
func startBMCResetController(t *testing.T) {
	t.Helper()
	startManager(t, func(mgr manager.Manager) error {
		opts := testBMCOptions()
		opts.FailureResetDelay = 500 * time.Millisecond
		opts.MaxResetsPerHour = 1
		opts.ResetWaitingInterval = 3 * time.Second
		return (&BMCReconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
			Recorder:  mgr.GetEventRecorder("bmc-controller"),
			Connector: &access.RedfishConnector{Reader: mgr.GetClient(), Timeout: 2 * time.Second},
			Options:   opts,
		}).SetupWithManager(mgr)
	})
}

// annotateBMC sets the operation annotation of a BMC.
func annotateBMC(g Gomega, obj *metalv1alpha1.BMC, op string) {
	g.Eventually(func() error {
		cur := getBMC(g, obj)
		base := cur.DeepCopy()
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		cur.Annotations[metalv1alpha1.OperationAnnotation] = op
		return env.Client.Patch(context.Background(), cur, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	}).Should(Succeed())
}

// resetCondition returns the BMC's Reset condition (nil if it has none).
func resetCondition(g Gomega, obj *metalv1alpha1.BMC) *metav1.Condition {
	return meta.FindStatusCondition(getBMC(g, obj).Status.Conditions, metalv1alpha1.BMCReset)
}

// expectReset waits until the BMC's Reset condition has the status and reason.
func expectReset(t *testing.T, obj *metalv1alpha1.BMC, status metav1.ConditionStatus, reason string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		expectBMCCondition(g, getBMC(g, obj), metalv1alpha1.BMCReset, status, reason)
	}).Should(Succeed())
}

// enrolledBMC starts an emulator and a BMC for it and waits until the BMC is Enabled.
func enrolledBMC(t *testing.T, opts emulator.Options) (*emulator.Emulator, *metalv1alpha1.BMC) {
	t.Helper()
	opts.Username, opts.Password = testBMCUser, testBMCPassword
	em := newEmulator(t, opts)
	secret := newBMCSecret(t, testBMCUser, testBMCPassword)
	obj := createBMC(t, bmcFor(t, em.URL(), secret.Name))
	waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
	return em, obj
}

// A BMC whose Redfish service fails for longer than the delay is reset through Redfish
// exactly once per window, and recovers; failing again within the hour, it is not reset
// again. A BMC that does not answer at all gets no reset; one whose reset is refused has
// the refusal counted.
func TestBMCAutoReset(t *testing.T) {
	startBMCResetController(t)

	t.Run("hung service is reset once and recovers", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		em, obj := enrolledBMC(t, emulator.Options{ManagerResetDelay: 300 * time.Millisecond})

		em.SetHung(true)
		waitBMC(t, obj, metalv1alpha1.BMCStateError, metav1.ConditionFalse, metalv1alpha1.ReasonBMCUnreachable)
		g.Eventually(em.ManagerResetCount).Should(Equal(1))
		expectBMCEvent(t, obj.Name, "Normal", "BMCReset")

		waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
		expectReset(t, obj, metav1.ConditionFalse, metalv1alpha1.ReasonResetComplete)
		expectBMCEvent(t, obj.Name, "Normal", metalv1alpha1.ReasonResetComplete)
		cur := getBMC(g, obj)
		g.Expect(cur.Status.LastResetTime).NotTo(BeNil())
		g.Expect(cur.Status.ResetTimes).To(HaveLen(1))
		g.Expect(em.ManagerResetCount()).To(Equal(1), "exactly one reset for one failure")
		sent := &dto.Metric{}
		g.Expect(metrics.BMCResets.WithLabelValues(metalv1alpha1.ReasonAutoResetting, "sent").Write(sent)).To(Succeed())
		g.Expect(sent.GetCounter().GetValue()).To(BeNumerically(">=", 1))

		// Failing again within the hour: the bound holds, and says when the next is allowed.
		em.SetHung(true)
		expectReset(t, obj, metav1.ConditionFalse, metalv1alpha1.ReasonResetLimitReached)
		expectBMCEvent(t, obj.Name, "Warning", metalv1alpha1.ReasonResetLimitReached)
		g.Consistently(em.ManagerResetCount).WithTimeout(time.Second).Should(Equal(1))
		em.SetHung(false)
		waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
	})

	t.Run("no answer at all is not reset", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		g.Expect(err).NotTo(HaveOccurred())
		addr := "http://" + l.Addr().String()
		g.Expect(l.Close()).To(Succeed()) // connection refused from now on
		secret := newBMCSecret(t, testBMCUser, testBMCPassword)
		obj := createBMC(t, bmcFor(t, addr, secret.Name))
		waitBMC(t, obj, metalv1alpha1.BMCStatePending, metav1.ConditionFalse, metalv1alpha1.ReasonBMCUnreachable)
		g.Consistently(func(g Gomega) *metav1.Condition { return resetCondition(g, obj) }).
			WithTimeout(1500 * time.Millisecond).Should(BeNil())
	})

	t.Run("a refused reset counts towards the bound", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		em, obj := enrolledBMC(t, emulator.Options{})
		em.SetUnavailable(true) // 503 for everything, the reset included
		expectReset(t, obj, metav1.ConditionFalse, metalv1alpha1.ReasonResetFailed)
		expectBMCEvent(t, obj.Name, "Warning", metalv1alpha1.ReasonResetFailed)
		expectReset(t, obj, metav1.ConditionFalse, metalv1alpha1.ReasonResetLimitReached)
		g.Expect(getBMC(g, obj).Status.ResetTimes).To(HaveLen(1))
		g.Expect(em.ManagerResetCount()).To(BeZero())
	})
}

// The reset operations on a BMC: graceful-restart-bmc and force-ssh-reset-bmc send a
// Redfish Manager.Reset (GracefulRestart, ForceRestart) and are consumed; a server reset
// value is consumed with a warning; other values are left alone.
func TestBMCResetOperations(t *testing.T) {
	startBMCController(t)
	g := NewWithT(t)
	em, obj := enrolledBMC(t, emulator.Options{})

	consumed := func() {
		t.Helper()
		g.Eventually(func(g Gomega) {
			g.Expect(getBMC(g, obj).Annotations).NotTo(HaveKey(metalv1alpha1.OperationAnnotation))
		}).Should(Succeed())
	}

	// The annotation is removed before the reset is sent, in the same reconcile: the count
	// follows shortly.
	annotateBMC(g, obj, metalv1alpha1.OperationAnnotationGracefulRestartBMC)
	consumed()
	g.Eventually(em.ManagerResetCount).Should(Equal(1))
	expectBMCEvent(t, obj.Name, "Normal", "BMCReset")
	expectReset(t, obj, metav1.ConditionFalse, metalv1alpha1.ReasonResetComplete)
	g.Expect(getBMC(g, obj).Status.LastResetTime).NotTo(BeNil())

	annotateBMC(g, obj, metalv1alpha1.OperationAnnotationForceResetBMC)
	consumed()
	g.Eventually(em.ManagerResetCount).Should(Equal(2))

	annotateBMC(g, obj, metalv1alpha1.OperationAnnotationHardRestartServer)
	consumed()
	expectBMCEvent(t, obj.Name, "Warning", "UnsupportedOperation")
	g.Expect(em.ManagerResetCount()).To(Equal(2))

	annotateBMC(g, obj, metalv1alpha1.OperationAnnotationRetry)
	g.Consistently(func(g Gomega) map[string]string { return getBMC(g, obj).Annotations }).
		WithTimeout(time.Second).Should(HaveKeyWithValue(metalv1alpha1.OperationAnnotation, metalv1alpha1.OperationAnnotationRetry))
	g.Expect(em.ManagerResetCount()).To(Equal(2))

	// A BMC that refuses the reset: consumed, recorded, and not sent again.
	em.SetUnavailable(true)
	annotateBMC(g, obj, metalv1alpha1.OperationAnnotationGracefulRestartBMC)
	consumed()
	expectReset(t, obj, metav1.ConditionFalse, metalv1alpha1.ReasonResetFailed)
	expectBMCEvent(t, obj.Name, "Warning", metalv1alpha1.ReasonResetFailed)
	g.Expect(em.ManagerResetCount()).To(Equal(2))
}

// Which failures a reset is for: a service that answers and fails, not one that does not
// answer, nor credentials or certificates.
func TestBMCResettable(t *testing.T) {
	answered := func(kind error, code int) error {
		return fmt.Errorf("%w: %w", kind, &redfish.HTTPError{Method: "GET", Path: "/redfish/v1/Systems", StatusCode: code})
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"503", answered(bmc.ErrUnavailable, 503), true},
		{"500", answered(bmc.ErrUnavailable, 500), true},
		{"unreadable answer", errors.New("redfish: decoding /redfish/v1/Systems: unexpected EOF"), true},
		{"connection refused", fmt.Errorf("%w: %w", bmc.ErrUnavailable, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), false},
		{"401", answered(bmc.ErrUnauthorized, 401), false},
		{"TLS", fmt.Errorf("handshake: %w", bmc.ErrTLS), false},
		{"missing secret", access.NewError(metalv1alpha1.ReasonSecretNotFound, "BMCSecret x does not exist"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(resettable(t.Context(), tc.err)).To(Equal(tc.want), tc.err.Error())
		})
	}
}
