package controller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
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
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/message"
)

// BMCUserOptions tune the BMCUser controller. Start from DefaultBMCUserOptions; both must be
// positive.
type BMCUserOptions struct {
	// ResyncInterval is how often an account in place is checked again: that its password
	// still logs in and its role is still the one asked for. It is also the longest delay
	// between two attempts at a failing account.
	ResyncInterval time.Duration
	// MaxConcurrentReconciles is the number of BMCUsers reconciled in parallel.
	MaxConcurrentReconciles int
}

// DefaultBMCUserOptions are the defaults of the manager.
func DefaultBMCUserOptions() BMCUserOptions {
	return BMCUserOptions{ResyncInterval: 5 * time.Minute, MaxConcurrentReconciles: 2}
}

// Validate reports options that are missing or out of range.
func (o BMCUserOptions) Validate() error {
	return positive(map[string]any{"ResyncInterval": o.ResyncInterval, "MaxConcurrentReconciles": o.MaxConcurrentReconciles})
}

// BindFlags registers the options as flags on fs, with the current values as defaults.
func (o *BMCUserOptions) BindFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.ResyncInterval, "bmcuser-resync-interval", o.ResyncInterval,
		"How often a BMCUser's account is checked again; also the longest delay between attempts at a failing one.")
	fs.IntVar(&o.MaxConcurrentReconciles, "bmcuser-max-concurrent-reconciles", o.MaxConcurrentReconciles,
		"Number of BMCUsers reconciled in parallel.")
}

// keepGeneratedSecrets is how many of the BMCSecrets a BMCUser generated are kept: the one in
// use and the one before it. Older ones are deleted once a new one is proven to work.
const keepGeneratedSecrets = 2

// BMCUserReconciler keeps a BMCUser's account on its BMC (spec.bmcRef), talking to the BMC
// with the BMC's own credentials.
//
// Each reconcile decides from what the BMC reports now:
//
//	no spec.bmcSecretRef, the rotate-credentials annotation, the owned secret made for
//	another user name, or (with the secret in use) the password expired or rotationPeriod
//	elapsed since status.lastRotation
//	    -> generate a password within the BMC's rules, keep it in a new immutable BMCSecret
//	       owned by the BMCUser, and point spec.bmcSecretRef at it (the annotation is removed
//	       in the same write)
//	account missing, spec.bmcSecretRef not yet in use, role wrong or account disabled, or
//	the password in use no longer logs in
//	    -> create or update the account (enabled, spec.roleID, the password of
//	       spec.bmcSecretRef) and log in with it
//	login works
//	    -> status.effectiveBMCSecretRef = spec.bmcSecretRef (status.lastRotation = now when
//	       that changes), generated secrets beyond the last two are deleted, Ready=True
//
// status.effectiveBMCSecretRef thus only ever names a secret that was seen to log in. Every
// failure is Ready=False with a reason (see api/v1alpha1/conditions.go) and is tried again
// after a delay that grows with the time it has been failing, up to ResyncInterval.
//
// Deletion: the account is deleted on the BMC, or disabled and its slot emptied where the
// BMC does not delete accounts; an account already gone, a BMC object gone and a BMCUser
// without spec.bmcRef release the finalizer at once. An unreachable BMC holds it.
type BMCUserReconciler struct {
	client.Client
	// APIReader reads around the cache: a secret created a moment ago may not be cached yet.
	APIReader client.Reader
	// Scheme resolves the BMCUser's kind for owner references.
	Scheme *runtime.Scheme
	// Recorder emits events (events.k8s.io).
	Recorder events.EventRecorder
	// Connector builds a client for the BMC object with the BMC's own credentials.
	Connector access.ObjectConnector
	Options   BMCUserOptions

	writer objectWriter[*metalv1alpha1.BMCUser]
}

// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=bmcusers,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=bmcusers/status,verbs=patch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=bmcusers/finalizers,verbs=update
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=bmcsecrets,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=bmcs,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// bmcUserScope is what one reconcile of a BMCUser works with.
type bmcUserScope = scope[*metalv1alpha1.BMCUser]

// Reconcile keeps one BMCUser's account in place.
func (r *BMCUserReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.writer.reconcile(ctx, req.NamespacedName, &metalv1alpha1.BMCUser{}, r.Recorder, metalv1alpha1.BMCUserFinalizer, r.retryMin(), r.reconcileNormal, r.reconcileDelete)
}

