package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/metrics"
)

// transition moves the server to state to; the status write at the end of the reconcile
// records it. The next step runs on a quick look again.
//
// No server becomes Available while it owes a wipe (binding.WipeOwed): it goes Wiping instead,
// or, under wipe policy Disabled, the record says that none was required.
func (r *ServerReconciler) transition(ctx context.Context, sc *serverScope, to metalv1alpha1.ServerState) (ctrl.Result, error) {
	if to == metalv1alpha1.ServerStateAvailable && binding.WipeOwed(sc.obj) {
		if r.wipeDue(sc.obj) {
			return r.startWipe(ctx, sc, "")
		}
		r.recordWipeNotRequired(sc.obj)
	}
	from := sc.obj.Status.State
	if from != to {
		sc.obj.Status.State = to
		ctrl.LoggerFrom(ctx).Info("State changed", "from", from, "to", to)
	}
	return r.inFlight()
}

// initializeState sets the state of a new server, or rebuilds a wiped one: Parked when the
// parked marker is set, Reserved when it holds a claim (without a new discovery), else Initial.
func (r *ServerReconciler) initializeState(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	switch {
	case binding.HasParkedMarker(s):
		return r.transition(ctx, sc, metalv1alpha1.ServerStateParked)
	case s.Spec.ServerClaimRef != nil:
		to, err := r.resumeState(ctx, sc)
		if err != nil {
			return ctrl.Result{}, err
		}
		return r.transition(ctx, sc, to)
	}
	if _, err := r.transition(ctx, sc, metalv1alpha1.ServerStateInitial); err != nil {
		return ctrl.Result{}, err
	}
	// Nothing was asked of the BMC: Initial connects at once.
	return r.nextStep()
}

// connect builds the BMC client, makes sure spec.systemURI names the server's system, and
// observes the system's power state.
func (r *ServerReconciler) connect(ctx context.Context, sc *serverScope) error {
	s := sc.obj
	cl, err := r.Connector.Connect(ctx, s)
	if err != nil {
		return err
	}
	sc.bmc = cl
	if s.Spec.SystemURI == "" {
		if err := r.resolveSystemURI(ctx, sc); err != nil {
			return err
		}
	}
	if info, at, ok := r.recentObservation(sc); ok {
		observe(sc, info, at)
		sc.reused = true
		return nil
	}
	return r.observeSystem(ctx, sc)
}

// observeSystem reads the system from the BMC and observes it. A system whose URI names
// another system now, or none, is looked up again by its UUID first.
func (r *ServerReconciler) observeSystem(ctx context.Context, sc *serverScope) error {
	s, cl := sc.obj, sc.bmc
	info, err := cl.SystemInfo(ctx, s.Spec.SystemURI)
	moved := err == nil && info.UUID != "" && !strings.EqualFold(info.UUID, s.Spec.SystemUUID)
	if moved || (err != nil && access.Reason(err) == metalv1alpha1.ReasonSystemNotFound) {
		// The URI no longer names this system (the BMC renumbered its systems): find it again.
		if err := r.resolveSystemURI(ctx, sc); err != nil {
			return err
		}
		info, err = cl.SystemInfo(ctx, s.Spec.SystemURI)
	}
	if err != nil {
		return err
	}
	observe(sc, info, time.Now())
	sc.reused = false
	return nil
}

// observation is a system as one reconcile read it, kept for the next reconcile of the
// server: the server's resourceVersion that reconcile left, and when the BMC was read.
type observation struct {
	resourceVersion string
	info            bmc.SystemInfo
	at              time.Time
}

// recentObservation returns what the last reconcile of the server read from its BMC, when
// the next reconcile may use it instead of reading the system again: that reconcile sent the
// BMC nothing that changes the system (serverScope.keepObservation), the server is exactly
// as that reconcile left it (the same resourceVersion: nobody changed it since), and the read
// is younger than TransitionPollInterval, the pace at which a change in flight is looked at
// anyway. So the steps of onboarding (Initial, Discovery, Available) that follow each other
// at once share a read; a resync, or any reconcile after an action, reads the BMC.
func (r *ServerReconciler) recentObservation(sc *serverScope) (bmc.SystemInfo, time.Time, bool) {
	o, _, ok := r.observations.Get(versionKey(sc.obj))
	if !ok || o.resourceVersion != sc.obj.ResourceVersion || time.Since(o.at) >= r.Options.TransitionPollInterval {
		return bmc.SystemInfo{}, time.Time{}, false
	}
	return o.info, o.at, true
}

