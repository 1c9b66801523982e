package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/agent/report"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/boot"
	"github.com/metalfleet/metal-operator/internal/inventory"
	"github.com/metalfleet/metal-operator/internal/message"
	"github.com/metalfleet/metal-operator/internal/metrics"
)

// Wipe methods recorded in status.lastWipe.method.
const (
	wipeMethodAgent   = "Agent"
	wipeMethodRedfish = "RedfishSecureErase"
)

// A wipe runs between two claims when the server booted for the claim it leaves
// (binding.WipeOwed) and its wipe policy is not Disabled (docs/wipe.md). The server is
// Wiping meanwhile, which no claim binds. Transitions:
//
//	Reserved, Released -> Wiping     the claim reference is cleared and a wipe is owed
//	Available -> Wiping              a wipe is owed (a policy set later, an upgrade)
//	Wiping -> Available              every disk reported wiped and verified, or the
//	                                 operator skipped the wipe (skip-wipe annotation)
//	Wiping -> Error                  a disk failed, or no method can wipe the server; it stays
//	                                 there (not the BMC's Error: recover leaves it) until the
//	                                 operator retries (operation annotation retry) or skips
//
// status.lastWipe is the record: started when the wipe starts, finished with every disk.

// wipePolicy is the server's effective wipe policy.
func (r *ServerReconciler) wipePolicy(s *metalv1alpha1.Server) metalv1alpha1.WipePolicy {
	if s.Spec.WipePolicy != "" {
		return s.Spec.WipePolicy
	}
	if r.Options.DefaultWipePolicy != "" {
		return r.Options.DefaultWipePolicy
	}
	return metalv1alpha1.WipePolicyDisabled
}

// wipeDue reports whether the server must be wiped before it is Available.
func (r *ServerReconciler) wipeDue(s *metalv1alpha1.Server) bool {
	return r.wipePolicy(s) != metalv1alpha1.WipePolicyDisabled && binding.WipeOwed(s)
}

// wipeFailed reports whether the server is held in Error by a failed wipe.
func wipeFailed(s *metalv1alpha1.Server) bool {
	w := s.Status.LastWipe
	return w != nil && w.Result == metalv1alpha1.WipeResultFailed && binding.WipeOwed(s)
}

// recordWipeNotRequired records, for a server released under wipe policy Disabled, that the
// claim's data stays on purpose: the server owes no wipe for that claim any more.
func (r *ServerReconciler) recordWipeNotRequired(s *metalv1alpha1.Server) {
	now := metav1.Now()
	s.Status.LastWipe = &metalv1alpha1.WipeRecord{ClaimUID: s.Status.NetworkBootClaimUID, Policy: metalv1alpha1.WipePolicyDisabled,
		Result: metalv1alpha1.WipeResultNotRequired, Message: "Wipe policy Disabled: the claim's data was left on the disks",
		StartedAt: &now, FinishedAt: &now}
}

// startWipe starts a wipe record and moves the server to Wiping. claim names the claim the
// wipe follows, when known.
func (r *ServerReconciler) startWipe(ctx context.Context, sc *serverScope, claim string) (ctrl.Result, error) {
	s := sc.obj
	policy := r.wipePolicy(s)
	if claim == "" && s.Status.LastWipe != nil && s.Status.LastWipe.ClaimUID == s.Status.NetworkBootClaimUID {
		claim = s.Status.LastWipe.Claim
	}
	s.Status.LastWipe = &metalv1alpha1.WipeRecord{
		ClaimUID: s.Status.NetworkBootClaimUID, Claim: claim, Policy: policy,
		Result: metalv1alpha1.WipeResultRunning, StartedAt: &metav1.Time{Time: time.Now()},
	}
	restartCondition(s, metalv1alpha1.ServerWiped, metav1.ConditionFalse, metalv1alpha1.ReasonWipeInProgress,
		fmt.Sprintf("Wiping the disks (policy %s) before the server is Available again", policy))
	sc.eventf(nil, corev1.EventTypeNormal, "WipeStarted", "Wipe", "Wiping the disks (policy %s) left by claim %s", policy, orUID(claim, s.Status.NetworkBootClaimUID))
	return r.transition(ctx, sc, metalv1alpha1.ServerStateWiping)
}

func orUID(name, uid string) string {
	if name != "" {
		return name
	}
	return "uid " + uid
}