// retryMin is the shortest delay of a look again.
func (r *BMCUserReconciler) retryMin() time.Duration {
	return min(bmcRetryMin, r.Options.ResyncInterval)
}

// bmcUserTarget is the BMC of a BMCUser, reached with the BMC's own credentials.
type bmcUserTarget struct {
	obj      *metalv1alpha1.BMC
	client   bmc.BMC
	accounts bmc.Accounts
}

func (t *bmcUserTarget) close(ctx context.Context) { _ = t.client.Logout(context.WithoutCancel(ctx)) }

// connect reads the BMCUser's BMC object and builds a client for it. A BMC that cannot be used
// for this account is an *access.Error.
func (r *BMCUserReconciler) connect(ctx context.Context, u *metalv1alpha1.BMCUser) (*bmcUserTarget, error) {
	obj := &metalv1alpha1.BMC{}
	if err := r.Get(ctx, client.ObjectKey{Name: u.Spec.BMCRef.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, access.NewError(metalv1alpha1.ReasonBMCNotFound, "BMC %s does not exist", u.Spec.BMCRef.Name)
		}
		return nil, fmt.Errorf("reading BMC %s: %w", u.Spec.BMCRef.Name, err)
	}
	cl, err := r.Connector.ConnectBMC(ctx, obj)
	if err != nil {
		return nil, err
	}
	t := &bmcUserTarget{obj: obj, client: cl}
	accounts, ok := cl.(bmc.Accounts)
	if !ok {
		t.close(ctx)
		return nil, access.NewError(metalv1alpha1.ReasonAccountServiceUnsupported, "The client for BMC %s cannot manage accounts", obj.Name)
	}
	t.accounts = accounts
	// The connector read the BMC's secret a moment ago, so the cache has it.
	admin := &metalv1alpha1.BMCSecret{}
	if err := r.Get(ctx, client.ObjectKey{Name: obj.Spec.BMCSecretRef.Name}, admin); err == nil {
		if user, _, _ := admin.Credentials(); user == u.Spec.UserName {
			t.close(ctx)
			return nil, access.NewError(metalv1alpha1.ReasonBMCAdminAccount,
				"%s is the account the operator manages BMC %s with (BMCSecret %s); it is left alone", user, obj.Name, admin.Name)
		}
	}
	return t, nil
}