// rememberObservation keeps what the reconcile read from the BMC for the next reconcile, if
// the reconcile allows it (serverScope.keepObservation) and ended without an error; else it
// drops what was kept.
func (r *ServerReconciler) rememberObservation(sc *serverScope, err error) {
	key := versionKey(sc.obj)
	if err != nil || !sc.keepObservation || sc.gone || sc.observedAt.IsZero() {
		r.observations.Delete(key)
		return
	}
	r.observations.Set(key, observation{resourceVersion: sc.obj.GetResourceVersion(), info: sc.info, at: sc.observedAt})
}

// resolveSystemURI finds the system with spec.systemUUID (compared case-insensitively) and
// writes its URI to spec.systemURI.
func (r *ServerReconciler) resolveSystemURI(ctx context.Context, sc *serverScope) error {
	systems, err := sc.bmc.Systems(ctx)
	if err != nil {
		return err
	}
	for _, sys := range systems {
		if strings.EqualFold(sys.UUID, sc.obj.Spec.SystemUUID) {
			if sys.URI == sc.obj.Spec.SystemURI {
				return nil
			}
			return r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) { o.Spec.SystemURI = sys.URI })
		}
	}
	return fmt.Errorf("the BMC has no system with UUID %s: %w", sc.obj.Spec.SystemUUID, access.ErrSystemNotFound)
}

// observe records what the BMC reports: power state, indicator LED, reachability, and the end
// of power changes in flight.
func observe(sc *serverScope, info bmc.SystemInfo, at time.Time) {
	s := sc.obj
	sc.info, sc.observedAt = info, at
	sc.power = info.PowerState
	s.Status.PowerState = serverPowerState(info.PowerState)
	if led := serverIndicatorLED(info.IndicatorLED); led != "" {
		s.Status.IndicatorLED = led
	}
	switch info.PowerState {
	case bmc.PowerStateOn:
		settleCondition(s, metalv1alpha1.ServerPoweringOn, metalv1alpha1.ReasonPowerStateReached, "The BMC reports the server on")
	case bmc.PowerStateOff:
		settleCondition(s, metalv1alpha1.ServerPoweringOff, metalv1alpha1.ReasonPowerStateReached, "The BMC reports the server off")
		settleCondition(s, metalv1alpha1.ServerWaitingForPowerOff, metalv1alpha1.ReasonPowerOffConfirmed, "The BMC reports the server off")
	}
	setCondition(s, metalv1alpha1.ServerBMCReachable, metav1.ConditionTrue, metalv1alpha1.ReasonBMCReachable, "The BMC answers")
}

// bmcFailed records that the BMC cannot be used: condition BMCReachable=False with the reason,
// state Error, and a look again after a delay that grows with the time the BMC has been
// failing. An error that does not mean the BMC is unusable is returned as is.
func (r *ServerReconciler) bmcFailed(ctx context.Context, sc *serverScope, err error) (ctrl.Result, error) {
	reason := r.recordBMCError(sc, err)
	if reason == "" {
		return ctrl.Result{}, fmt.Errorf("talking to the BMC: %w", err)
	}
	s := sc.obj
	if from := s.Status.State; from != metalv1alpha1.ServerStateError {
		sc.eventf(nil, corev1.EventTypeWarning, "BMCError", "ConnectBMC",
			"Server moved from %s to Error: the BMC cannot be used (%s)", from, reason)
		_, _ = r.transition(ctx, sc, metalv1alpha1.ServerStateError)
	}
	return ctrl.Result{RequeueAfter: r.errorBackoff(s)}, nil
}

