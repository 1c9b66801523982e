package controller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/index"
)

// ServerClaimOptions tune the ServerClaim controller.
type ServerClaimOptions struct {
	// MaxConcurrentReconciles is the number of claims reconciled in parallel.
	MaxConcurrentReconciles int
	// UnboundRetryMin and UnboundRetryMax bound the backoff with which a claim that found
	// no server looks again, so that it never waits forever for an unrelated event.
	UnboundRetryMin, UnboundRetryMax time.Duration
	// ServerReservedGrace is how long a claim whose server is not yet Reserved waits before
	// it writes a status saying so. Within it, the server controller's Reserved write
	// usually arrives first and the claim goes straight to Bound with one status write.
	ServerReservedGrace time.Duration
	// ExpectationTimeout is how long the controller trusts its own binding write without
	// seeing it in the cache before it confirms it with an uncached read.
	ExpectationTimeout time.Duration
}

// DefaultServerClaimOptions are the defaults of the manager's flags.
func DefaultServerClaimOptions() ServerClaimOptions {
	return ServerClaimOptions{
		MaxConcurrentReconciles: 10,
		UnboundRetryMin:         2 * time.Second,
		UnboundRetryMax:         2 * time.Minute,
		ServerReservedGrace:     10 * time.Second,
		ExpectationTimeout:      30 * time.Second,
	}
}

// ServerClaimReconciler binds ServerClaims to Servers.
//
// A claim moves through these states (status.phase, and the reason of its Bound condition):
//
//	Unbound (NoMatchingServer, ServerNotFound, ServerClaimedByOther, ...)
//	   -- a fitting server is found --> one locked patch of the server (claim ref with uid and
//	      boot configuration ref), the boot configuration created, one patch of the claim
//	      (finalizer and spec.serverRef)
//	   -- the server controller marks the server Reserved --> Bound
//	Bound -- the server is lost (deleted, claim ref cleared) --> Unbound, boot configuration removed
//	any   -- deletion --> boot configuration deleted, a binding the server never took up
//	         undone, finalizer removed; the server controller powers the server off and
//	         applies its reclaim policy.
//
// The decision that a server is free and the write that takes it are tied by an optimistic
// lock on the server. What a claim already holds is found through the index on
// spec.serverClaimRef.uid and, for its own writes not yet in the cache, through in-memory
// expectations (one manager is active at a time; a restarted one starts from a fresh List),
// so a stale cache can never make a claim take a second server.
type ServerClaimReconciler struct {
	client.Client
	// APIReader reads around the cache when a decision must not rest on a stale cache.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Options   ServerClaimOptions

	pool   *binding.Pool
	expect *expectations
	// versions keeps decisions off cached claims older than the controller's own writes.
	versions *objectVersions
}

// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverclaims,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverclaims/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverclaims/finalizers,verbs=update
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=servers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverbootconfigurations,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one claim closer to a binding.
func (r *ServerClaimReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	claim := &metalv1alpha1.ServerClaim{}
	if err := r.Get(ctx, req.NamespacedName, claim); err != nil {
		if apierrors.IsNotFound(err) {
			r.versions.forget(req.String())
			return ctrl.Result{}, r.releaseOrphans(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	// A cached claim older than this controller's last write to it would repeat that write
	// (a server event can arrive before the claim's own): wait a moment for the cache. If
	// it lags for long, go on: every write here is idempotent or guarded.
	if trusted, waiting := r.versions.observe(req.String(), claim.ResourceVersion); !trusted && waiting < cacheLagLimit {
		return ctrl.Result{RequeueAfter: cacheCatchUpDelay}, nil
	}
	if claim.Annotations[metalv1alpha1.OperationAnnotation] == metalv1alpha1.OperationAnnotationIgnore {
		return ctrl.Result{}, nil
	}
	if !claim.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, claim)
	}
	// The finalizer is added together with spec.serverRef once a server is taken (see
	// recordBinding): a claim that holds nothing has nothing to clean up, and one write
	// fewer per binding matters at fleet scale.
	res, err := r.reconcileNormal(ctx, claim)
	if apierrors.IsConflict(err) {
		// Someone else wrote the claim or a server since the cache was read: look again.
		return ctrl.Result{RequeueAfter: cacheCatchUpDelay}, nil
	}
	return res, err
}

func (r *ServerClaimReconciler) reconcileNormal(ctx context.Context, claim *metalv1alpha1.ServerClaim) (ctrl.Result, error) {
	sel, err := claimSelector(claim)
	if err != nil {
		return r.setUnbound(ctx, claim, metalv1alpha1.ReasonInvalidSelector,
			fmt.Sprintf("spec.serverSelector is invalid: %v", err), false)
	}
	held, err := r.heldServers(ctx, claim)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.releaseRefused(ctx, claim, held); err != nil {
		return ctrl.Result{}, err
	}
	bound := r.chooseHeld(claim, held)
	if bound == nil {
		return r.bind(ctx, claim, sel)
	}
	return r.ensureBound(ctx, claim, bound)
}

// chooseHeld picks the server the claim keeps among those that reference it: the one it
// names, or, while it names none, the one this controller took (else the first by name).
// Servers that reference a claim naming nothing are never released here: another manager may
// be recording one of them on the claim, and only that record, fenced by the claim's
// resourceVersion, decides (see recordBinding).
func (r *ServerClaimReconciler) chooseHeld(claim *metalv1alpha1.ServerClaim, held []*metalv1alpha1.Server) *metalv1alpha1.Server {
	own, _ := r.expect.server(claim.UID)
	var chosen *metalv1alpha1.Server
	for _, s := range held {
		switch {
		case binding.Refused(s, claim):
			continue
		case claim.Spec.ServerRef != nil || s.Name == own:
			return s
		case chosen == nil || s.Name < chosen.Name:
			chosen = s
		}
	}
	return chosen
}

// releaseRefused releases the servers that reference the claim although it names another
// server: a lost race (another manager recorded its own pick first) or a binding undone by
// hand. The claim's spec.serverRef is immutable, so this holds whatever the cache's age.
func (r *ServerClaimReconciler) releaseRefused(ctx context.Context, claim *metalv1alpha1.ServerClaim, held []*metalv1alpha1.Server) error {
	for _, s := range held {
		if binding.Refused(s, claim) {
			if err := r.releaseExtra(ctx, claim, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// heldServers returns the servers whose claim reference names this claim: from the index on
// the reference's uid, from the index on its name (for references without uid), and the
// server this controller bound but the cache does not show yet.
func (r *ServerClaimReconciler) heldServers(ctx context.Context, claim *metalv1alpha1.ServerClaim) ([]*metalv1alpha1.Server, error) {
	seen := map[string]*metalv1alpha1.Server{}
	for _, q := range []struct{ field, value string }{
		{index.ServerClaimUID, string(claim.UID)},
		{index.ServerClaimKey, index.NamespacedKey(claim.Namespace, claim.Name)},
	} {
		list := &metalv1alpha1.ServerList{}
		if err := r.List(ctx, list, client.MatchingFields{q.field: q.value}); err != nil {
			return nil, fmt.Errorf("listing servers by %s: %w", q.field, err)
		}
		for i := range list.Items {
			s := &list.Items[i]
			if binding.HeldBy(s, claim) {
				seen[s.Name] = s
			}
		}
	}
	if name, ok := r.expect.server(claim.UID); ok {
		if _, observed := seen[name]; observed {
			r.expect.observedServer(claim.UID)
		} else {
			s, err := r.pendingServer(ctx, claim, name)
			if err != nil {
				return nil, err
			}
			if s != nil {
				seen[name] = s
			}
		}
	}
	held := make([]*metalv1alpha1.Server, 0, len(seen))
	for _, s := range seen {
		held = append(held, s)
	}
	return held, nil
}

// pendingServer resolves an expectation the cache does not confirm yet: within the timeout
// the write is trusted and the cached server returned as held (with the claim reference the
// write set); past it, the server is read around the cache and the expectation dropped if
// the server does not hold the claim.
func (r *ServerClaimReconciler) pendingServer(ctx context.Context, claim *metalv1alpha1.ServerClaim, name string) (*metalv1alpha1.Server, error) {
	s := &metalv1alpha1.Server{}
	if r.expect.serverAge(claim.UID) > r.Options.ExpectationTimeout {
		if err := r.APIReader.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
			if apierrors.IsNotFound(err) {
				r.expect.observedServer(claim.UID)
				return nil, nil
			}
			return nil, fmt.Errorf("confirming the binding to server %s: %w", name, err)
		}
		r.expect.observedServer(claim.UID)
		if !binding.HeldBy(s, claim) {
			return nil, nil
		}
		return s, nil
	}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			r.expect.observedServer(claim.UID)
			return nil, nil
		}
		return nil, err
	}
	// The cache predates our write: present the server as our write left it, but not as
	// Reserved, since the server controller cannot have seen the binding yet.
	s.Spec.ServerClaimRef = claimRefOf(claim)
	s.Spec.BootConfigurationRef = bootConfigurationRefOf(claim)
	if s.Status.State == metalv1alpha1.ServerStateReserved {
		s.Status.State = metalv1alpha1.ServerStateAvailable
	}
	return s, nil
}

// bind looks for a server for an unbound claim and takes it.
func (r *ServerClaimReconciler) bind(ctx context.Context, claim *metalv1alpha1.ServerClaim, sel labels.Selector) (ctrl.Result, error) {
	if claim.Spec.ServerRef != nil {
		return r.bindByName(ctx, claim, sel)
	}
	excluded := map[string]bool{}
	matchLabels := map[string]string(nil)
	if claim.Spec.ServerSelector != nil {
		matchLabels = claim.Spec.ServerSelector.MatchLabels
	}
	const attempts = 4
	busy := false
	for range attempts {
		cand, ok, held := r.pool.Pick(sel, matchLabels, string(claim.UID), func(c binding.Candidate) bool {
			return !excluded[c.Name] && binding.Tolerates(c.Taints, claim.Spec.Tolerations)
		})
		if !ok {
			busy = held
			break
		}
		excluded[cand.Name] = true
		s, err := r.takeCandidate(ctx, claim, sel, cand.Name)
		if err != nil {
			return ctrl.Result{}, err
		}
		if s != nil {
			return r.ensureBound(ctx, claim, s)
		}
	}
	if len(excluded) > 0 || busy {
		// Candidates were there but taken by others meanwhile, or are being tried by other
		// workers: look again soon, without writing a status that would be stale at once.
		return ctrl.Result{RequeueAfter: r.Options.UnboundRetryMin / 4}, nil
	}
	msg := "No Available, powered-off, uncordoned server matches the claim's selector and tolerations"
	if claim.Spec.ServerSelector == nil {
		msg = "No Available, powered-off, uncordoned server whose taints the claim tolerates"
	}
	return r.setUnbound(ctx, claim, metalv1alpha1.ReasonNoMatchingServer, msg, true)
}

// takeCandidate tries to take a server the pool handed out, and hands it back unless taken.
// It returns the server when the claim took it, nil when it was not free after all.
func (r *ServerClaimReconciler) takeCandidate(ctx context.Context, claim *metalv1alpha1.ServerClaim, sel labels.Selector, name string) (*metalv1alpha1.Server, error) {
	defer r.pool.Done(name)
	s := &metalv1alpha1.Server{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			r.pool.Forget(name)
			return nil, nil
		}
		return nil, err
	}
	if reason, _ := binding.Check(s, claim, sel); reason != "" {
		r.pool.Observe(s)
		return nil, nil
	}
	taken, err := r.take(ctx, claim, s)
	if err != nil || !taken {
		return nil, err
	}
	return s, nil
}

// bindByName binds the server named by spec.serverRef, or says why it cannot.
func (r *ServerClaimReconciler) bindByName(ctx context.Context, claim *metalv1alpha1.ServerClaim, sel labels.Selector) (ctrl.Result, error) {
	name := claim.Spec.ServerRef.Name
	s := &metalv1alpha1.Server{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return r.setUnbound(ctx, claim, metalv1alpha1.ReasonServerNotFound,
				fmt.Sprintf("Server %s does not exist", name), true)
		}
		return ctrl.Result{}, err
	}
	if reason, msg := binding.Check(s, claim, sel); reason != "" {
		return r.setUnbound(ctx, claim, reason, msg, true)
	}
	taken, err := r.take(ctx, claim, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !taken {
		return ctrl.Result{RequeueAfter: r.Options.UnboundRetryMin / 4}, nil
	}
	return r.ensureBound(ctx, claim, s)
}

// take writes the binding onto the server: claim reference (with uid) and boot
// configuration reference in one patch, guarded by the server's resourceVersion as the
// cache saw it. It returns false when the server changed meanwhile (someone else may have
// taken it): the caller picks again.
func (r *ServerClaimReconciler) take(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) (bool, error) {
	base := s.DeepCopy()
	s.Spec.ServerClaimRef = claimRefOf(claim)
	s.Spec.BootConfigurationRef = bootConfigurationRefOf(claim)
	err := r.Patch(ctx, s, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	switch {
	case err == nil:
		r.expect.setServer(claim.UID, s.Name)
		r.pool.Taken(s.Name, s.ResourceVersion)
		ctrl.LoggerFrom(ctx).V(1).Info("Took server", "Server", klog.KObj(s))
		return true, nil
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		r.pool.Drop(s.Name) // the cache is behind; the informer puts it back if it is still free
		return false, nil
	default:
		return false, fmt.Errorf("binding server %s: %w", s.Name, err)
	}
}

// ensureBound completes a binding and reports it: the claim records the server (the fence,
// see recordBinding), the boot configuration is made, then the claim's status.
func (r *ServerClaimReconciler) ensureBound(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(claim, metalv1alpha1.ServerClaimFinalizer) || claim.Spec.ServerRef == nil {
		recorded, err := r.recordBinding(ctx, claim, s)
		if err != nil {
			return ctrl.Result{}, err
		}
		if !recorded {
			return ctrl.Result{RequeueAfter: r.Options.UnboundRetryMin / 4}, nil
		}
	}
	sbc, sbcProblem, err := r.ensureBootConfiguration(ctx, claim, s)
	if err != nil {
		return ctrl.Result{}, err
	}

	if !takenUp(s, claim) {
		// The server controller has not taken up the binding yet. Its Reserved write wakes
		// this claim; only if it is slow does the claim say what it waits for.
		since := claim.CreationTimestamp.Time
		if at, ok := r.expect.takenAt(claim.UID); ok {
			since = at
		}
		waited := time.Since(since)
		if claim.Status.Phase == "" && waited < r.Options.ServerReservedGrace {
			return ctrl.Result{RequeueAfter: r.Options.ServerReservedGrace - waited}, nil
		}
		state := string(s.Status.State)
		if state == "" {
			state = "not yet reconciled"
		}
		return r.setWaiting(ctx, claim, fmt.Sprintf("Server %s is %s; waiting for it to be Reserved", s.Name, state))
	}

	ready := readyCondition(claim, s, sbc, sbcProblem)
	return r.setBound(ctx, claim, s, ready)
}

// recordBinding writes the claim's side of the binding: its finalizer and spec.serverRef.
// Recording a server on a claim that names none is the decision that the claim takes it, and
// it is fenced by the claim's resourceVersion as this reconcile read it, as the server patch
// that took the server was fenced by the server's: of two managers that each took a server
// for the same claim, exactly one records its server, and the other finds the claim naming
// another server and releases its own (Refused). It returns false when the claim was not
// recorded; the caller looks again shortly.
func (r *ServerClaimReconciler) recordBinding(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) (bool, error) {
	base := claim.DeepCopy()
	controllerutil.AddFinalizer(claim, metalv1alpha1.ServerClaimFinalizer)
	patch := client.MergeFrom(base)
	if claim.Spec.ServerRef == nil {
		claim.Spec.ServerRef = &metalv1alpha1.LocalObjectReference{Name: s.Name}
		patch = client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	}
	err := r.Patch(ctx, claim, patch)
	switch {
	case err == nil:
		r.versions.expect(client.ObjectKeyFromObject(claim).String(), claim.ResourceVersion)
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil // gone: its servers are released as orphans
	case !apierrors.IsConflict(err):
		return false, fmt.Errorf("recording server %s on the claim: %w", s.Name, err)
	}
	// The claim changed since it was read; perhaps another manager recorded its own server.
	live := &metalv1alpha1.ServerClaim{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(claim), live); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if live.UID == claim.UID && binding.Refused(s, live) {
		ctrl.LoggerFrom(ctx).V(1).Info("Claim recorded another server; releasing ours",
			"Server", klog.KObj(s), "recorded", live.Spec.ServerRef.Name)
		return false, r.clearServerRefs(ctx, live, s)
	}
	return false, nil
}

// takenUp reports whether the server controller has taken up the claim's binding: the
// server is Reserved for it, or it was and is now parked, in Error or Released; a server
// that booted for the claim took it up whatever its state. A binding not taken up can be
// undone by the claim controller alone.
func takenUp(s *metalv1alpha1.Server, claim *metalv1alpha1.ServerClaim) bool {
	if s.Status.NetworkBootClaimUID != "" && s.Status.NetworkBootClaimUID == string(claim.UID) {
		return true
	}
	switch s.Status.State {
	case metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerStateReleased,
		metalv1alpha1.ServerStateParked, metalv1alpha1.ServerStateError:
		return true
	}
	return false
}

// readyCondition says whether the bound server is ready for the user, and if not, why.
func readyCondition(claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server, sbc *metalv1alpha1.ServerBootConfiguration, sbcProblem string) metav1.Condition {
	notReady := func(reason, msg string) metav1.Condition {
		return metav1.Condition{Type: metalv1alpha1.ServerClaimReady, Status: metav1.ConditionFalse, Reason: reason, Message: msg}
	}
	switch {
	case !s.DeletionTimestamp.IsZero():
		return notReady(metalv1alpha1.ReasonServerDeleting,
			fmt.Sprintf("Server %s is being deleted; it is held until this claim is deleted", s.Name))
	case binding.IsParked(s):
		return notReady(metalv1alpha1.ReasonServerParked, fmt.Sprintf("Server %s is parked", s.Name))
	case s.Status.State == metalv1alpha1.ServerStateError:
		msg := fmt.Sprintf("Server %s is in Error", s.Name)
		if c := meta.FindStatusCondition(s.Status.Conditions, metalv1alpha1.ServerBMCReachable); c != nil && c.Status == metav1.ConditionFalse {
			msg += ": " + c.Message
		}
		return notReady(metalv1alpha1.ReasonServerError, msg)
	case sbcProblem != "":
		return notReady(metalv1alpha1.ReasonBootConfigurationFailed, sbcProblem)
	case sbc == nil || sbc.Status.State == "" || sbc.Status.State == metalv1alpha1.ServerBootConfigurationStatePending:
		return notReady(metalv1alpha1.ReasonBootConfigurationPending,
			fmt.Sprintf("ServerBootConfiguration %s is not Ready yet", claim.Name))
	case sbc.Status.State == metalv1alpha1.ServerBootConfigurationStateError:
		msg := fmt.Sprintf("ServerBootConfiguration %s is in Error", claim.Name)
		for _, c := range sbc.Status.Conditions {
			if c.Status == metav1.ConditionFalse && c.Message != "" {
				msg += ": " + c.Message
				break
			}
		}
		return notReady(metalv1alpha1.ReasonBootConfigurationFailed, msg)
	case claim.Spec.Power == metalv1alpha1.PowerOn && s.Status.PowerState != metalv1alpha1.ServerOnPowerState:
		return notReady(metalv1alpha1.ReasonServerPoweringOn, fmt.Sprintf("Server %s is powered %s, powering On", s.Name, powerOf(s)))
	case claim.Spec.Power == metalv1alpha1.PowerOff && s.Status.PowerState != metalv1alpha1.ServerOffPowerState:
		return notReady(metalv1alpha1.ReasonServerPoweringOff, fmt.Sprintf("Server %s is powered %s, powering Off", s.Name, powerOf(s)))
	}
	return metav1.Condition{Type: metalv1alpha1.ServerClaimReady, Status: metav1.ConditionTrue, Reason: metalv1alpha1.ReasonReady,
		Message: fmt.Sprintf("Server %s booted its configuration and is powered %s", s.Name, powerOf(s))}
}

func powerOf(s *metalv1alpha1.Server) string {
	if s.Status.PowerState == "" {
		return "unknown"
	}
	return string(s.Status.PowerState)
}

// ensureBootConfiguration creates the claim's ServerBootConfiguration, or brings its spec in
// line with the claim. It returns the configuration as the cache has it (nil right after
// creating it) and a problem message when a foreign object stands in the way.
func (r *ServerClaimReconciler) ensureBootConfiguration(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) (*metalv1alpha1.ServerBootConfiguration, string, error) {
	want := metalv1alpha1.ServerBootConfigurationSpec{
		ServerRef:         metalv1alpha1.LocalObjectReference{Name: s.Name},
		Image:             claim.Spec.Image,
		IgnitionSecretRef: claim.Spec.IgnitionSecretRef,
	}
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	err := r.Get(ctx, client.ObjectKeyFromObject(claim), sbc)
	switch {
	case apierrors.IsNotFound(err):
		if r.expect.bootConfigurationCreated(claim.UID) {
			return nil, "", nil // created by us, not in the cache yet
		}
		sbc = &metalv1alpha1.ServerBootConfiguration{
			ObjectMeta: metav1.ObjectMeta{Namespace: claim.Namespace, Name: claim.Name},
			Spec:       want,
		}
		if err := controllerutil.SetControllerReference(claim, sbc, r.Scheme); err != nil {
			return nil, "", err
		}
		if err := r.Create(ctx, sbc); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, "", fmt.Errorf("creating ServerBootConfiguration %s: %w", claim.Name, err)
		}
		r.expect.setBootConfigurationCreated(claim.UID)
		return nil, "", nil
	case err != nil:
		return nil, "", err
	}
	r.expect.observedBootConfiguration(claim.UID)
	if !metav1.IsControlledBy(sbc, claim) {
		return sbc, fmt.Sprintf("ServerBootConfiguration %s/%s exists and is not owned by this claim", sbc.Namespace, sbc.Name), nil
	}
	if !bootSpecEqual(sbc.Spec, want) {
		base := sbc.DeepCopy()
		sbc.Spec = want
		if err := r.Patch(ctx, sbc, client.MergeFrom(base)); err != nil {
			return nil, "", fmt.Errorf("updating ServerBootConfiguration %s: %w", sbc.Name, err)
		}
	}
	return sbc, "", nil
}

func bootSpecEqual(a, b metalv1alpha1.ServerBootConfigurationSpec) bool {
	if a.ServerRef != b.ServerRef || a.Image != b.Image {
		return false
	}
	if (a.IgnitionSecretRef == nil) != (b.IgnitionSecretRef == nil) {
		return false
	}
	return a.IgnitionSecretRef == nil || *a.IgnitionSecretRef == *b.IgnitionSecretRef
}

// releaseExtra undoes a binding this claim must not keep: a second server (which only a
// lost race can produce) or a server other than the one spec.serverRef names. Only the
// claim's references are removed, under the server's optimistic lock; the server controller
// powers it off if it had been Reserved.
func (r *ServerClaimReconciler) releaseExtra(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) error {
	if err := r.clearServerRefs(ctx, claim, s); err != nil {
		return err
	}
	r.Recorder.Eventf(claim, s, "Warning", "ExtraServerReleased", "Release",
		"Released server %s, which held this claim although the claim is bound to another server", s.Name)
	return nil
}

// clearServerRefs removes the claim's references from a server, if it still holds them.
func (r *ServerClaimReconciler) clearServerRefs(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server) error {
	if name, ok := r.expect.server(claim.UID); ok && name == s.Name {
		r.expect.observedServer(claim.UID)
	}
	base := s.DeepCopy()
	s.Spec.ServerClaimRef = nil
	if ref := s.Spec.BootConfigurationRef; ref != nil && ref.Namespace == claim.Namespace && ref.Name == claim.Name {
		s.Spec.BootConfigurationRef = nil
	}
	err := r.Patch(ctx, s, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("releasing server %s: %w", s.Name, err)
	}
	return nil
}

// reconcileDelete removes the claim's boot configuration, undoes a binding the server never
// took up, and lets the claim go. Powering the server off and applying its reclaim policy is
// the server controller's job; the claim does not wait for it, so a claim on an unreachable
// server stays deletable.
func (r *ServerClaimReconciler) reconcileDelete(ctx context.Context, claim *metalv1alpha1.ServerClaim) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(claim, metalv1alpha1.ServerClaimFinalizer) {
		r.expect.forget(claim.UID)
		return ctrl.Result{}, nil
	}
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	if err := r.Get(ctx, client.ObjectKeyFromObject(claim), sbc); err == nil {
		if metav1.IsControlledBy(sbc, claim) {
			err := r.Delete(ctx, sbc, client.Preconditions{UID: &sbc.UID})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return ctrl.Result{}, fmt.Errorf("deleting ServerBootConfiguration %s: %w", sbc.Name, err)
			}
		}
	} else if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}

	held, err := r.heldServers(ctx, claim)
	if err != nil {
		return ctrl.Result{}, err
	}
	for _, s := range held {
		if takenUp(s, claim) {
			// Released by the server controller once the claim is gone.
			r.Recorder.Eventf(claim, s, "Normal", "Unbinding", "Delete",
				"Claim deleted; server %s is powered off and reclaimed by its policy", s.Name)
			continue
		}
		// Never taken up: nothing was booted for this claim, so the binding is simply undone
		// (a Retain policy does not apply to a server the claim never had).
		if err := r.clearServerRefs(ctx, claim, s); err != nil {
			return ctrl.Result{}, err
		}
	}

	base := claim.DeepCopy()
	controllerutil.RemoveFinalizer(claim, metalv1alpha1.ServerClaimFinalizer)
	if err := r.Patch(ctx, claim, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("removing the finalizer: %w", err)
	}
	r.expect.forget(claim.UID)
	return ctrl.Result{}, nil
}