// reconcileNormal puts the account in place with a password proven to log in.
func (r *BMCUserReconciler) reconcileNormal(ctx context.Context, sc *bmcUserScope) (ctrl.Result, error) {
	u := sc.obj
	u.Status.ObservedGeneration = u.Generation
	if u.Spec.BMCRef == nil {
		r.notReady(sc, metalv1alpha1.ReasonNoBMC, "spec.bmcRef is not set: there is no BMC to keep the account on")
		return ctrl.Result{}, nil
	}
	t, err := r.connect(ctx, u)
	if err != nil {
		return r.failed(ctx, sc, err)
	}
	defer t.close(ctx)

	svc, err := t.accounts.AccountService(ctx)
	if errors.Is(err, bmc.ErrNotFound) || errors.Is(err, bmc.ErrNotSupported) {
		err = access.NewError(metalv1alpha1.ReasonAccountServiceUnsupported, "BMC %s has no AccountService: %v", t.obj.Name, err)
	}
	if err != nil {
		return r.failed(ctx, sc, err)
	}
	if len(svc.Roles) > 0 && !slices.Contains(svc.Roles, u.Spec.RoleID) {
		return r.failed(ctx, sc, access.NewError(metalv1alpha1.ReasonRoleNotFound, "BMC %s has no role %q", t.obj.Name, u.Spec.RoleID))
	}
	accounts, err := t.accounts.ListAccounts(ctx)
	if err != nil {
		return r.failed(ctx, sc, err)
	}
	cur := findAccount(accounts, u.Spec.UserName)
	observeAccount(u, cur)
	now := time.Now()

	secret, err := r.readSecret(ctx, u.Spec.BMCSecretRef)
	if err != nil {
		return ctrl.Result{}, err
	}
	due, _ := rotationDue(u, cur, now)
	if why := r.newSecretReason(u, secret, due); why != "" {
		if secret, err = r.generateSecret(ctx, sc, t, svc, why); err != nil {
			return r.failed(ctx, sc, err)
		}
	}
	if secret == nil {
		return r.failed(ctx, sc, access.NewError(metalv1alpha1.ReasonSecretNotFound, "BMCSecret %s (spec.bmcSecretRef) does not exist", u.Spec.BMCSecretRef.Name))
	}
	user, password, ok := secret.Credentials()
	if !ok || user != u.Spec.UserName {
		return r.failed(ctx, sc, access.NewError(metalv1alpha1.ReasonSecretInvalid,
			"BMCSecret %s (spec.bmcSecretRef) must hold %s %q and a %s", secret.Name,
			metalv1alpha1.BMCSecretUsernameKey, u.Spec.UserName, metalv1alpha1.BMCSecretPasswordKey))
	}

	if err := r.syncAccount(ctx, sc, t, cur, secret.Name, password); err != nil {
		return r.failed(ctx, sc, err)
	}
	if eff := u.Status.EffectiveBMCSecretRef; eff == nil || eff.Name != secret.Name {
		u.Status.EffectiveBMCSecretRef = &metalv1alpha1.LocalObjectReference{Name: secret.Name}
		u.Status.LastRotation = &metav1.Time{Time: now}
		ctrl.LoggerFrom(ctx).Info("Credentials in use", "BMCSecret", secret.Name)
		sc.eventf(nil, corev1.EventTypeNormal, "CredentialsInUse", "Rotate",
			"BMCSecret %s logs in to BMC %s and is now in use", secret.Name, t.obj.Name)
	}
	if err := r.pruneSecrets(ctx, u); err != nil {
		return ctrl.Result{}, err
	}
	r.ready(sc, fmt.Sprintf("Account %s (Id %s) on BMC %s has role %s; the credentials of BMCSecret %s log in",
		u.Spec.UserName, u.Status.ID, t.obj.Name, u.Spec.RoleID, secret.Name))
	due, next := rotationDue(u, cur, now)
	switch {
	case due != "":
		return ctrl.Result{RequeueAfter: r.retryMin()}, nil
	case next > 0 && next < r.Options.ResyncInterval:
		return ctrl.Result{RequeueAfter: next}, nil
	}
	return ctrl.Result{RequeueAfter: r.Options.ResyncInterval}, nil
}

// syncAccount makes the account enabled with the role and password asked for, unless it is
// so already and the password logs in, then proves the password with a login. Whether the
// account has the password is learnt from the login alone, not from the status, which a
// stale cache may show from before the password was set.
func (r *BMCUserReconciler) syncAccount(ctx context.Context, sc *bmcUserScope, t *bmcUserTarget, cur *bmc.Account, secretName, password string) error {
	u := sc.obj
	eff := u.Status.EffectiveBMCSecretRef
	drifted := false
	if cur != nil && cur.RoleID == u.Spec.RoleID && cur.Enabled {
		err := t.accounts.CheckLogin(ctx, u.Spec.UserName, password)
		if !errors.Is(err, bmc.ErrUnauthorized) {
			return err
		}
		// A new password, or someone changed the one in use on the BMC: set it.
		drifted = eff != nil && eff.Name == secretName
	}
	a, err := t.accounts.SetAccount(ctx, bmc.AccountSettings{UserName: u.Spec.UserName, Password: password, RoleID: u.Spec.RoleID})
	switch {
	case errors.Is(err, bmc.ErrNoFreeAccountSlot):
		return access.NewError(metalv1alpha1.ReasonNoFreeAccountSlot, "BMC %s has no free account slot for %s", t.obj.Name, u.Spec.UserName)
	case errors.Is(err, bmc.ErrBadRequest), errors.Is(err, bmc.ErrConflict):
		return access.NewError(metalv1alpha1.ReasonAccountRejected, "BMC %s refused account %s with role %s and the password of BMCSecret %s: %v",
			t.obj.Name, u.Spec.UserName, u.Spec.RoleID, secretName, err)
	case err != nil:
		return err
	}
	if a.ID != "" {
		u.Status.ID = a.ID
	}
	switch {
	case cur == nil:
		sc.eventf(nil, corev1.EventTypeNormal, "AccountCreated", "SetAccount",
			"Created account %s with role %s on BMC %s", u.Spec.UserName, u.Spec.RoleID, t.obj.Name)
	case cur.RoleID != u.Spec.RoleID || !cur.Enabled:
		sc.eventf(nil, corev1.EventTypeNormal, "AccountUpdated", "SetAccount",
			"Set account %s on BMC %s enabled with role %s", u.Spec.UserName, t.obj.Name, u.Spec.RoleID)
	case drifted:
		sc.eventf(nil, corev1.EventTypeWarning, "PasswordRestored", "SetAccount",
			"The password of account %s on BMC %s no longer logged in and was set again from BMCSecret %s",
			u.Spec.UserName, t.obj.Name, secretName)
	}
	err = t.accounts.CheckLogin(ctx, u.Spec.UserName, password)
	if errors.Is(err, bmc.ErrUnauthorized) {
		kept := "no BMCSecret is in use yet"
		if eff != nil {
			kept = "BMCSecret " + eff.Name + " stays in status.effectiveBMCSecretRef"
		}
		return access.NewError(metalv1alpha1.ReasonLoginFailed,
			"BMC %s took the password of BMCSecret %s for account %s but refuses it at login; %s", t.obj.Name, secretName, u.Spec.UserName, kept)
	}
	return err
}

