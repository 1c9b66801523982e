package controller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/metrics"
)

// BMCOptions tune the BMC controller. Start from DefaultBMCOptions; all but
// FailureResetDelay (0 = off) must be positive.
type BMCOptions struct {
	// ResyncInterval is how often an enrolled BMC is read again: systems that appear on or
	// disappear from a BMC produce no watch event and are seen at this pace. It is also the
	// longest delay between two attempts at a failing BMC.
	ResyncInterval time.Duration
	// MaxConcurrentReconciles is the number of BMCs reconciled in parallel.
	MaxConcurrentReconciles int
	// FailureResetDelay is how long a BMC's Redfish service may fail (Ready=False,
	// Unreachable with an HTTP 5xx answer, or BMCError) before the BMC is reset (Redfish
	// Manager.Reset). 0 turns the automatic reset off.
	FailureResetDelay time.Duration
	// MaxResetsPerHour bounds the resets the operator sends one BMC within any hour.
	MaxResetsPerHour int
	// ResetWaitingInterval is how long a reset BMC is given to come back before it is
	// judged again.
	ResetWaitingInterval time.Duration
	// Events configure the BMCs' Redfish event subscriptions (bmc_events.go).
	Events EventOptions
}

// DefaultBMCOptions are the defaults of the manager's flags.
func DefaultBMCOptions() BMCOptions {
	return BMCOptions{ResyncInterval: 2 * time.Minute, MaxConcurrentReconciles: 5,
		MaxResetsPerHour: 2, ResetWaitingInterval: 2 * time.Minute, Events: DefaultEventOptions()}
}

// BindFlags registers the options as flags on fs, with the current values as defaults.
func (o *BMCOptions) BindFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.ResyncInterval, "bmc-resync-interval", o.ResyncInterval,
		"How often a BMC is read again for systems that appeared or disappeared.")
	fs.IntVar(&o.MaxConcurrentReconciles, "bmc-max-concurrent-reconciles", o.MaxConcurrentReconciles,
		"Number of BMCs reconciled in parallel.")
	fs.DurationVar(&o.FailureResetDelay, "bmc-failure-reset-delay", o.FailureResetDelay,
		"How long a BMC's Redfish service may fail before the BMC is reset (Redfish Manager.Reset); 0 turns automatic resets off.")
	fs.IntVar(&o.MaxResetsPerHour, "bmc-max-resets-per-hour", o.MaxResetsPerHour,
		"Most resets sent to one BMC within any hour.")
	fs.DurationVar(&o.ResetWaitingInterval, "bmc-reset-waiting-interval", o.ResetWaitingInterval,
		"How long a reset BMC is given to come back before it is judged again.")
	o.Events.BindFlags(fs)
}

// Validate reports options that are missing or out of range.
func (o BMCOptions) Validate() error {
	err := positive(map[string]any{"ResyncInterval": o.ResyncInterval, "MaxConcurrentReconciles": o.MaxConcurrentReconciles,
		"MaxResetsPerHour": o.MaxResetsPerHour, "ResetWaitingInterval": o.ResetWaitingInterval})
	if o.FailureResetDelay < 0 {
		err = errors.Join(err, fmt.Errorf("FailureResetDelay must not be negative, got %s", o.FailureResetDelay))
	}
	return errors.Join(err, o.Events.Validate())
}

// bmcRetryMin is the shortest delay before a failing BMC is tried again (ResyncInterval when
// that is shorter).
const bmcRetryMin = time.Second