// releaseOrphans undoes bindings to a claim that is gone before it recorded them: a claim
// deleted between the server patch and its own patch had no finalizer, so it vanished
// without cleaning up. Only servers that never took the binding up (not Reserved) are
// released here, after confirming around the cache that the claim they hold is gone; a
// Reserved server is released by the server controller.
func (r *ServerClaimReconciler) releaseOrphans(ctx context.Context, key types.NamespacedName) error {
	list := &metalv1alpha1.ServerList{}
	if err := r.List(ctx, list, client.MatchingFields{index.ServerClaimKey: index.NamespacedKey(key.Namespace, key.Name)}); err != nil {
		return fmt.Errorf("listing servers holding %s: %w", key, err)
	}
	var live *metalv1alpha1.ServerClaim
	for i := range list.Items {
		s := &list.Items[i]
		if s.Status.State != metalv1alpha1.ServerStateAvailable && s.Status.State != metalv1alpha1.ServerStateInitial &&
			s.Status.State != metalv1alpha1.ServerStateDiscovery && s.Status.State != "" {
			continue // taken up, or in Error: the server controller releases it
		}
		if live == nil {
			live = &metalv1alpha1.ServerClaim{}
			if err := r.APIReader.Get(ctx, key, live); err != nil {
				if !apierrors.IsNotFound(err) {
					return fmt.Errorf("confirming that claim %s is gone: %w", key, err)
				}
				live.UID = ""
			}
		}
		if live.UID != "" && (s.Spec.ServerClaimRef.UID == "" || s.Spec.ServerClaimRef.UID == string(live.UID)) {
			continue // the claim exists after all: the cache was behind
		}
		orphan := &metalv1alpha1.ServerClaim{ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace, Name: key.Name, UID: types.UID(s.Spec.ServerClaimRef.UID)}}
		if err := r.clearServerRefs(ctx, orphan, s); err != nil {
			return err
		}
		r.expect.forget(orphan.UID)
	}
	return nil
}