// observeAccount copies what the BMC reports about the account into the status.
func observeAccount(u *metalv1alpha1.BMCUser, a *bmc.Account) {
	if a == nil {
		return
	}
	u.Status.ID = a.ID
	u.Status.PasswordExpiration = nil
	if !a.PasswordExpiration.IsZero() {
		u.Status.PasswordExpiration = &metav1.Time{Time: a.PasswordExpiration}
	}
}

func findAccount(accounts []bmc.Account, userName string) *bmc.Account {
	i := slices.IndexFunc(accounts, func(a bmc.Account) bool { return a.UserName == userName })
	if i < 0 {
		return nil
	}
	return &accounts[i]
}

// Why a BMCUser gets a new secret.
const (
	newSecretInitial   = "no secret given"
	newSecretRequested = "rotation requested"
	newSecretExpired   = "the password expired on the BMC"
	newSecretScheduled = "rotationPeriod elapsed"
	newSecretUserName  = "the user name changed"
)

// reconcileDelete removes the account from the BMC, then lets the BMCUser go.
func (r *BMCUserReconciler) reconcileDelete(ctx context.Context, sc *bmcUserScope) (ctrl.Result, error) {
	u := sc.obj
	if !controllerutil.ContainsFinalizer(u, metalv1alpha1.BMCUserFinalizer) {
		sc.gone = true
		return ctrl.Result{}, nil
	}
	if u.Spec.BMCRef != nil {
		if err := r.removeAccount(ctx, sc); err != nil {
			return r.failed(ctx, sc, err)
		}
	}
	base := u.DeepCopy()
	controllerutil.RemoveFinalizer(u, metalv1alpha1.BMCUserFinalizer)
	if err := r.Patch(ctx, u, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("removing the finalizer: %w", err)
	}
	sc.gone = true
	return ctrl.Result{}, nil
}

// removeAccount deletes (or disables) the account on the BMC. A BMC object that is gone, one
// without AccountService, and an account that is not there need nothing.
func (r *BMCUserReconciler) removeAccount(ctx context.Context, sc *bmcUserScope) error {
	u := sc.obj
	log := ctrl.LoggerFrom(ctx)
	t, err := r.connect(ctx, u)
	if re, ok := errors.AsType[*access.Error](err); ok {
		switch re.Reason {
		case metalv1alpha1.ReasonBMCNotFound, metalv1alpha1.ReasonAccountServiceUnsupported, metalv1alpha1.ReasonBMCAdminAccount:
			log.Info("Account left as it is", "reason", re.Reason)
			return nil
		}
	}
	if err != nil {
		return err
	}
	defer t.close(ctx)
	removed, err := t.accounts.RemoveAccount(ctx, u.Spec.UserName)
	if errors.Is(err, bmc.ErrNotFound) || errors.Is(err, bmc.ErrNotSupported) {
		// No AccountService (any more): there is no account to remove.
		removed, err = false, nil
	}
	if err != nil {
		return err
	}
	if removed {
		log.Info("Removed the account from the BMC", "BMC", klog.KObj(t.obj))
		r.Recorder.Eventf(u, nil, corev1.EventTypeNormal, "AccountRemoved", "Delete",
			"Removed account %s from BMC %s", u.Spec.UserName, t.obj.Name)
	}
	return nil
}