// BMCReconciler enrolls the systems behind a BMC as Servers and reports the BMC's state.
//
// status.state, the printer-column summary:
//
//	Pending   the BMC has not answered yet (new, unreachable or its secret missing since creation)
//	Enabled   the BMC answers and reports at least one system; every system has a Server
//	Error     the BMC answered at least once and cannot be used now: wrong credentials, TLS,
//	          no systems, or unreachable / secret gone after it had been reached
//
// Condition Ready says the same with a reason (Enrolled, or SecretNotFound, Unauthorized,
// Unreachable, TLSError, UnsupportedProtocol, NoAddress, NoSystems, BMCError). A failing BMC
// is tried again after a delay that grows with the time it has been failing, up to
// ResyncInterval; a change of the BMC or of its BMCSecret is acted on at once.
//
// Enrollment, on every reconcile of a reachable BMC: each system the BMC reports gets one
// Server, found by its UUID (case-insensitively) – the Server this BMC controls, else an
// existing Server without a controller and without another BMC in spec.bmcRef, which is
// adopted, else a new one named by BMCServerName (see bmc_enroll.go for the index rule).
// Servers get the BMC's labels (added or updated, never removed), spec.bmcRef and
// spec.systemURI. Servers are never deleted for a system that disappears: condition
// SystemsMissing lists them instead.
//
// Deletion: the finalizer holds the BMC while any Server reached through it (spec.bmcRef) is
// bound to a claim (condition DeletionBlocked); then its Redfish event subscriptions are
// removed (bmc_events.go), then the finalizer, and the Servers the BMC owns are
// garbage-collected, each held by the server controller's own finalizer as needed.
type BMCReconciler struct {
	client.Client
	// APIReader reads around the cache before a decision that must not rest on a stale cache
	// (is any server still claimed?).
	APIReader client.Reader
	// Scheme resolves the BMC's kind for owner references.
	Scheme *runtime.Scheme
	// Recorder emits events (events.k8s.io).
	Recorder events.EventRecorder
	// Connector builds a BMC client for a BMC object (normally a *access.RedfishConnector).
	Connector access.ObjectConnector
	Options   BMCOptions

	// pending remembers Servers created a moment ago that the cache may not show yet.
	pending *pendingServers
	writer  objectWriter[*metalv1alpha1.BMC]
}

// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=bmcs,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=bmcs/status,verbs=patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=bmcs/finalizers,verbs=update
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=bmcsecrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=endpoints,verbs=get;list;watch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=servers,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// bmcScope is what one reconcile of a BMC works with.
type bmcScope = scope[*metalv1alpha1.BMC]

// Reconcile connects to one BMC, enrolls its systems and records what it found.
func (r *BMCReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.writer.reconcile(ctx, req.NamespacedName, &metalv1alpha1.BMC{}, r.Recorder, metalv1alpha1.BMCFinalizer, r.retryMin(), r.reconcileNormal, r.reconcileDelete)
}

// retryMin is the shortest delay of a look again.
func (r *BMCReconciler) retryMin() time.Duration { return min(bmcRetryMin, r.Options.ResyncInterval) }