// reconcileWiping drives a wipe: the skip annotation first, then the method the record names
// (chosen on the first pass).
func (r *ServerReconciler) reconcileWiping(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	if reason, ok := s.Annotations[metalv1alpha1.SkipWipeAnnotation]; ok {
		return r.skipWipe(ctx, sc, reason)
	}
	if !binding.WipeOwed(s) {
		// Skipped or done by a write this reconcile did not make: nothing to do.
		return r.transition(ctx, sc, metalv1alpha1.ServerStateAvailable)
	}
	rec := s.Status.LastWipe
	if rec == nil || rec.Result != metalv1alpha1.WipeResultRunning || rec.ClaimUID != s.Status.NetworkBootClaimUID {
		return r.startWipe(ctx, sc, "")
	}
	if rec.Method == "" {
		method, drives, err := r.chooseWipeMethod(ctx, sc, rec.Policy)
		if err != nil {
			return ctrl.Result{}, err
		}
		if method == "" {
			return r.failWipe(ctx, sc, metalv1alpha1.ReasonNoWipeMethod,
				"No wipe method: the in-band agent has no image (--discovery-image) and the BMC offers no Drive.SecureErase on every drive")
		}
		rec.Method = method
		for _, d := range drives {
			rec.Disks = append(rec.Disks, metalv1alpha1.DiskWipeRecord{Path: d.URI, Model: message.Truncate(d.Model, 256),
				Serial: message.Truncate(d.Serial, 256), SizeBytes: d.CapacityBytes, Method: "Drive.SecureErase",
				Result: metalv1alpha1.WipeResultRunning})
		}
		return r.inFlight()
	}
	if rec.Method == wipeMethodRedfish {
		return r.redfishWipe(ctx, sc)
	}
	return r.agentWipe(ctx, sc)
}

// chooseWipeMethod picks how to wipe: the BMC's Drive.SecureErase when every drive offers it
// and the policy is Secure (a drive's own erase reaches what an overwrite cannot) or no agent
// can boot; else the agent; "" when neither can. It returns the drives of the Redfish method.
func (r *ServerReconciler) chooseWipeMethod(ctx context.Context, sc *serverScope, policy metalv1alpha1.WipePolicy) (string, []bmc.DriveInfo, error) {
	var drives []bmc.DriveInfo
	if eraser, ok := sc.bmc.(bmc.DriveEraser); ok && (policy == metalv1alpha1.WipePolicySecure || !r.agentBootsEnabled()) {
		all, err := eraser.Drives(ctx, sc.obj.Spec.SystemURI)
		if err != nil && !errors.Is(err, bmc.ErrNotSupported) {
			return "", nil, fmt.Errorf("listing the drives to wipe: %w", err)
		}
		drives = all
		for _, d := range all {
			if !d.SecureEraseSupported {
				drives = nil
				break
			}
		}
	}
	switch {
	case len(drives) > 0:
		return wipeMethodRedfish, drives, nil
	case r.agentBootsEnabled():
		return wipeMethodAgent, nil, nil
	}
	return "", nil, nil
}

// redfishWipe drives the BMC's secure erase of every drive: one erase issued per drive, its
// task polled on each pass (one request per drive in flight), the server Available once
// every task completed. The BMC's task messages are never copied into the record.
func (r *ServerReconciler) redfishWipe(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	rec := s.Status.LastWipe
	eraser, ok := sc.bmc.(bmc.DriveEraser)
	if !ok {
		return r.failWipe(ctx, sc, metalv1alpha1.ReasonNoWipeMethod, "The BMC client cannot erase drives")
	}
	running := false
	for i := range rec.Disks {
		d := &rec.Disks[i]
		if d.Result != metalv1alpha1.WipeResultRunning {
			continue
		}
		if d.Task == "" {
			task, err := eraser.SecureErase(ctx, d.Path)
			if err != nil {
				if errors.Is(err, bmc.ErrNotSupported) || errors.Is(err, bmc.ErrConflict) {
					d.Result, d.Error = metalv1alpha1.WipeResultFailed, "the BMC refused the secure erase"
					return r.failWipe(ctx, sc, metalv1alpha1.ReasonWipeFailed, fmt.Sprintf("Drive %.128q (serial %.64q) was not erased: the BMC refused", d.Path, d.Serial))
				}
				return ctrl.Result{}, fmt.Errorf("starting the secure erase of %s: %w", d.Path, err)
			}
			if task.URI == "" {
				d.Result, d.Verified = metalv1alpha1.WipeResultSucceeded, true
				continue
			}
			d.Task, running = task.URI, true
			continue
		}
		st, err := eraser.Task(ctx, bmc.TaskRef{URI: d.Task})
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("reading the secure erase task of %s: %w", d.Path, err)
		}
		switch st.State {
		case bmc.TaskRunning:
			running = true
		case bmc.TaskCompleted:
			d.Result, d.Verified, d.Task = metalv1alpha1.WipeResultSucceeded, true, ""
		default:
			d.Result, d.Error, d.Task = metalv1alpha1.WipeResultFailed, "the BMC's erase task ended "+string(st.State), ""
			return r.failWipe(ctx, sc, metalv1alpha1.ReasonWipeFailed,
				fmt.Sprintf("Drive %.128q (serial %.64q) was not erased: the BMC's task ended %s", d.Path, d.Serial, st.State))
		}
	}
	if running {
		return r.inFlight()
	}
	return r.succeedWipe(ctx, sc)
}