// setUnbound records why the claim holds no server, with one status write at most and only
// when something changed. A claim that lost its server drops its boot configuration, so that
// two configurations never point at one server. retry asks for a look again after a backoff
// that grows with the time the claim has been unbound.
func (r *ServerClaimReconciler) setUnbound(ctx context.Context, claim *metalv1alpha1.ServerClaim, reason, msg string, retry bool) (ctrl.Result, error) {
	wasBound := claim.Status.Phase == metalv1alpha1.PhaseBound
	if wasBound {
		if err := r.deleteBootConfiguration(ctx, claim); err != nil {
			return ctrl.Result{}, err
		}
	}
	base := claim.DeepCopy()
	claim.Status.Phase = metalv1alpha1.PhaseUnbound
	claim.Status.ObservedGeneration = claim.Generation
	boundChanged := meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
		Type: metalv1alpha1.ServerClaimBound, Status: metav1.ConditionFalse, Reason: reason, Message: msg,
		ObservedGeneration: claim.Generation,
	})
	meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
		Type: metalv1alpha1.ServerClaimReady, Status: metav1.ConditionFalse, Reason: reason, Message: msg,
		ObservedGeneration: claim.Generation,
	})
	if err := r.patchStatus(ctx, claim, base); err != nil {
		return ctrl.Result{}, err
	}
	if wasBound {
		r.Recorder.Eventf(claim, nil, "Warning", metalv1alpha1.ReasonBindingLost, "Unbind", "Lost its server: %s", msg)
	} else if boundChanged {
		r.Recorder.Eventf(claim, nil, "Warning", reason, "Bind", "%s", msg)
	}
	if !retry {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: r.unboundBackoff(claim)}, nil
}