// recordBMCError sets condition BMCReachable=False and counts the failure, if err means the
// BMC cannot be used; it returns the reason, or "" for other errors.
func (r *ServerReconciler) recordBMCError(sc *serverScope, err error) string {
	reason := access.Reason(err)
	if reason == "" {
		return ""
	}
	metrics.BMCErrors.WithLabelValues(reason).Inc()
	setCondition(sc.obj, metalv1alpha1.ServerBMCReachable, metav1.ConditionFalse, reason, access.Message(err))
	return reason
}

// errorBackoff is the delay before a failing BMC is tried again (backoffSince the
// BMCReachable condition turned False, between TransitionPollInterval and ResyncInterval).
func (r *ServerReconciler) errorBackoff(s *metalv1alpha1.Server) time.Duration {
	return backoffSince(falseCondition(s.Status.Conditions, metalv1alpha1.ServerBMCReachable),
		r.Options.TransitionPollInterval, r.Options.ResyncInterval)
}

// resumeState is where a server returns to (binding.RecoveryState), with the binding it
// references confirmed or not by reading its claim.
func (r *ServerReconciler) resumeState(ctx context.Context, sc *serverScope) (metalv1alpha1.ServerState, error) {
	s := sc.obj
	confirmed := false
	if s.Spec.ServerClaimRef != nil && !binding.BootedForReference(s) {
		claim, err := r.liveClaim(ctx, s)
		if err != nil {
			return "", err
		}
		confirmed = claim != nil && binding.Confirmed(s, claim)
	}
	to := binding.RecoveryState(s, confirmed)
	if to == metalv1alpha1.ServerStateAvailable && r.wipeDue(s) {
		to = metalv1alpha1.ServerStateWiping
	}
	return to, nil
}

// recover returns a server in Error to where it was, now that its BMC answers.
func (r *ServerReconciler) recover(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	to, err := r.resumeState(ctx, sc)
	if err != nil {
		return ctrl.Result{}, err
	}
	sc.eventf(nil, corev1.EventTypeNormal, "Recovered", "ConnectBMC",
		"The BMC answers again; server returns to %s", to)
	return r.transition(ctx, sc, to)
}

// reconcileInitial: spec.systemURI is known once connected; the inventory is read next, at
// once and on this reconcile's read of the system.
func (r *ServerReconciler) reconcileInitial(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	if _, err := r.transition(ctx, sc, metalv1alpha1.ServerStateDiscovery); err != nil {
		return ctrl.Result{}, err
	}
	sc.keepObservation = true
	return r.nextStep()
}

// nextStep is the result of a reconcile whose next step waits for nothing but the cache to
// show this reconcile's write: it may reuse this reconcile's read of the system
// (recentObservation).
func (r *ServerReconciler) nextStep() (ctrl.Result, error) {
	return ctrl.Result{RequeueAfter: min(cacheCatchUpDelay, r.Options.TransitionPollInterval)}, nil
}

// reconcileAvailable keeps a free server off, and reserves it once it holds a claim.
func (r *ServerReconciler) reconcileAvailable(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	if s.Spec.ServerClaimRef != nil {
		return r.takeUp(ctx, sc)
	}
	if r.wipeDue(s) {
		return r.startWipe(ctx, sc, "")
	}
	if err := r.finishAgentBoot(ctx, sc); err != nil {
		return ctrl.Result{}, err
	}
	if s.Spec.BootConfigurationRef != nil {
		// A leftover of a binding that is gone: nothing boots from it here.
		if err := r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) { o.Spec.BootConfigurationRef = nil }); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.applySettings(ctx, sc, nil); err != nil {
		return ctrl.Result{}, err
	}
	return r.powerResult(r.ensureOff(ctx, sc, metalv1alpha1.ServerPoweringOff))
}