// reconcileNormal keeps the Servers' labels in sync, then reads the BMC, enrolls its systems
// and records the outcome.
func (r *BMCReconciler) reconcileNormal(ctx context.Context, sc *bmcScope) (ctrl.Result, error) {
	obj := sc.obj
	obj.Status.ObservedGeneration = obj.Generation
	if obj.Status.State == "" {
		obj.Status.State = metalv1alpha1.BMCStatePending
	}
	if obj.Spec.Access != nil && obj.Spec.Access.IP != "" {
		obj.Status.IP = obj.Spec.Access.IP
	}
	if err := r.resolveEndpoint(ctx, obj); err != nil {
		if _, ok := errors.AsType[*access.Error](err); ok {
			return r.failed(ctx, sc, err)
		}
		return ctrl.Result{}, err
	}

	servers, err := r.serversOf(ctx, obj.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	// Labels need no answer from the BMC.
	for _, s := range servers {
		if isControlledBy(s, obj) {
			if err := r.patchServer(ctx, s, func(o *metalv1alpha1.Server) { binding.CopyLabels(o, obj.Labels) }); err != nil {
				return ctrl.Result{}, err
			}
		}
	}

	conn, err := r.Connector.ConnectBMC(ctx, obj)
	if err != nil {
		return r.failed(ctx, sc, err)
	}
	defer func() { _ = conn.Logout(context.WithoutCancel(ctx)) }()
	if res, done, err := r.handleOperation(ctx, sc, conn); done {
		return res, err
	}
	var cl bmc.Inventory = conn // enrollment only reads

	info, err := cl.Manager(ctx)
	switch {
	case err == nil:
		observeManager(obj, info)
	case errors.Is(err, bmc.ErrNotFound), errors.Is(err, bmc.ErrNotSupported):
		// A BMC without a manager resource still has systems to enroll.
		ctrl.LoggerFrom(ctx).V(1).Info("BMC has no manager resource", "error", err.Error())
	default:
		return r.failedReset(ctx, sc, conn, err)
	}
	systems, err := cl.Systems(ctx)
	if err != nil {
		return r.failedReset(ctx, sc, conn, err)
	}

	r.resetComplete(sc)

	out, err := r.enroll(ctx, sc, systems, servers)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(systems) == 0 {
		r.notReady(sc, metalv1alpha1.ReasonNoSystems, "The BMC answers but reports no systems", true)
		return ctrl.Result{RequeueAfter: r.retryAfter(obj)}, nil
	}
	r.ready(sc, out.readyMessage(len(systems)))
	r.reconcileEvents(ctx, sc, conn)
	if out.waiting {
		return ctrl.Result{RequeueAfter: r.retryMin()}, nil
	}
	return ctrl.Result{RequeueAfter: r.Options.ResyncInterval}, nil
}

// macPattern is what status.macAddress accepts.
var bmcMACPattern = regexp.MustCompile(`^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$`)

// observeManager copies what the BMC reports about itself into the status.
func observeManager(obj *metalv1alpha1.BMC, info bmc.ManagerInfo) {
	st := &obj.Status
	st.Manufacturer = info.Manufacturer
	st.Model = info.Model
	st.SKU = info.SKU
	st.SerialNumber = info.SerialNumber
	st.FirmwareVersion = info.FirmwareVersion
	st.PowerState = bmcPowerState(info.PowerState)
	switch {
	case bmcMACPattern.MatchString(info.MACAddress):
		st.MACAddress = info.MACAddress
	case obj.Spec.Access != nil && obj.Spec.Access.MACAddress != "":
		st.MACAddress = obj.Spec.Access.MACAddress
	}
}

// bmcPowerState maps a power state reported by the BMC to the API's.
func bmcPowerState(p bmc.PowerState) metalv1alpha1.BMCPowerState {
	switch p {
	case bmc.PowerStateOn, bmc.PowerStateOff, bmc.PowerStatePaused, bmc.PowerStatePoweringOn, bmc.PowerStatePoweringOff:
		return metalv1alpha1.BMCPowerState(p)
	}
	return metalv1alpha1.BMCUnknownPowerState
}

// bmcFailureReason is access.Failure for a BMC object: a BMC object has no system of its
// own to miss, and an error that is neither classified nor the API server's nor a cancelled
// reconcile's came from the BMC once it answered (this reconcile talks to the BMC only after
// connecting): both are BMCError.
func bmcFailureReason(ctx context.Context, err error) (reason string, answered bool) {
	reason, answered = access.Failure(err)
	var apiErr apierrors.APIStatus
	cancelled := ctx.Err() != nil || errors.Is(err, context.Canceled)
	if reason == metalv1alpha1.ReasonSystemNotFound || (reason == "" && !cancelled && !errors.As(err, &apiErr)) {
		return metalv1alpha1.ReasonBMCError, true
	}
	return reason, answered
}

// failed records that the BMC cannot be used and looks again after a delay.
func (r *BMCReconciler) failed(ctx context.Context, sc *bmcScope, err error) (ctrl.Result, error) {
	reason, answered := bmcFailureReason(ctx, err)
	if reason == "" {
		return ctrl.Result{}, fmt.Errorf("talking to the BMC: %w", err)
	}
	r.notReady(sc, reason, access.Message(err), answered)
	return ctrl.Result{RequeueAfter: r.retryAfter(sc.obj)}, nil
}

// notReady sets Ready=False with the reason, and the state: Error once the BMC answered (now or
// before), Pending while it never has.
func (r *BMCReconciler) notReady(sc *bmcScope, reason, msg string, answered bool) {
	obj := sc.obj
	prev := bmcCondition(obj, metalv1alpha1.BMCReady)
	if answered || obj.Status.State == metalv1alpha1.BMCStateEnabled || obj.Status.State == metalv1alpha1.BMCStateError {
		obj.Status.State = metalv1alpha1.BMCStateError
	} else {
		obj.Status.State = metalv1alpha1.BMCStatePending
	}
	r.setCondition(obj, metalv1alpha1.BMCReady, metav1.ConditionFalse, reason, msg)
	if prev.Status != metav1.ConditionFalse || prev.Reason != reason {
		sc.eventf(nil, corev1.EventTypeWarning, reason, "Connect", "BMC cannot be used (%s): %s", reason, msg)
	}
}

// ready sets state Enabled and Ready=True.
func (r *BMCReconciler) ready(sc *bmcScope, msg string) {
	obj := sc.obj
	prev := bmcCondition(obj, metalv1alpha1.BMCReady)
	obj.Status.State = metalv1alpha1.BMCStateEnabled
	r.setCondition(obj, metalv1alpha1.BMCReady, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled, msg)
	if prev.Status != metav1.ConditionTrue {
		sc.eventf(nil, corev1.EventTypeNormal, "Ready", "Connect", "BMC answers: %s", msg)
	}
}

// bmcCondition returns a copy of the BMC's condition of type t (the zero Condition if it has
// none): a copy, because setting a condition changes the one in the list in place.
func bmcCondition(obj *metalv1alpha1.BMC, t string) metav1.Condition {
	if c := meta.FindStatusCondition(obj.Status.Conditions, t); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// setCondition sets a condition of the BMC; its LastTransitionTime changes only with its status.
func (r *BMCReconciler) setCondition(obj *metalv1alpha1.BMC, t string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{
		Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: obj.Generation,
	})
}

// retryAfter is the delay before a failing BMC is tried again (backoffSince the Ready
// condition turned False, between retryMin and ResyncInterval).
func (r *BMCReconciler) retryAfter(obj *metalv1alpha1.BMC) time.Duration {
	return backoffSince(falseCondition(obj.Status.Conditions, metalv1alpha1.BMCReady), r.retryMin(), r.Options.ResyncInterval)
}

// reconcileDelete lets the BMC go once no server reached through it is bound to a claim.
func (r *BMCReconciler) reconcileDelete(ctx context.Context, sc *bmcScope) (ctrl.Result, error) {
	obj := sc.obj
	if !controllerutil.ContainsFinalizer(obj, metalv1alpha1.BMCFinalizer) {
		sc.gone = true
		return ctrl.Result{}, nil
	}
	claimed, err := r.claimedServers(ctx, obj.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(claimed) > 0 {
		prev := bmcCondition(obj, metalv1alpha1.BMCDeletionBlocked)
		msg := fmt.Sprintf("The BMC is being deleted and waits until %d claimed server(s) are released: %s",
			len(claimed), shortList(claimed))
		r.setCondition(obj, metalv1alpha1.BMCDeletionBlocked, metav1.ConditionTrue, metalv1alpha1.ReasonServersClaimed, msg)
		if prev.Status != metav1.ConditionTrue {
			sc.eventf(nil, corev1.EventTypeWarning, "DeletionBlocked", "Delete", "%s", msg)
		}
		// A released server wakes the BMC up (watch); the resync is a safety net.
		return ctrl.Result{RequeueAfter: r.Options.ResyncInterval}, nil
	}
	if res, done, err := r.removeSubscriptions(ctx, sc); done {
		return res, err
	}
	base := obj.DeepCopy()
	controllerutil.RemoveFinalizer(obj, metalv1alpha1.BMCFinalizer)
	if err := r.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("removing the finalizer: %w", err)
	}
	ctrl.LoggerFrom(ctx).Info("BMC released; its servers are left to garbage collection")
	r.pending.forget(obj.UID)
	sc.gone = true
	return ctrl.Result{}, nil
}

// claimedServers lists "server (namespace/claim)" for the servers reached through the BMC
// that are bound to a claim. A cached answer "none" is confirmed by reading each server
// around the cache: letting the BMC go must not rest on a stale cache.
func (r *BMCReconciler) claimedServers(ctx context.Context, bmcName string) ([]string, error) {
	servers, err := r.serversOf(ctx, bmcName)
	if err != nil {
		return nil, err
	}
	claimed := func(list []*metalv1alpha1.Server) []string {
		var out []string
		for _, s := range list {
			if ref := s.Spec.ServerClaimRef; ref != nil {
				out = append(out, fmt.Sprintf("%s (%s/%s)", s.Name, ref.Namespace, ref.Name))
			}
		}
		slices.Sort(out)
		return out
	}
	if out := claimed(servers); len(out) > 0 {
		return out, nil
	}
	live := make([]*metalv1alpha1.Server, 0, len(servers))
	for _, s := range servers {
		cur := &metalv1alpha1.Server{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(s), cur); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("reading server %s: %w", s.Name, err)
		}
		if cur.Spec.BMCRef != nil && cur.Spec.BMCRef.Name == bmcName {
			live = append(live, cur)
		}
	}
	return claimed(live), nil
}