// setWaiting records that the claim's binding is written and waits for the server
// controller. Unlike setUnbound it keeps the boot configuration: the claim holds the server.
func (r *ServerClaimReconciler) setWaiting(ctx context.Context, claim *metalv1alpha1.ServerClaim, msg string) (ctrl.Result, error) {
	base := claim.DeepCopy()
	claim.Status.Phase = metalv1alpha1.PhaseUnbound
	claim.Status.ObservedGeneration = claim.Generation
	for _, t := range []string{metalv1alpha1.ServerClaimBound, metalv1alpha1.ServerClaimReady} {
		meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
			Type: t, Status: metav1.ConditionFalse, Reason: metalv1alpha1.ReasonWaitingForServer, Message: msg,
			ObservedGeneration: claim.Generation,
		})
	}
	if err := r.patchStatus(ctx, claim, base); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.unboundBackoff(claim)}, nil
}

// unboundBackoff grows with how long the claim has been unbound, between the configured
// bounds: a claim that just failed looks again soon, one that has waited for hours rarely.
func (r *ServerClaimReconciler) unboundBackoff(claim *metalv1alpha1.ServerClaim) time.Duration {
	since := claim.CreationTimestamp.Time
	if c := meta.FindStatusCondition(claim.Status.Conditions, metalv1alpha1.ServerClaimBound); c != nil {
		since = c.LastTransitionTime.Time
	}
	d := time.Since(since) / 4
	return min(max(d, r.Options.UnboundRetryMin), r.Options.UnboundRetryMax)
}