// agentWipe boots the agent in wipe mode and records its report.
func (r *ServerReconciler) agentWipe(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	rec := s.Status.LastWipe
	cm, res, err := r.runAgentBoot(ctx, sc, agentBoot{mode: metalv1alpha1.AgentModeWipe, policy: rec.Policy, condition: metalv1alpha1.ServerWiped})
	if cm == nil || err != nil {
		return res, err
	}
	var w report.Wipe
	if err := decodeReport(cm, &w); err != nil {
		return r.failWipe(ctx, sc, metalv1alpha1.ReasonWipeFailed, "The agent's wipe report is not valid")
	}
	rec.ReportDigest = cm.Annotations[boot.ReportDigestAnnotation]
	rec.Disks = nil
	for _, d := range w.Disks {
		rec.Disks = append(rec.Disks, metalv1alpha1.DiskWipeRecord{
			Path: d.Path, Model: d.Model, Serial: d.Serial, SizeBytes: d.SizeBytes, Method: d.Method,
			Result: metalv1alpha1.WipeResult(d.Result), Error: message.Truncate(d.Error, 256),
			SampledBlocks: int32(min(d.Verification.SampledBlocks, 1<<30)), Mismatches: int32(min(d.Verification.Mismatches, 1<<30)),
			Verified: d.Verification.Passed,
		})
	}
	if w.Policy != string(rec.Policy) {
		return r.failWipe(ctx, sc, metalv1alpha1.ReasonWipeFailed,
			fmt.Sprintf("The agent wiped with policy %.16q, not %s", w.Policy, rec.Policy))
	}
	if bad, failed := w.FirstFailure(); failed {
		return r.failWipe(ctx, sc, metalv1alpha1.ReasonWipeFailed,
			fmt.Sprintf("Disk %.64q (serial %.64q) was not wiped and verified", bad.Path, bad.Serial))
	}
	if missing := missingDisks(s, &w); missing != "" {
		return r.failWipe(ctx, sc, metalv1alpha1.ReasonWipeFailed,
			fmt.Sprintf("Disk %.64q, seen at discovery, is missing from the wipe report", missing))
	}
	if len(w.Disks) == 0 {
		return r.failWipe(ctx, sc, metalv1alpha1.ReasonWipeFailed, "The agent reported no disk to wipe")
	}
	return r.succeedWipe(ctx, sc)
}

// missingDisks returns a disk the agent saw at discovery that the wipe report leaves out.
func missingDisks(s *metalv1alpha1.Server, w *report.Wipe) string {
	wiped := map[string]bool{}
	for _, d := range w.Disks {
		wiped[d.Path] = true
	}
	for _, st := range s.Status.Storages {
		if st.Name != inventory.StorageName {
			continue
		}
		for _, d := range st.Drives {
			if !wiped[d.Name] {
				return d.Name
			}
		}
	}
	return ""
}

// succeedWipe finishes the record; the server is Available (which powers it off and removes
// the agent boot's objects).
func (r *ServerReconciler) succeedWipe(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	rec := s.Status.LastWipe
	r.endWipe(rec, metalv1alpha1.WipeResultSucceeded, "")
	msg := fmt.Sprintf("%d disks wiped (policy %s, method %s) and verified", len(rec.Disks), rec.Policy, rec.Method)
	setCondition(s, metalv1alpha1.ServerWiped, metav1.ConditionTrue, metalv1alpha1.ReasonWipeSucceeded, msg)
	sc.eventf(nil, corev1.EventTypeNormal, "Wiped", "Wipe", "%s; server is Available", msg)
	return r.transition(ctx, sc, metalv1alpha1.ServerStateAvailable)
}

