package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/agent/report"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/boot"
	"github.com/metalfleet/metal-operator/internal/boot/ignition"
)

// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverbootconfigurations,verbs=create;delete
// +kubebuilder:rbac:groups="",namespace=system,resources=secrets,verbs=create;delete
// +kubebuilder:rbac:groups="",namespace=system,resources=configmaps,verbs=get;list;watch;delete

// An agent boot is a network boot of the in-band agent (cmd/metal-agent) on a server that
// holds no claim: discovery when the server is new, a wipe after a claim. The server
// controller makes three objects in the agent namespace, all named after the server and
// owned by it: a ServerBootConfiguration (annotated Internal and with the agent mode, which
// the boot server turns into the agent's kernel parameters), the ignition Secret that starts
// the agent, and, written by the boot server when the agent reports, the report ConfigMap.
//
// One attempt: the configuration is created; once it is Ready the server is powered off if
// needed, set to boot once from the network, the configuration's credential window opened,
// and powered on; the agent reports; the report is handed to the caller. An attempt that
// has no report within AgentBootTimeout (the configuration never became Ready, the machine
// never booted, the agent never reported) ends with a reasoned condition, the objects are
// deleted, and a new attempt starts after AgentRetryDelay: discovery and wipe never wait
// forever, and a restarted manager carries on from what the objects and the condition say.

// agentBoot describes one kind of agent boot.
type agentBoot struct {
	// mode is metalv1alpha1.AgentModeDiscover or AgentModeWipe.
	mode string
	// policy is the wipe policy of a wipe boot.
	policy metalv1alpha1.WipePolicy
	// condition records the attempts: Discovered or Wiped.
	condition string
}

// agentIgnition is the ignition of every agent boot: it starts the agent, which reads its
// mode, the boot server and its credential from the kernel command line.
var agentIgnition = `{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"metal-agent.service","enabled":true,` +
	`"contents":"[Unit]\nDescription=metal-operator in-band agent\nWants=network-online.target\nAfter=network-online.target\n` +
	`[Service]\nType=oneshot\nExecStart=/usr/local/bin/metal-agent\n[Install]\nWantedBy=multi-user.target\n"}]}}`

// agentBootsEnabled reports whether this manager can boot the agent at all.
func (r *ServerReconciler) agentBootsEnabled() bool {
	return r.Options.AgentImage != "" && r.Options.AgentNamespace != ""
}

// agentKey is where a server's agent boot objects live.
func (r *ServerReconciler) agentKey(s *metalv1alpha1.Server) types.NamespacedName {
	return types.NamespacedName{Namespace: r.Options.AgentNamespace, Name: s.Name}
}