// setBound records a binding and its readiness. Like a PersistentVolumeClaim, a claim bound
// at once says so in its phase and Bound condition only; the Bound event marks the end of a
// wait the claim reported in its status (a Bound=False condition: a rejection, a lost
// binding, or a slow server controller), so that a burst of claims costs no event per
// binding.
func (r *ServerClaimReconciler) setBound(ctx context.Context, claim *metalv1alpha1.ServerClaim, s *metalv1alpha1.Server, ready metav1.Condition) (ctrl.Result, error) {
	wasBound := claim.Status.Phase == metalv1alpha1.PhaseBound
	waited := meta.IsStatusConditionFalse(claim.Status.Conditions, metalv1alpha1.ServerClaimBound)
	base := claim.DeepCopy()
	claim.Status.Phase = metalv1alpha1.PhaseBound
	claim.Status.ObservedGeneration = claim.Generation
	meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
		Type: metalv1alpha1.ServerClaimBound, Status: metav1.ConditionTrue, Reason: metalv1alpha1.ReasonBound,
		Message: fmt.Sprintf("Bound to server %s", s.Name), ObservedGeneration: claim.Generation,
	})
	ready.ObservedGeneration = claim.Generation
	wasReady := meta.IsStatusConditionTrue(claim.Status.Conditions, metalv1alpha1.ServerClaimReady)
	meta.SetStatusCondition(&claim.Status.Conditions, ready)
	if err := r.patchStatus(ctx, claim, base); err != nil {
		return ctrl.Result{}, err
	}
	if !wasBound {
		r.expect.reported(claim.UID)
		if waited {
			r.Recorder.Eventf(claim, s, "Normal", metalv1alpha1.ReasonBound, "Bind", "Bound to server %s", s.Name)
		}
		observeBound(claim)
	}
	if !wasReady && ready.Status == metav1.ConditionTrue {
		r.Recorder.Eventf(claim, s, "Normal", metalv1alpha1.ReasonReady, "Ready", "%s", ready.Message)
		observeReady(claim)
	}
	return ctrl.Result{}, nil
}