// serversOf lists the servers reached through the BMC (spec.bmcRef), from the cache.
func (r *BMCReconciler) serversOf(ctx context.Context, bmcName string) ([]*metalv1alpha1.Server, error) {
	var list metalv1alpha1.ServerList
	if err := r.List(ctx, &list, client.MatchingFields{index.ServerBMCRef: bmcName}); err != nil {
		return nil, fmt.Errorf("listing the BMC's servers: %w", err)
	}
	out := make([]*metalv1alpha1.Server, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	slices.SortFunc(out, func(a, b *metalv1alpha1.Server) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// patchServer applies mutate to a server with one locked merge patch, if it changes
// anything, and updates s to the written object.
func (r *BMCReconciler) patchServer(ctx context.Context, s *metalv1alpha1.Server, mutate func(*metalv1alpha1.Server)) error {
	_, err := patchLocked(ctx, r.Client, s, mutate)
	return err
}

// isControlledBy reports whether the BMC is the server's controller.
func isControlledBy(s *metalv1alpha1.Server, obj *metalv1alpha1.BMC) bool {
	ref := metav1.GetControllerOf(s)
	return ref != nil && ref.UID == obj.UID
}

// resolveEndpoint gives a BMC that names an Endpoint (the deprecated spec.endpointRef, set
// instead of spec.access) the Endpoint's IP address as status.ip, where the connector and the
// BMC's servers find it.
func (r *BMCReconciler) resolveEndpoint(ctx context.Context, obj *metalv1alpha1.BMC) error {
	ref := obj.Spec.EndpointRef
	if ref == nil || obj.Spec.Access != nil {
		return nil
	}
	ep := &metalv1alpha1.Endpoint{}
	if err := r.Get(ctx, client.ObjectKey{Name: ref.Name}, ep); err != nil {
		if apierrors.IsNotFound(err) {
			return access.NewError(metalv1alpha1.ReasonEndpointNotFound, "Endpoint %s (spec.endpointRef) does not exist", ref.Name)
		}
		return fmt.Errorf("reading Endpoint %s: %w", ref.Name, err)
	}
	if ep.Spec.IP == "" && (obj.Spec.Hostname == nil || *obj.Spec.Hostname == "") {
		return access.NewError(metalv1alpha1.ReasonNoAddress, "Endpoint %s (spec.endpointRef) has no spec.ip, and the BMC no spec.hostname", ref.Name)
	}
	obj.Status.IP = ep.Spec.IP
	return nil
}

// shortList joins at most maxListed items and says how many were left out.
func shortList(items []string) string {
	const maxListed = 10
	if len(items) <= maxListed {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:maxListed], ", "), len(items)-maxListed)
}

// SetupWithManager registers the controller, its watches and the BMC metrics.
func (r *BMCReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := checkSetup("BMCReconciler", &r.Options, map[string]bool{"Client": r.Client != nil, "APIReader": r.APIReader != nil, "Scheme": r.Scheme != nil, "Connector": r.Connector != nil, "Recorder": r.Recorder != nil}); err != nil {
		return err
	}
	r.pending = newPendingServers()
	r.writer = objectWriter[*metalv1alpha1.BMC]{client: r.Client, versions: newVersions(),
		status: func(b *metalv1alpha1.BMC) any { return &b.Status }}
	metrics.RegisterBMCMetrics()
	return ctrl.NewControllerManagedBy(mgr).
		Named("bmc").
		For(&metalv1alpha1.BMC{}, builder.WithPredicates(ownChangePredicate(true))).
		Owns(&metalv1alpha1.Server{}, builder.WithPredicates(serverChangedForBMC(), r.notCreatedHere())).
		Watches(&metalv1alpha1.Server{}, enqueueBMCForServer(), builder.WithPredicates(serverChangedForBMC(), r.notCreatedHere())).
		Watches(&metalv1alpha1.BMCSecret{}, r.enqueueBMCsBy(index.BMCSecret)).
		Watches(&metalv1alpha1.Endpoint{}, r.enqueueBMCsBy(index.BMCEndpoint)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Complete(r)
}

// serverChangedForBMC lets through server changes the BMC acts on: creation, deletion, and
// changes of the fields enrollment and deletion look at (system UUID and URI, BMC and claim
// references, labels, owners). The server controller's frequent status writes are ignored,
// so that they do not cost a round of requests to the BMC.
func serverChangedForBMC() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*metalv1alpha1.Server)
			n, ok2 := e.ObjectNew.(*metalv1alpha1.Server)
			if !ok1 || !ok2 {
				return true
			}
			return o.Spec.SystemUUID != n.Spec.SystemUUID || o.Spec.SystemURI != n.Spec.SystemURI ||
				!equality.Semantic.DeepEqual(o.Spec.BMCRef, n.Spec.BMCRef) ||
				(o.Spec.ServerClaimRef == nil) != (n.Spec.ServerClaimRef == nil) ||
				!o.DeletionTimestamp.Equal(n.DeletionTimestamp) ||
				!maps.Equal(o.Labels, n.Labels) ||
				!equality.Semantic.DeepEqual(o.OwnerReferences, n.OwnerReferences)
		},
	}
}