// failed records why the account is not in place and looks again after a delay.
func (r *BMCUserReconciler) failed(ctx context.Context, sc *bmcUserScope, err error) (ctrl.Result, error) {
	reason, _ := bmcFailureReason(ctx, err)
	if reason == "" {
		return ctrl.Result{}, err
	}
	r.notReady(sc, reason, access.Message(err))
	return ctrl.Result{RequeueAfter: r.retryAfter(sc.obj)}, nil
}

// notReady sets Ready=False, with a Warning event when the reason is new.
func (r *BMCUserReconciler) notReady(sc *bmcUserScope, reason, msg string) {
	u := sc.obj
	prev := meta.FindStatusCondition(u.Status.Conditions, metalv1alpha1.BMCUserReady)
	if prev == nil || prev.Status != metav1.ConditionFalse || prev.Reason != reason {
		sc.eventf(nil, corev1.EventTypeWarning, reason, "SetAccount", "%s", msg)
	}
	r.setCondition(u, metav1.ConditionFalse, reason, msg)
}

// ready sets Ready=True, with an event when it was not.
func (r *BMCUserReconciler) ready(sc *bmcUserScope, msg string) {
	u := sc.obj
	if !meta.IsStatusConditionTrue(u.Status.Conditions, metalv1alpha1.BMCUserReady) {
		sc.eventf(nil, corev1.EventTypeNormal, metalv1alpha1.ReasonAccountSynced, "SetAccount", "%s", msg)
	}
	r.setCondition(u, metav1.ConditionTrue, metalv1alpha1.ReasonAccountSynced, msg)
}

func (r *BMCUserReconciler) setCondition(u *metalv1alpha1.BMCUser, status metav1.ConditionStatus, reason, msg string) {
	msg = message.Truncate(msg, message.MaxCondition)
	meta.SetStatusCondition(&u.Status.Conditions, metav1.Condition{
		Type: metalv1alpha1.BMCUserReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: u.Generation,
	})
}

// retryAfter is the delay before a failing account is tried again (backoffSince the Ready
// condition turned False, between retryMin and ResyncInterval).
func (r *BMCUserReconciler) retryAfter(u *metalv1alpha1.BMCUser) time.Duration {
	return backoffSince(falseCondition(u.Status.Conditions, metalv1alpha1.BMCUserReady), r.retryMin(), r.Options.ResyncInterval)
}

// init builds what a reconcile needs besides the fields: SetupWithManager calls it.
func (r *BMCUserReconciler) init() {
	r.writer = objectWriter[*metalv1alpha1.BMCUser]{client: r.Client, versions: newVersions(),
		status: func(u *metalv1alpha1.BMCUser) any { return &u.Status }}
}

// SetupWithManager registers the controller and its watches.
func (r *BMCUserReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := checkSetup("BMCUserReconciler", &r.Options, map[string]bool{"Client": r.Client != nil, "APIReader": r.APIReader != nil, "Scheme": r.Scheme != nil, "Connector": r.Connector != nil, "Recorder": r.Recorder != nil}); err != nil {
		return err
	}
	r.init()
	return ctrl.NewControllerManagedBy(mgr).
		Named("bmcuser").
		For(&metalv1alpha1.BMCUser{}, builder.WithPredicates(ownChangePredicate(false))).
		Owns(&metalv1alpha1.BMCSecret{}).
		Watches(&metalv1alpha1.BMC{}, r.enqueueBMCUsersForBMC()).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Complete(r)
}

// enqueueBMCUsersForBMC maps a BMC to the BMCUsers whose spec.bmcRef names it.
func (r *BMCUserReconciler) enqueueBMCUsersForBMC() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		var list metalv1alpha1.BMCUserList
		if err := r.List(ctx, &list, client.MatchingFields{index.BMCUserBMCRef: obj.GetName()}); err != nil {
			// A map function cannot return an error; the retry of a failing account covers a missed event.
			ctrl.LoggerFrom(ctx).Error(err, "Listing BMCUsers", "BMC", klog.KObj(obj))
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
		return reqs
	})
}