// patchStatus writes the claim's status if it differs from base.
func (r *ServerClaimReconciler) patchStatus(ctx context.Context, claim, base *metalv1alpha1.ServerClaim) error {
	if statusEqual(base.Status, claim.Status) {
		return nil
	}
	// Locked: a status decided from an older copy of the claim (a second manager, or one
	// that stalled) must not overwrite a newer one.
	if err := r.Status().Patch(ctx, claim, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("writing the claim status: %w", err)
	}
	r.versions.expect(client.ObjectKeyFromObject(claim).String(), claim.ResourceVersion)
	return nil
}

func statusEqual(a, b metalv1alpha1.ServerClaimStatus) bool {
	if a.Phase != b.Phase || a.ObservedGeneration != b.ObservedGeneration || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message ||
			x.ObservedGeneration != y.ObservedGeneration || !x.LastTransitionTime.Equal(&y.LastTransitionTime) {
			return false
		}
	}
	return true
}

func (r *ServerClaimReconciler) deleteBootConfiguration(ctx context.Context, claim *metalv1alpha1.ServerClaim) error {
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	if err := r.Get(ctx, client.ObjectKeyFromObject(claim), sbc); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(sbc, claim) {
		return nil
	}
	r.expect.observedBootConfiguration(claim.UID)
	if err := r.Delete(ctx, sbc, client.Preconditions{UID: &sbc.UID}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting ServerBootConfiguration %s: %w", sbc.Name, err)
	}
	return nil
}