// runAgentBoot drives the agent boot b of a server one step. It returns the accepted report
// of the current attempt once there is one; until then the result says when to look again.
func (r *ServerReconciler) runAgentBoot(ctx context.Context, sc *serverScope, b agentBoot) (*corev1.ConfigMap, ctrl.Result, error) {
	s := sc.obj
	key := r.agentKey(s)
	cond := findCondition(s, b.condition)
	if cond != nil && cond.Status == metav1.ConditionFalse && attemptFailed(cond.Reason) {
		if wait := time.Until(cond.LastTransitionTime.Add(r.Options.AgentRetryDelay)); wait > 0 {
			return nil, ctrl.Result{RequeueAfter: wait}, nil
		}
	}

	if cond == nil || cond.Reason != metalv1alpha1.ReasonAgentBooting {
		restartCondition(s, b.condition, metav1.ConditionFalse, metalv1alpha1.ReasonAgentBooting,
			fmt.Sprintf("The in-band agent boots over the network to %s; its report is due within %s", b.mode, r.Options.AgentBootTimeout))
		cond = findCondition(s, b.condition)
	}

	sbc := &metalv1alpha1.ServerBootConfiguration{}
	if err := r.Get(ctx, key, sbc); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, ctrl.Result{}, fmt.Errorf("reading ServerBootConfiguration %s: %w", key, err)
		}
		res, err := r.createAgentBoot(ctx, sc, b)
		return nil, res, err
	}
	if !sbc.DeletionTimestamp.IsZero() || sbc.Annotations[metalv1alpha1.AgentModeAnnotation] != b.mode ||
		sbc.Annotations[metalv1alpha1.WipePolicyAnnotation] != string(b.policy) || sbc.Spec.ServerRef.Name != s.Name {
		// Left over from another kind of boot (or another server of that name): start over.
		if err := r.deleteAgentBoot(ctx, s); err != nil {
			return nil, ctrl.Result{}, err
		}
		res, err := r.inFlight()
		return nil, res, err
	}
	if ref := s.Spec.BootConfigurationRef; ref == nil || ref.Namespace != key.Namespace || ref.Name != key.Name {
		if err := r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) {
			o.Spec.BootConfigurationRef = &metalv1alpha1.ObjectReference{Namespace: key.Namespace, Name: key.Name}
		}); err != nil {
			return nil, ctrl.Result{}, err
		}
	}

	cm := &corev1.ConfigMap{}
	err := r.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: boot.ReportName(key.Name)}, cm)
	switch {
	case err == nil && cm.Annotations[boot.ReportBootConfigurationUIDAnnotation] == string(sbc.UID):
		// A report is trusted only once the real machine would have asked for its boot too:
		// if someone else won this boot's credential, the machine's own request, seconds
		// after its power-on, is recorded as misuse within the grace.
		if c := sbc.Status.BootCredential; c != nil && c.IssuedAt != nil {
			if wait := time.Until(c.IssuedAt.Add(r.Options.AgentReportGrace)); wait > 0 {
				return nil, ctrl.Result{RequeueAfter: wait}, nil
			}
		}
		// A credential presented from another address leaked, but the report came from the
		// address it is pinned to; any other misuse (another requester: the pinned one may not
		// be the server) makes the report untrustworthy.
		if c := meta.FindStatusCondition(sbc.Status.Conditions, metalv1alpha1.BootConfigurationBootCredentialMisused); c != nil &&
			c.Status == metav1.ConditionTrue && c.Reason != metalv1alpha1.ReasonWrongSourceAddress {
			res, err := r.rejectAgentBoot(ctx, sc, b, fmt.Sprintf("The %s boot's credential was misused (%s): its report is not trusted", b.mode, c.Reason))
			return nil, res, err
		}
		return cm, ctrl.Result{}, nil
	case err != nil && !apierrors.IsNotFound(err):
		return nil, ctrl.Result{}, fmt.Errorf("reading the agent report of %s: %w", key, err)
	}

	started := cond.LastTransitionTime.Time
	left := time.Until(started.Add(r.Options.AgentBootTimeout + conditionResolution))
	if left <= 0 {
		res, err := r.failAgentBoot(ctx, sc, b, sbc)
		return nil, res, err
	}
	if sbc.Status.State != metalv1alpha1.ServerBootConfigurationStateReady {
		// Its change wakes the server; the timeout is the backstop.
		return nil, ctrl.Result{RequeueAfter: left}, nil
	}
	if c := sbc.Status.BootCredential; c != nil && !c.WindowOpenedAt.Time.Before(started.Truncate(time.Second)) {
		// Booted in this attempt: the report's ConfigMap wakes the server.
		return nil, ctrl.Result{RequeueAfter: min(left, r.Options.ResyncInterval)}, nil
	}
	res, err := r.startAgentBoot(ctx, sc, b, sbc)
	return nil, res, err
}

// attemptFailed reports whether a condition reason ends a failed attempt.
func attemptFailed(reason string) bool {
	return reason == metalv1alpha1.ReasonReportTimeout || reason == metalv1alpha1.ReasonBootConfigurationNotReady ||
		reason == metalv1alpha1.ReasonReportRejected
}