// takeUp decides on a binding proposed to an Available server. Only a binding both sides
// confirm (the server names the claim by uid and the claim names the server) is taken up:
// Reserved, in exactly one status write and without an event (the state and the claim's Bound
// condition record it; at fleet scale an event per binding costs as much as a write). While
// the claim names no server yet the server waits, off, for the claim's update. A claim that
// is gone, being deleted or bound to another server never confirms: the reference is
// removed and the server was never powered on for it.
func (r *ServerReconciler) takeUp(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	claim, err := r.liveClaim(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case claim == nil:
		ref := *s.Spec.ServerClaimRef
		if err := r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) {
			o.Spec.ServerClaimRef = nil
			if b := o.Spec.BootConfigurationRef; b != nil && b.Namespace == ref.Namespace && b.Name == ref.Name {
				o.Spec.BootConfigurationRef = nil
			}
		}); err != nil {
			return ctrl.Result{}, err
		}
		sc.eventf(nil, corev1.EventTypeNormal, metalv1alpha1.ReasonBindingRefused, "Release",
			"Claim %s/%s did not record this server (gone, deleting or bound to another); reference removed", ref.Namespace, ref.Name)
		return r.inFlight()
	case binding.WipeOwed(s):
		// Bound from a stale view before the wipe it owes started: the claim must not get the
		// last claim's disks. The reference is dropped; the claim looks again.
		ref := *s.Spec.ServerClaimRef
		if err := r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) { o.Spec.ServerClaimRef = nil }); err != nil {
			return ctrl.Result{}, err
		}
		sc.eventf(nil, corev1.EventTypeWarning, metalv1alpha1.ReasonBindingRefused, "Release",
			"Claim %s/%s was not taken up: the server still holds the last claim's data and owes a wipe", ref.Namespace, ref.Name)
		return r.inFlight()
	case binding.Confirmed(s, claim):
		return r.transition(ctx, sc, metalv1alpha1.ServerStateReserved)
	}
	return r.powerResult(r.ensureOff(ctx, sc, metalv1alpha1.ServerPoweringOff))
}

// applySettings applies the BMC settings of the spec while the server is Available or
// serves a claim: spec.indicatorLED always, spec.bootOrder only until the claim's first boot.
// Afterwards the claim's operating system owns the boot order (an installer adds its own boot
// entry, which a resync must not drop), and the condition, which would only say what nobody
// checks, goes.
func (r *ServerReconciler) applySettings(ctx context.Context, sc *serverScope, claim *metalv1alpha1.ServerClaim) error {
	if err := r.applyIndicatorLED(ctx, sc); err != nil {
		return err
	}
	if claim != nil && sc.obj.Status.NetworkBootClaimUID == string(claim.UID) {
		meta.RemoveStatusCondition(&sc.obj.Status.Conditions, metalv1alpha1.ServerBootOrderApplied)
		return nil
	}
	return r.applyBootOrder(ctx, sc)
}

// applyIndicatorLED sets the identification LED to spec.indicatorLED when the BMC reports
// another state (status.indicatorLED, observed in this reconcile), then records what the BMC
// reports afterwards. Nothing is sent for an empty spec.indicatorLED, for a value the BMC
// cannot be asked for (Unknown, or anything but Lit, Blinking and Off), or to a BMC that does
// not support setting the LED.
func (r *ServerReconciler) applyIndicatorLED(ctx context.Context, sc *serverScope) error {
	s := sc.obj
	want := s.Spec.IndicatorLED
	if want == "" || want == s.Status.IndicatorLED {
		return nil
	}
	led := bmc.IndicatorLED(want)
	switch led {
	case bmc.IndicatorLEDLit, bmc.IndicatorLEDBlinking, bmc.IndicatorLEDOff:
	default:
		ctrl.LoggerFrom(ctx).V(1).Info("Indicator LED state cannot be set", "indicatorLED", want)
		return nil
	}
	uri := s.Spec.SystemURI
	if err := sc.bmc.SetIndicatorLED(ctx, uri, led); err != nil {
		if errors.Is(err, bmc.ErrNotSupported) {
			ctrl.LoggerFrom(ctx).V(1).Info("BMC does not support setting the indicator LED", "error", err.Error())
			return nil
		}
		return fmt.Errorf("setting the indicator LED to %s: %w", want, err)
	}
	info, err := sc.bmc.SystemInfo(ctx, uri)
	if err != nil {
		return fmt.Errorf("reading the indicator LED: %w", err)
	}
	if l := serverIndicatorLED(info.IndicatorLED); l != "" {
		s.Status.IndicatorLED = l
	}
	return nil
}