func claimSelector(claim *metalv1alpha1.ServerClaim) (labels.Selector, error) {
	if claim.Spec.ServerSelector == nil {
		return nil, nil
	}
	return metav1.LabelSelectorAsSelector(claim.Spec.ServerSelector)
}

func claimRefOf(claim *metalv1alpha1.ServerClaim) *metalv1alpha1.ImmutableObjectReference {
	return &metalv1alpha1.ImmutableObjectReference{Namespace: claim.Namespace, Name: claim.Name, UID: string(claim.UID)}
}

func bootConfigurationRefOf(claim *metalv1alpha1.ServerClaim) *metalv1alpha1.ObjectReference {
	return &metalv1alpha1.ObjectReference{Namespace: claim.Namespace, Name: claim.Name}
}

// SetupWithManager registers the controller and the pool's feed from server events.
func (r *ServerClaimReconciler) SetupWithManager(mgr ctrl.Manager) error {
	switch {
	case r.Client == nil, r.APIReader == nil, r.Scheme == nil:
		return errors.New("ServerClaimReconciler needs Client, APIReader and Scheme")
	case r.Recorder == nil:
		return errors.New("ServerClaimReconciler needs an event Recorder")
	case r.Options.MaxConcurrentReconciles <= 0 || r.Options.UnboundRetryMin <= 0 ||
		r.Options.UnboundRetryMax < r.Options.UnboundRetryMin || r.Options.ExpectationTimeout <= 0:
		return fmt.Errorf("ServerClaimReconciler options are incomplete: %+v", r.Options)
	}
	r.pool = binding.NewPool()
	r.expect = newExpectations()
	r.versions = newObjectVersions()
	return ctrl.NewControllerManagedBy(mgr).
		Named("serverclaim").
		For(&metalv1alpha1.ServerClaim{}, builder.WithPredicates(ownChangePredicate(false))).
		Owns(&metalv1alpha1.ServerBootConfiguration{}).
		Watches(&metalv1alpha1.Server{}, r.serverEventHandler()).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Complete(r)
}

// BindFlags registers the options as flags on fs, with the current values as defaults.
func (o *ServerClaimOptions) BindFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.MaxConcurrentReconciles, "server-claim-max-concurrent-reconciles", o.MaxConcurrentReconciles,
		"Number of claims reconciled in parallel.")
	fs.DurationVar(&o.UnboundRetryMin, "server-claim-unbound-retry-min", o.UnboundRetryMin,
		"Shortest delay before a claim that found no server looks again.")
	fs.DurationVar(&o.UnboundRetryMax, "server-claim-unbound-retry-max", o.UnboundRetryMax,
		"Longest delay before a claim that found no server looks again.")
	fs.DurationVar(&o.ServerReservedGrace, "server-claim-reserved-grace", o.ServerReservedGrace,
		"How long a claim waits for its server to turn Reserved before its status says so.")
	fs.DurationVar(&o.ExpectationTimeout, "server-claim-expectation-timeout", o.ExpectationTimeout,
		"How long a binding write is trusted without being seen in the cache before it is confirmed by a direct read.")
}