// createAgentBoot creates the ignition Secret and the boot configuration of an agent boot,
// both owned by the server.
func (r *ServerReconciler) createAgentBoot(ctx context.Context, sc *serverScope, b agentBoot) (ctrl.Result, error) {
	s := sc.obj
	key := r.agentKey(s)
	owner := []metav1.OwnerReference{{
		APIVersion: metalv1alpha1.GroupVersion.String(), Kind: "Server", Name: s.Name, UID: s.UID,
	}}
	labels := map[string]string{metalv1alpha1.AgentReportServerLabel: s.Name}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name + "-agent", Labels: labels, OwnerReferences: owner},
		Data:       map[string][]byte{ignition.KeyIgnition: []byte(agentIgnition), ignition.KeyFormat: []byte(ignition.FormatIgnition)},
	}
	if err := r.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("creating the agent's ignition Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	annotations := map[string]string{
		metalv1alpha1.BootConfigurationTypeAnnotation: metalv1alpha1.BootConfigurationTypeInternal,
		metalv1alpha1.AgentModeAnnotation:             b.mode,
	}
	if b.policy != "" {
		annotations[metalv1alpha1.WipePolicyAnnotation] = string(b.policy)
	}
	sbc := &metalv1alpha1.ServerBootConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: labels,
			Annotations: annotations, OwnerReferences: owner},
		Spec: metalv1alpha1.ServerBootConfigurationSpec{
			ServerRef:         metalv1alpha1.LocalObjectReference{Name: s.Name},
			Image:             r.Options.AgentImage,
			IgnitionSecretRef: &metalv1alpha1.LocalObjectReference{Name: secret.Name},
		},
	}
	if err := r.Create(ctx, sbc); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("creating the agent's ServerBootConfiguration %s: %w", key, err)
	}
	return r.inFlight()
}

// startAgentBoot boots the agent: off first, then a one-time network boot, the credential
// window, and power on.
func (r *ServerReconciler) startAgentBoot(ctx context.Context, sc *serverScope, b agentBoot, sbc *metalv1alpha1.ServerBootConfiguration) (ctrl.Result, error) {
	s := sc.obj
	off, err := r.ensureOff(ctx, sc, metalv1alpha1.ServerPoweringOff)
	if err != nil || !off {
		return r.powerResult(off, err)
	}
	// Agent boots wait for their turn in the power domain like a claim's (a new rack is
	// discovered all at once).
	if ok, wait, err := r.powerQueue.admit(ctx, s); err != nil || !ok {
		return ctrl.Result{RequeueAfter: wait}, err
	}
	uri := s.Spec.SystemURI
	if err := sc.bmc.SetBootOverride(ctx, uri, bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeUEFI, Once: true}); err != nil {
		return ctrl.Result{}, fmt.Errorf("setting the one-time network boot of the agent: %w", err)
	}
	if err := r.openBootWindow(ctx, sbc); err != nil {
		return conflictOr(ctrl.Result{}, err, r.Options.TransitionPollInterval)
	}
	if err := sc.bmc.PowerOn(ctx, uri); err != nil {
		return ctrl.Result{}, fmt.Errorf("powering on for the agent: %w", err)
	}
	startCondition(s, metalv1alpha1.ServerPoweringOn, metalv1alpha1.ReasonPowerOnIssued, "Power-on requested (agent network boot)")
	sc.eventf(nil, corev1.EventTypeNormal, "AgentBoot", "PowerOn", "The in-band agent boots over the network to %s", b.mode)
	return r.inFlight()
}