// failWipe finishes the record as failed and holds the server in Error.
func (r *ServerReconciler) failWipe(ctx context.Context, sc *serverScope, reason, msg string) (ctrl.Result, error) {
	s := sc.obj
	r.endWipe(s.Status.LastWipe, metalv1alpha1.WipeResultFailed, msg)
	setCondition(s, metalv1alpha1.ServerWiped, metav1.ConditionFalse, reason, msg)
	sc.eventf(nil, corev1.EventTypeWarning, reason, "Wipe", "%s; the server stays out of the pool until the wipe is retried (operation annotation %q) or skipped (annotation %s)",
		msg, metalv1alpha1.OperationAnnotationRetry, metalv1alpha1.SkipWipeAnnotation)
	return r.transition(ctx, sc, metalv1alpha1.ServerStateError)
}

// skipWipe records a wipe the operator skipped, consumes the annotation, and makes the server
// Available.
func (r *ServerReconciler) skipWipe(ctx context.Context, sc *serverScope, reason string) (ctrl.Result, error) {
	s := sc.obj
	if err := r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) {
		delete(o.Annotations, metalv1alpha1.SkipWipeAnnotation)
	}); err != nil {
		return ctrl.Result{}, err
	}
	if s.Status.LastWipe == nil || s.Status.LastWipe.ClaimUID != s.Status.NetworkBootClaimUID {
		s.Status.LastWipe = &metalv1alpha1.WipeRecord{ClaimUID: s.Status.NetworkBootClaimUID, Policy: r.wipePolicy(s),
			StartedAt: &metav1.Time{Time: time.Now()}}
	}
	msg := "The wipe was skipped by the operator: " + message.Truncate(reason, 256)
	r.endWipe(s.Status.LastWipe, metalv1alpha1.WipeResultSkipped, msg)
	setCondition(s, metalv1alpha1.ServerWiped, metav1.ConditionFalse, metalv1alpha1.ReasonWipeSkipped, msg)
	sc.eventf(nil, corev1.EventTypeWarning, metalv1alpha1.ReasonWipeSkipped, "Wipe", "%s; server is Available with the last claim's data", msg)
	return r.transition(ctx, sc, metalv1alpha1.ServerStateAvailable)
}

// endWipe finishes a record and counts it.
func (r *ServerReconciler) endWipe(rec *metalv1alpha1.WipeRecord, result metalv1alpha1.WipeResult, msg string) {
	now := time.Now()
	rec.Result, rec.Message, rec.FinishedAt = result, message.Truncate(msg, 1024), &metav1.Time{Time: now}
	metrics.Wipes.WithLabelValues(string(result)).Inc()
	if rec.StartedAt != nil && result != metalv1alpha1.WipeResultSkipped {
		metrics.WipeDuration.Observe(now.Sub(rec.StartedAt.Time).Seconds())
	}
}

// holdFailedWipe keeps a server whose wipe failed out of the pool: off, its agent boot
// objects removed, until the operator retries or skips.
func (r *ServerReconciler) holdFailedWipe(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	if reason, ok := s.Annotations[metalv1alpha1.SkipWipeAnnotation]; ok {
		return r.skipWipe(ctx, sc, reason)
	}
	if err := r.finishAgentBoot(ctx, sc); err != nil {
		return ctrl.Result{}, err
	}
	return r.powerResult(r.ensureOff(ctx, sc, metalv1alpha1.ServerPoweringOff))
}

// retryWipe answers the retry operation: a failed wipe starts again; anything else drops it.
func (r *ServerReconciler) retryWipe(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	if err := r.removeOperation(ctx, sc); err != nil {
		return ctrl.Result{}, err
	}
	if s.Status.State != metalv1alpha1.ServerStateError || !wipeFailed(s) {
		sc.eventf(nil, corev1.EventTypeWarning, "UnsupportedOperation", "Operation",
			"Operation %q applies only to a server whose wipe failed; the annotation was removed", metalv1alpha1.OperationAnnotationRetry)
		return r.inFlight()
	}
	return r.startWipe(ctx, sc, "")
}
