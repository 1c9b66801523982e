package controller

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/bmc"
)

// resetOperations maps the reset values of the operation annotation to BMC reset types.
var resetOperations = map[string]bmc.ResetType{
	metalv1alpha1.OperationAnnotationGracefulRestartServer: bmc.ResetGracefulRestart,
	metalv1alpha1.OperationAnnotationHardRestartServer:     bmc.ResetForceRestart,
	metalv1alpha1.OperationAnnotationPowerCycleServer:      bmc.ResetPowerCycle,
	metalv1alpha1.OperationAnnotationForceOffServer:        bmc.ResetForceOff,
	metalv1alpha1.OperationAnnotationForceOnServer:         bmc.ResetForceOn,
}

// isResetOperation reports whether op asks for a reset of the server or its BMC.
func isResetOperation(op string) bool {
	_, ok := resetOperations[op]
	return ok || op == metalv1alpha1.OperationAnnotationGracefulRestartBMC
}

// isServerOperation reports whether op is an operation the server controller knows.
func isServerOperation(op string) bool {
	switch op {
	case metalv1alpha1.OperationAnnotationIgnore, metalv1alpha1.OperationAnnotationPark,
		metalv1alpha1.OperationAnnotationUnpark, metalv1alpha1.OperationAnnotationRetry:
		return true
	}
	return isResetOperation(op)
}

// operation returns the value of the operation annotation and whether it is set.
func operation(s *metalv1alpha1.Server) (string, bool) {
	op, ok := s.Annotations[metalv1alpha1.OperationAnnotation]
	return op, ok
}

// removeOperation consumes the operation annotation.
func (r *ServerReconciler) removeOperation(ctx context.Context, sc *serverScope) error {
	return r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) { delete(o.Annotations, metalv1alpha1.OperationAnnotation) })
}

// handleBMCFreeOperations handles what needs no BMC: unsupported operation values, unpark,
// and standing down while parked. done reports that the reconcile ends here.
//
// Precedence (docs/concepts/server.md, operations): unpark; then, while parked, every park or reset request is
// dropped; a park request is handled with the BMC (handleBMCOperations).
func (r *ServerReconciler) handleBMCFreeOperations(ctx context.Context, sc *serverScope) (ctrl.Result, bool, error) {
	s := sc.obj
	op, hasOp := operation(s)
	switch {
	case hasOp && !isServerOperation(op):
		sc.eventf(nil, corev1.EventTypeWarning, "UnsupportedOperation", "Operation",
			"Operation %q is not supported for servers; the annotation was removed", op)
		if err := r.removeOperation(ctx, sc); err != nil {
			return ctrl.Result{}, true, err
		}
		res, err := r.inFlight()
		return res, true, err

	case op == metalv1alpha1.OperationAnnotationRetry:
		res, err := r.retryWipe(ctx, sc)
		return res, true, err

	case op == metalv1alpha1.OperationAnnotationUnpark:
		wasParked := binding.HasParkedMarker(s) || s.Status.State == metalv1alpha1.ServerStateParked
		err := r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) {
			delete(o.Annotations, metalv1alpha1.OperationAnnotation)
			delete(o.Annotations, metalv1alpha1.ParkedAnnotation)
		})
		if err != nil {
			return ctrl.Result{}, true, err
		}
		if !wasParked {
			res, err := r.inFlight()
			return res, true, err
		}
		res, err := r.resume(ctx, sc)
		return res, true, err

	case binding.HasParkedMarker(s):
		res, err := r.reconcileParked(ctx, sc)
		return res, true, err

	case s.Status.State == metalv1alpha1.ServerStateParked:
		// The parked marker was removed by hand: resume as if unparked.
		res, err := r.resume(ctx, sc)
		return res, true, err
	}
	return ctrl.Result{}, false, nil
}

// resume returns an unparked server to service.
func (r *ServerReconciler) resume(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	to, err := r.resumeState(ctx, sc)
	if err != nil {
		return ctrl.Result{}, err
	}
	sc.eventf(nil, corev1.EventTypeNormal, "Resumed", "Unpark", "Server is unparked and returns to %s", to)
	return r.transition(ctx, sc, to)
}

// reconcileParked stands down: a parked server is neither powered nor booted, and park and
// reset requests are dropped. Its power state is still observed when the BMC answers.
func (r *ServerReconciler) reconcileParked(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	if s.Status.State != metalv1alpha1.ServerStateParked {
		_, _ = r.transition(ctx, sc, metalv1alpha1.ServerStateParked)
	}
	if op, ok := operation(s); ok {
		if isResetOperation(op) {
			sc.eventf(nil, corev1.EventTypeWarning, "ParkedOperationDropped", "Operation",
				"Server is parked; operation %q was dropped", op)
		}
		if err := r.removeOperation(ctx, sc); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.connect(ctx, sc); err != nil {
		if r.recordBMCError(sc, err) == "" {
			return ctrl.Result{}, fmt.Errorf("talking to the BMC: %w", err)
		}
		return ctrl.Result{RequeueAfter: r.errorBackoff(s)}, nil
	}
	return r.settled()
}

// handleBMCOperations handles park and reset requests on a server whose BMC answers. done
// reports that the reconcile ends here; a deferred park lets the state machine go on.
func (r *ServerReconciler) handleBMCOperations(ctx context.Context, sc *serverScope) (ctrl.Result, bool, error) {
	s := sc.obj
	op, _ := operation(s)
	switch {
	case op == metalv1alpha1.OperationAnnotationPark:
		switch s.Status.State {
		case metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerStateReserved:
			res, err := r.park(ctx, sc)
			return res, true, err
		}
		sc.eventf(nil, corev1.EventTypeWarning, "ParkDeferred", "Park",
			"Server is %s; it is parked once it is Available or Reserved", s.Status.State)
		return ctrl.Result{}, false, nil

	case isResetOperation(op):
		// graceful-restart-bmc restarts the server's BMC (the reference restarts the host).
		t, ok := resetOperations[op]
		reset := func() error { return sc.bmc.Reset(ctx, s.Spec.SystemURI, t) }
		if !ok {
			t = bmc.ResetGracefulRestart
			reset = func() error { return sc.bmc.ResetManager(ctx, t) }
		}
		if err := reset(); err != nil {
			if !errors.Is(err, bmc.ErrNotSupported) {
				return ctrl.Result{}, true, fmt.Errorf("operation %s: %w", op, err)
			}
			sc.eventf(nil, corev1.EventTypeWarning, "OperationNotSupported", "Operation",
				"The BMC does not support reset %s for operation %q; the annotation was removed", t, op)
		} else {
			sc.eventf(nil, corev1.EventTypeNormal, "OperationCompleted", "Operation",
				"Reset %s issued for operation %q", t, op)
		}
		if err := r.removeOperation(ctx, sc); err != nil {
			return ctrl.Result{}, true, err
		}
		res, err := r.inFlight()
		return res, true, err
	}
	return ctrl.Result{}, false, nil
}

// park powers the server off and then marks it parked.
func (r *ServerReconciler) park(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	off, err := r.ensureOff(ctx, sc, metalv1alpha1.ServerPoweringOff)
	if err != nil || !off {
		return r.powerResult(off, err)
	}
	err = r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) {
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[metalv1alpha1.ParkedAnnotation] = "true"
		delete(o.Annotations, metalv1alpha1.OperationAnnotation)
	})
	if err != nil {
		return ctrl.Result{}, err
	}
	sc.eventf(nil, corev1.EventTypeNormal, "Parked", "Park", "Server is off and parked")
	return r.transition(ctx, sc, metalv1alpha1.ServerStateParked)
}