// failAgentBoot ends an attempt without report: a reasoned condition and a Warning, the
// objects deleted (a new attempt gets a fresh configuration and credential), the server
// powered off; the next attempt starts after AgentRetryDelay.
func (r *ServerReconciler) failAgentBoot(ctx context.Context, sc *serverScope, b agentBoot, sbc *metalv1alpha1.ServerBootConfiguration) (ctrl.Result, error) {
	s := sc.obj
	reason, msg := metalv1alpha1.ReasonReportTimeout,
		fmt.Sprintf("The in-band agent sent no %s report within %s; retried in %s", b.mode, r.Options.AgentBootTimeout, r.Options.AgentRetryDelay)
	if sbc.Status.State != metalv1alpha1.ServerBootConfigurationStateReady {
		reason, msg = metalv1alpha1.ReasonBootConfigurationNotReady,
			fmt.Sprintf("The agent's boot configuration %s/%s did not become Ready within %s (state %q); retried in %s",
				sbc.Namespace, sbc.Name, r.Options.AgentBootTimeout, sbc.Status.State, r.Options.AgentRetryDelay)
	}
	off, err := r.ensureOff(ctx, sc, metalv1alpha1.ServerPoweringOff)
	if err != nil || !off {
		return r.powerResult(off, err)
	}
	if err := r.deleteAgentBoot(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	restartCondition(s, b.condition, metav1.ConditionFalse, reason, msg)
	sc.eventf(nil, corev1.EventTypeWarning, reason, "AgentBoot", "%s", msg)
	return ctrl.Result{RequeueAfter: r.Options.AgentRetryDelay}, nil
}

// rejectAgentBoot ends an attempt whose report cannot be trusted or used: a wipe fails
// closed (the server is held in Error); a discovery is tried again after AgentRetryDelay.
func (r *ServerReconciler) rejectAgentBoot(ctx context.Context, sc *serverScope, b agentBoot, msg string) (ctrl.Result, error) {
	s := sc.obj
	if b.mode == metalv1alpha1.AgentModeWipe {
		return r.failWipe(ctx, sc, metalv1alpha1.ReasonWipeFailed, msg)
	}
	off, err := r.ensureOff(ctx, sc, metalv1alpha1.ServerPoweringOff)
	if err != nil || !off {
		return r.powerResult(off, err)
	}
	if err := r.deleteAgentBoot(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	restartCondition(s, b.condition, metav1.ConditionFalse, metalv1alpha1.ReasonReportRejected, msg+"; retried in "+r.Options.AgentRetryDelay.String())
	sc.eventf(nil, corev1.EventTypeWarning, metalv1alpha1.ReasonReportRejected, "AgentBoot", "%s", msg)
	return ctrl.Result{RequeueAfter: r.Options.AgentRetryDelay}, nil
}

// deleteAgentBoot deletes a server's agent boot objects, if any.
func (r *ServerReconciler) deleteAgentBoot(ctx context.Context, s *metalv1alpha1.Server) error {
	key := r.agentKey(s)
	objs := []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: boot.ReportName(key.Name)}},
		&metalv1alpha1.ServerBootConfiguration{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name + "-agent"}},
	}
	for _, o := range objs {
		if err := r.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting the agent boot's %T %s: %w", o, key, err)
		}
	}
	return nil
}

// finishAgentBoot cleans up after an agent boot once the server left the state that ran
// it: the objects are deleted and spec.bootConfigurationRef cleared if it still names them.
// Cheap when there is nothing to do (a cache read).
func (r *ServerReconciler) finishAgentBoot(ctx context.Context, sc *serverScope) error {
	if r.Options.AgentNamespace == "" {
		return nil
	}
	s := sc.obj
	key := r.agentKey(s)
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	err := r.Get(ctx, key, sbc)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading ServerBootConfiguration %s: %w", key, err)
	}
	if err == nil && sbc.Annotations[metalv1alpha1.AgentModeAnnotation] != "" {
		if err := r.deleteAgentBoot(ctx, s); err != nil {
			return err
		}
	}
	if ref := s.Spec.BootConfigurationRef; ref != nil && ref.Namespace == key.Namespace && ref.Name == key.Name {
		return r.writer.patchSpec(ctx, sc.scope, func(o *metalv1alpha1.Server) { o.Spec.BootConfigurationRef = nil })
	}
	return nil
}

// decodeReport decodes an accepted report of the agent into out, as strictly as the boot
// server did before it stored it; a report that no longer decodes (edited by hand) is an
// error to the caller.
func decodeReport(cm *corev1.ConfigMap, out interface{ Validate() error }) error {
	if err := report.DecodeStrict([]byte(cm.Data[boot.ReportKey]), out); err != nil {
		return fmt.Errorf("the agent report %s/%s does not decode: %w", cm.Namespace, cm.Name, err)
	}
	return out.Validate()
}