// reconcileReserved serves a live claim, or releases the server once its claim is gone.
func (r *ServerReconciler) reconcileReserved(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	if s.Spec.ServerClaimRef == nil {
		// The binding was removed (Recycle after a release, the claim controller, or by hand).
		done, err := r.release(ctx, sc, false)
		if err != nil || !done {
			return r.powerResult(done, err)
		}
		if r.wipeDue(s) {
			return r.startWipe(ctx, sc, "")
		}
		sc.eventf(nil, corev1.EventTypeNormal, "Available", "Release",
			"Server is off and its claim reference cleared; it is Available again")
		return r.transition(ctx, sc, metalv1alpha1.ServerStateAvailable)
	}

	claim, err := r.liveClaim(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	if claim != nil {
		if err := r.applySettings(ctx, sc, claim); err != nil {
			return ctrl.Result{}, err
		}
		return r.serveClaim(ctx, sc, claim)
	}

	ref := s.Spec.ServerClaimRef
	// Retain keeps a server a claim had: one it booted for. A binding the claim never used
	// is simply undone.
	if s.Spec.ReclaimPolicy == metalv1alpha1.ReclaimPolicyRetain && binding.BootedForReference(s) {
		done, err := r.release(ctx, sc, false)
		if err != nil || !done {
			return r.powerResult(done, err)
		}
		sc.eventf(nil, corev1.EventTypeNormal, "Released", "Release",
			"Claim %s/%s is gone; server is off and Released (reclaim policy Retain)", ref.Namespace, ref.Name)
		return r.transition(ctx, sc, metalv1alpha1.ServerStateReleased)
	}
	// Recycle, and any other value: clear the binding; the next look finds it cleared, or
	// the wipe it owes starts now.
	done, err := r.release(ctx, sc, true)
	if err != nil || !done {
		return r.powerResult(done, err)
	}
	if r.wipeDue(s) {
		return r.startWipe(ctx, sc, ref.Namespace+"/"+ref.Name)
	}
	return r.inFlight()
}

// release powers the server off (gracefully, forced after PowerOffTimeout) and, once the BMC
// confirms it is off, clears spec.bootConfigurationRef, and spec.serverClaimRef too if
// clearClaim, in one locked patch. It reports whether the server is released.
func (r *ServerReconciler) release(ctx context.Context, sc *serverScope, clearClaim bool) (bool, error) {
	off, err := r.ensureOff(ctx, sc, metalv1alpha1.ServerWaitingForPowerOff)
	if err != nil || !off {
		return false, err
	}
	err = r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) {
		o.Spec.BootConfigurationRef = nil
		if clearClaim {
			o.Spec.ServerClaimRef = nil
		}
	})
	return err == nil, err
}

// liveClaim returns the claim the server is bound to, or nil if it is gone: deleted, being
// deleted, re-created under the same name (another uid), bound to another server, or its
// lease ended (binding.LeaseEnded: released as on deletion, though the claim stays). A claim
// the cache does not show as live is confirmed through the API reader before the server is
// released.
func (r *ServerReconciler) liveClaim(ctx context.Context, s *metalv1alpha1.Server) (*metalv1alpha1.ServerClaim, error) {
	ref := s.Spec.ServerClaimRef
	key := client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}
	claim := &metalv1alpha1.ServerClaim{}
	live := func(c *metalv1alpha1.ServerClaim) bool {
		return binding.ClaimIsLive(s, c) && !binding.LeaseEnded(c, time.Now())
	}
	err := r.Get(ctx, key, claim)
	if err == nil && live(claim) {
		return claim, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading claim %s: %w", key, err)
	}
	claim = &metalv1alpha1.ServerClaim{}
	if err := r.APIReader.Get(ctx, key, claim); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading claim %s: %w", key, err)
	}
	if !live(claim) {
		return nil, nil
	}
	return claim, nil
}