// notCreatedHere drops the creation events of the Servers this controller created a moment
// ago (pendingServers): the reconcile that created them has enrolled them, and another round
// would only read every system of the BMC again. Servers created by anyone else still wake
// their BMC (adoption).
func (r *BMCReconciler) notCreatedHere() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool {
			s, ok := e.Object.(*metalv1alpha1.Server)
			if !ok {
				return true
			}
			ref := metav1.GetControllerOf(s)
			return ref == nil || !r.pending.has(ref.UID, strings.ToLower(s.Spec.SystemUUID))
		},
	}
}

// enqueueBMCForServer maps a server to the BMC named in its spec.bmcRef (Owns covers the BMC
// that controls it).
func enqueueBMCForServer() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		s, ok := obj.(*metalv1alpha1.Server)
		if !ok || s.Spec.BMCRef == nil || s.Spec.BMCRef.Name == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: s.Spec.BMCRef.Name}}}
	})
}

// enqueueBMCsBy maps an object to the BMCs whose field index (index.BMCSecret,
// index.BMCEndpoint) names it.
func (r *BMCReconciler) enqueueBMCsBy(field string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		var list metalv1alpha1.BMCList
		if err := r.List(ctx, &list, client.MatchingFields{field: obj.GetName()}); err != nil {
			// A map function cannot return an error; the retry of a failing BMC covers a missed event.
			ctrl.LoggerFrom(ctx).Error(err, "Listing BMCs", "index", field, "object", klog.KObj(obj))
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
		return reqs
	})
}