// serveClaim drives a reserved server for its live claim: once the claim's boot configuration
// is Ready, power follows claim.spec.power; the claim's first power-on is a one-time network
// boot.
func (r *ServerReconciler) serveClaim(ctx context.Context, sc *serverScope, claim *metalv1alpha1.ServerClaim) (ctrl.Result, error) {
	s := sc.obj
	ref := s.Spec.BootConfigurationRef
	if ref == nil {
		// The claim controller sets it together with the claim reference.
		return r.settled()
	}
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, sbc); err != nil {
		if apierrors.IsNotFound(err) {
			// Not created yet; its creation wakes the server up.
			return r.settled()
		}
		return ctrl.Result{}, fmt.Errorf("reading ServerBootConfiguration %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	if sbc.Status.State != metalv1alpha1.ServerBootConfigurationStateReady {
		// Pending or Error: nothing boots before the configuration is Ready. Its change wakes
		// the server up.
		return r.settled()
	}
	if !binding.Confirmed(s, claim) {
		// Nothing powers on or boots for a binding the claim has not recorded; its update
		// wakes the server.
		return r.settled()
	}
	switch claim.Spec.Power {
	case metalv1alpha1.PowerOn:
		if s.Status.NetworkBootClaimUID != string(claim.UID) {
			return r.firstBoot(ctx, sc, claim, sbc)
		}
		return r.powerResult(r.ensureOn(ctx, sc))
	case metalv1alpha1.PowerOff:
		return r.powerResult(r.ensureOff(ctx, sc, metalv1alpha1.ServerPoweringOff))
	}
	return r.settled()
}

// firstBoot powers a server on for the first time for a claim, from the network, once. A
// server found already running for the claim (a rebuilt status, or a boot whose record was
// lost) is adopted, not provisioned again.
func (r *ServerReconciler) firstBoot(ctx context.Context, sc *serverScope, claim *metalv1alpha1.ServerClaim, sbc *metalv1alpha1.ServerBootConfiguration) (ctrl.Result, error) {
	s := sc.obj
	switch sc.power {
	case bmc.PowerStateOn:
		s.Status.NetworkBootClaimUID = string(claim.UID)
		return r.inFlight()
	case bmc.PowerStateOff:
	default:
		// A transition is running: decide once it ends.
		return r.inFlight()
	}
	if ok, wait, err := r.powerQueue.admit(ctx, s); err != nil || !ok {
		return ctrl.Result{RequeueAfter: wait}, err
	}
	uri := s.Spec.SystemURI
	if err := sc.bmc.SetBootOverride(ctx, uri, bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeUEFI, Once: true}); err != nil {
		return ctrl.Result{}, fmt.Errorf("setting the one-time network boot: %w", err)
	}
	// The window opens only once the BMC took the network boot, right before the power-on: a
	// BMC that refuses the override leaves no window open for anyone to take.
	if err := r.openBootWindow(ctx, sbc); err != nil {
		return conflictOr(ctrl.Result{}, err, r.Options.TransitionPollInterval)
	}
	if err := sc.bmc.PowerOn(ctx, uri); err != nil {
		return ctrl.Result{}, fmt.Errorf("powering on: %w", err)
	}
	s.Status.NetworkBootClaimUID = string(claim.UID)
	setCondition(s, metalv1alpha1.ServerNetworkBoot, metav1.ConditionTrue, metalv1alpha1.ReasonClaimFirstBoot,
		fmt.Sprintf("One-time network boot set for the first boot of claim %s/%s", claim.Namespace, claim.Name))
	startCondition(s, metalv1alpha1.ServerPoweringOn, metalv1alpha1.ReasonPowerOnIssued, "Power-on requested (network boot)")
	supersede(s, metalv1alpha1.ServerPoweringOff, metalv1alpha1.ServerWaitingForPowerOff)
	// No event: the NetworkBoot condition and status.networkBootClaimUID record it (they
	// outlive an event), and at fleet scale an event per claim costs a write and the
	// recorder's memory; the claim's Ready event tells its user.
	return r.inFlight()
}

// reconcileReleased keeps a retained server off until its claim reference is cleared.
func (r *ServerReconciler) reconcileReleased(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	if s.Spec.ServerClaimRef == nil {
		if r.wipeDue(s) {
			return r.startWipe(ctx, sc, "")
		}
		sc.eventf(nil, corev1.EventTypeNormal, "Available", "Release",
			"Claim reference cleared; server is Available again")
		return r.transition(ctx, sc, metalv1alpha1.ServerStateAvailable)
	}
	if s.Spec.BootConfigurationRef != nil {
		if err := r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) { o.Spec.BootConfigurationRef = nil }); err != nil {
			return ctrl.Result{}, err
		}
	}
	return r.powerResult(r.ensureOff(ctx, sc, metalv1alpha1.ServerPoweringOff))
}

// reconcileDelete lets a server go. A server bound to a live claim (and not parked) is held
// by its finalizer, and powered off, until the claim is gone, so that no claim is left bound
// to nothing. An unclaimed server goes at once, without talking to its BMC. The claim's boot
// configuration belongs to the claim and is left alone.
func (r *ServerReconciler) reconcileDelete(ctx context.Context, sc *serverScope) (ctrl.Result, error) {
	s := sc.obj
	if !controllerutil.ContainsFinalizer(s, metalv1alpha1.ServerFinalizer) {
		sc.gone = true
		return ctrl.Result{}, nil
	}
	if s.Spec.ServerClaimRef != nil && !binding.HasParkedMarker(s) {
		claim, err := r.liveClaim(ctx, s)
		if err != nil {
			return ctrl.Result{}, err
		}
		if claim != nil {
			return r.waitForClaim(ctx, sc, claim)
		}
	}
	if err := r.finishAgentBoot(ctx, sc); err != nil {
		return ctrl.Result{}, err
	}
	err := r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) {
		controllerutil.RemoveFinalizer(o, metalv1alpha1.ServerFinalizer)
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	sc.gone = true
	return ctrl.Result{}, nil
}

// waitForClaim holds a server being deleted until its claim is gone, and powers it off
// meanwhile if its BMC answers.
func (r *ServerReconciler) waitForClaim(ctx context.Context, sc *serverScope, claim *metalv1alpha1.ServerClaim) (ctrl.Result, error) {
	s := sc.obj
	if c := findCondition(s, metalv1alpha1.ServerDeletionBlocked); c == nil || c.Status != metav1.ConditionTrue {
		sc.eventf(claim, corev1.EventTypeWarning, "DeletionBlocked", "Delete",
			"Server is being deleted; it waits until claim %s/%s is gone", claim.Namespace, claim.Name)
	}
	setCondition(s, metalv1alpha1.ServerDeletionBlocked, metav1.ConditionTrue, metalv1alpha1.ReasonWaitingForClaim,
		fmt.Sprintf("The server is being deleted and waits until claim %s/%s is deleted", claim.Namespace, claim.Name))
	if err := r.connect(ctx, sc); err != nil {
		if r.recordBMCError(sc, err) == "" {
			return ctrl.Result{}, fmt.Errorf("talking to the BMC: %w", err)
		}
		return ctrl.Result{RequeueAfter: r.errorBackoff(s)}, nil
	}
	res, err := r.powerResult(r.ensureOff(ctx, sc, metalv1alpha1.ServerPoweringOff))
	if err != nil && r.recordBMCError(sc, err) != "" {
		return ctrl.Result{RequeueAfter: r.errorBackoff(s)}, nil
	}
	return res, err
}

// powerResult turns the outcome of a power step into a result: settled once the power state is
// reached, else a look again after TransitionPollInterval.
func (r *ServerReconciler) powerResult(reached bool, err error) (ctrl.Result, error) {
	switch {
	case err != nil:
		return ctrl.Result{}, err
	case reached:
		return r.settled()
	}
	return r.inFlight()
}
