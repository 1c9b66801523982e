package controller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/boot/ignition"
	"github.com/metalfleet/metal-operator/internal/boot/image"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/message"
)

// ImageResolver resolves an OS image reference to its boot artifacts, pinned by digest.
// *image.Resolver implements it; its errors carry a condition reason (image.Reason).
type ImageResolver interface {
	Resolve(ctx context.Context, image string) (*metalv1alpha1.ResolvedImage, error)
}

// cachedResolver is an ImageResolver that can tell a resolution it kept without asking the
// registry (*image.Resolver does).
type cachedResolver interface {
	Cached(image string) *metalv1alpha1.ResolvedImage
}

// Default retry bounds of image resolution errors.
const (
	DefaultImageRetryMin = 5 * time.Second
	DefaultImageRetryMax = 5 * time.Minute
)

// ServerBootConfigurationReconciler prepares the network boot of a ServerBootConfiguration:
// it resolves spec.image to kernel, initrd and root filesystem layers pinned by digest in
// status.image, and validates the ignition Secret. The boot server (internal/boot) serves
// what it pinned.
//
// States (status.state):
//
//	""      -> Pending   a new configuration is seen
//	any     -> Pending   spec changed (metadata.generation != status.observedGeneration):
//	                     the previous pin is dropped and the image is resolved again
//	Pending -> Ready     image resolved (kernel and initrd found, pinned by digest),
//	                     when spec.ignitionSecretRef is set, the Secret holds a valid config,
//	                     and the server spec.serverRef names exists (ServerFound); a missing
//	                     server keeps it Pending until the server is created
//	Pending -> Error     either fails; conditions ImageResolved / IgnitionValid say why
//	Ready   -> Error     the ignition Secret is deleted or broken (the pin is kept)
//	Error   -> Ready     the cause is fixed: the Secret is created or repaired (its watch
//	                     triggers a reconcile), or the registry answers on a retry
//	                     (RequeueAfter, backing off between ImageRetryMin and ImageRetryMax)
//
// A Ready configuration is resolved once per generation: a moving tag does not change what
// a booting server gets until the spec changes. A configuration without spec.image is in
// Error with reason InvalidImage: there is nothing to network-boot.
type ServerBootConfigurationReconciler struct {
	// Client reads through the manager's cache and writes to the API server.
	Client client.Client
	// SecretReader reads ignition Secrets; the default is the manager's API reader. Only
	// the Secrets' metadata is cached (to notice changes), so that a cluster's Secrets, of
	// which ignition configurations are few, do not fill the manager's memory.
	SecretReader client.Reader
	// Resolver resolves images (required).
	Resolver ImageResolver
	// Recorder records Ready/Error transitions (required).
	Recorder events.EventRecorder
	Options  ServerBootConfigurationOptions
}

// ServerBootConfigurationOptions tune the ServerBootConfiguration controller. Start from
// DefaultServerBootConfigurationOptions.
type ServerBootConfigurationOptions struct {
	// ImageRetryMin and ImageRetryMax bound the delay before an image that failed to
	// resolve is tried again.
	ImageRetryMin, ImageRetryMax time.Duration
	// MaxConcurrentReconciles bounds the configurations resolved at once (a slow registry
	// holds a worker up to the resolver's timeout).
	MaxConcurrentReconciles int
	// Namespace, when set, restricts the controller to configurations (and Secrets) of that
	// namespace, for a site that runs one boot service per namespace.
	Namespace string
}

// DefaultServerBootConfigurationOptions are the defaults of the manager's flags.
func DefaultServerBootConfigurationOptions() ServerBootConfigurationOptions {
	return ServerBootConfigurationOptions{ImageRetryMin: DefaultImageRetryMin, ImageRetryMax: DefaultImageRetryMax, MaxConcurrentReconciles: 4}
}

// BindFlags registers the options as flags on fs, with the current values as defaults.
func (o *ServerBootConfigurationOptions) BindFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.ImageRetryMin, "boot-image-retry-min", o.ImageRetryMin,
		"Shortest delay before an image that failed to resolve is tried again.")
	fs.DurationVar(&o.ImageRetryMax, "boot-image-retry-max", o.ImageRetryMax,
		"Longest delay before an image that failed to resolve is tried again.")
	fs.IntVar(&o.MaxConcurrentReconciles, "boot-max-concurrent-reconciles", o.MaxConcurrentReconciles,
		"Number of boot configurations resolved in parallel.")
	fs.StringVar(&o.Namespace, "boot-namespace", o.Namespace,
		"Only serve the boot configurations (and ignition Secrets) of this namespace; empty serves all.")
}

// Validate reports options that are missing or out of range.
func (o ServerBootConfigurationOptions) Validate() error {
	err := positive(map[string]any{"ImageRetryMin": o.ImageRetryMin, "MaxConcurrentReconciles": o.MaxConcurrentReconciles})
	if o.ImageRetryMax < o.ImageRetryMin {
		err = errors.Join(err, fmt.Errorf("ImageRetryMax (%s) must not be below ImageRetryMin (%s)", o.ImageRetryMax, o.ImageRetryMin))
	}
	return err
}

// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverbootconfigurations,verbs=get;list;watch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=serverbootconfigurations/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=metal.ironcore.dev,resources=servers,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the controller. The indexes of index.Setup and index.SetupBoot
// must be registered on the manager.
func (r *ServerBootConfigurationReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := checkSetup("ServerBootConfigurationReconciler", &r.Options, map[string]bool{"Client": r.Client != nil, "Resolver": r.Resolver != nil, "Recorder": r.Recorder != nil}); err != nil {
		return err
	}
	if r.SecretReader == nil {
		r.SecretReader = mgr.GetAPIReader()
	}
	secrets := &metav1.PartialObjectMetadata{}
	secrets.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	b := ctrl.NewControllerManagedBy(mgr).
		Named("serverbootconfiguration").
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		// Only spec (generation) and annotation changes wake the controller, never a status
		// write, its own or the boot server's: a registry answering with a different error
		// each time would otherwise loop it at network speed past its backoff.
		For(&metalv1alpha1.ServerBootConfiguration{},
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(secrets, handler.EnqueueRequestsFromMapFunc(r.enqueueForSecret),
			builder.OnlyMetadata, builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})).
		// A server created or deleted changes the ServerFound condition of the
		// configurations that name it; its other changes do not matter here.
		Watches(&metalv1alpha1.Server{}, handler.EnqueueRequestsFromMapFunc(r.enqueueForServer),
			builder.WithPredicates(predicate.Funcs{
				UpdateFunc:  func(event.UpdateEvent) bool { return false },
				GenericFunc: func(event.GenericEvent) bool { return false },
			}))
	if r.Options.Namespace != "" {
		ns := r.Options.Namespace
		// Servers are cluster-scoped: enqueueForServer keeps to the namespace.
		b = b.WithEventFilter(predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetNamespace() == ns || o.GetNamespace() == "" }))
	}
	return b.Complete(r)
}

// enqueueForServer maps a Server to the configurations that name it.
func (r *ServerBootConfigurationReconciler) enqueueForServer(ctx context.Context, o client.Object) []reconcile.Request {
	return r.requestsFor(ctx, o, client.InNamespace(r.Options.Namespace), client.MatchingFields{index.BootConfigurationServer: o.GetName()})
}

// enqueueForSecret maps a Secret to the configurations in its namespace that reference it.
func (r *ServerBootConfigurationReconciler) enqueueForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	return r.requestsFor(ctx, o, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{index.BootConfigurationIgnitionSecret: o.GetName()})
}

// requestsFor lists the configurations an event about o concerns.
func (r *ServerBootConfigurationReconciler) requestsFor(ctx context.Context, o client.Object, opts ...client.ListOption) []reconcile.Request {
	list := &metalv1alpha1.ServerBootConfigurationList{}
	if err := r.Client.List(ctx, list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing boot configurations", "Object", klog.KObj(o))
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// Reconcile brings one ServerBootConfiguration's status up to date.
func (r *ServerBootConfigurationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	if err := r.Client.Get(ctx, req.NamespacedName, sbc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if sbc.Annotations[metalv1alpha1.OperationAnnotation] == metalv1alpha1.OperationAnnotationIgnore {
		return ctrl.Result{}, nil
	}
	// No finalizer: nothing outside the object is held for a configuration, so deleting it
	// needs no clean-up.
	if !sbc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	return r.reconcileNormal(ctx, sbc)
}

func (r *ServerBootConfigurationReconciler) reconcileNormal(ctx context.Context, sbc *metalv1alpha1.ServerBootConfiguration) (ctrl.Result, error) {
	var kept *metalv1alpha1.ResolvedImage
	if sbc.Status.State == "" || sbc.Status.ObservedGeneration != sbc.Generation {
		// A resolution kept from an earlier configuration of the same reference answers at
		// once: the status below is the only write, and nothing is served meanwhile. Else the
		// configuration says Pending while the registry is asked. Status writes do not wake
		// the controller: go on from the object as written (the status write below is locked
		// on its resourceVersion).
		if kept = r.keptResolution(sbc); kept == nil {
			if err := r.markPending(ctx, sbc); err != nil {
				return ctrl.Result{}, ignoreConflict(err)
			}
		}
	}
	before := sbc.DeepCopy()

	retryAfter := r.reconcileImage(ctx, sbc, kept)
	if err := r.reconcileIgnition(ctx, sbc); err != nil {
		return ctrl.Result{}, err
	}
	serverFound, err := r.reconcileServer(ctx, sbc)
	if err != nil {
		return ctrl.Result{}, err
	}

	sbc.Status.State = metalv1alpha1.ServerBootConfigurationStateReady
	for _, t := range []string{metalv1alpha1.BootConfigurationImageResolved, metalv1alpha1.BootConfigurationIgnitionValid} {
		if c := meta.FindStatusCondition(sbc.Status.Conditions, t); c != nil && c.Status != metav1.ConditionTrue {
			sbc.Status.State = metalv1alpha1.ServerBootConfigurationStateError
		}
	}
	if !serverFound && sbc.Status.State == metalv1alpha1.ServerBootConfigurationStateReady {
		sbc.Status.State = metalv1alpha1.ServerBootConfigurationStatePending
	}
	sbc.Status.ObservedGeneration = sbc.Generation

	if err := r.patchStatus(ctx, before, sbc); err != nil {
		return ctrl.Result{}, ignoreConflict(err)
	}
	r.recordTransition(sbc, before.Status.State)
	if retryAfter > 0 {
		return ctrl.Result{RequeueAfter: retryAfter}, nil
	}
	return ctrl.Result{}, nil
}

// markPending records that a new generation is being prepared: state Pending and no pinned
// image, so that nothing boots the previous generation's image meanwhile.
func (r *ServerBootConfigurationReconciler) markPending(ctx context.Context, sbc *metalv1alpha1.ServerBootConfiguration) error {
	before := sbc.DeepCopy()
	sbc.Status.State = metalv1alpha1.ServerBootConfigurationStatePending
	sbc.Status.ObservedGeneration = sbc.Generation
	sbc.Status.Image = nil
	return r.patchStatus(ctx, before, sbc)
}

// keptResolution is the resolver's kept resolution of the configuration's image, or nil.
func (r *ServerBootConfigurationReconciler) keptResolution(sbc *metalv1alpha1.ServerBootConfiguration) *metalv1alpha1.ResolvedImage {
	if c, ok := r.Resolver.(cachedResolver); ok && strings.TrimSpace(sbc.Spec.Image) != "" {
		return c.Cached(sbc.Spec.Image)
	}
	return nil
}

// reconcileImage resolves and pins the image once per generation and sets the
// ImageResolved condition; kept, when not nil, is the resolution to pin without asking the
// resolver. It returns the delay before a failed resolution is retried.
func (r *ServerBootConfigurationReconciler) reconcileImage(ctx context.Context, sbc *metalv1alpha1.ServerBootConfiguration, kept *metalv1alpha1.ResolvedImage) time.Duration {
	cond := meta.FindStatusCondition(sbc.Status.Conditions, metalv1alpha1.BootConfigurationImageResolved)
	if sbc.Status.Image != nil && cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == sbc.Generation {
		return 0 // pinned for this generation
	}
	if strings.TrimSpace(sbc.Spec.Image) == "" {
		sbc.Status.Image = nil
		r.setCondition(sbc, metalv1alpha1.BootConfigurationImageResolved, metav1.ConditionFalse,
			metalv1alpha1.ReasonInvalidImage, "spec.image is empty: there is nothing to network-boot")
		return 0
	}
	resolved, err := kept, error(nil)
	if resolved == nil {
		resolved, err = r.Resolver.Resolve(ctx, sbc.Spec.Image)
	}
	if err != nil {
		sbc.Status.Image = nil
		// The condition and the event say what failed and the registry's status code; what
		// the registry sent back goes to the manager's log only.
		reason := image.Reason(err)
		ctrl.LoggerFrom(ctx).Info("Resolving the image failed", "image", sbc.Spec.Image, "reason", reason, "error", err.Error())
		r.setCondition(sbc, metalv1alpha1.BootConfigurationImageResolved, metav1.ConditionFalse, reason,
			message.Truncate(fmt.Sprintf("Resolving %s failed: %s", sbc.Spec.Image, image.Message(err)), message.MaxCondition))
		return backoffSince(falseCondition(sbc.Status.Conditions, metalv1alpha1.BootConfigurationImageResolved), r.Options.ImageRetryMin, r.Options.ImageRetryMax)
	}
	sbc.Status.Image = resolved
	r.setCondition(sbc, metalv1alpha1.BootConfigurationImageResolved, metav1.ConditionTrue, metalv1alpha1.ReasonImageResolved,
		fmt.Sprintf("Resolved %s to %s", resolved.Reference, resolved.Digest))
	return 0
}

// reconcileServer sets the ServerFound condition: a configuration for a server that does not
// exist is not Ready, there being nothing to boot with it. The server's creation wakes the
// configuration (the watch in SetupWithManager).
func (r *ServerBootConfigurationReconciler) reconcileServer(ctx context.Context, sbc *metalv1alpha1.ServerBootConfiguration) (bool, error) {
	name := sbc.Spec.ServerRef.Name
	if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, &metalv1alpha1.Server{}); err != nil {
		if !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("getting Server %s: %w", name, err)
		}
		r.setCondition(sbc, metalv1alpha1.BootConfigurationServerFound, metav1.ConditionFalse, metalv1alpha1.ReasonServerNotFound,
			fmt.Sprintf("Server %s does not exist", name))
		return false, nil
	}
	r.setCondition(sbc, metalv1alpha1.BootConfigurationServerFound, metav1.ConditionTrue, metalv1alpha1.ReasonServerFound,
		fmt.Sprintf("Server %s exists", name))
	return true, nil
}

// reconcileIgnition validates the ignition Secret and sets the IgnitionValid condition. A
// configuration without spec.ignitionSecretRef has no such condition.
func (r *ServerBootConfigurationReconciler) reconcileIgnition(ctx context.Context, sbc *metalv1alpha1.ServerBootConfiguration) error {
	ref := sbc.Spec.IgnitionSecretRef
	if ref == nil {
		meta.RemoveStatusCondition(&sbc.Status.Conditions, metalv1alpha1.BootConfigurationIgnitionValid)
		return nil
	}
	secret := &corev1.Secret{}
	if err := r.SecretReader.Get(ctx, types.NamespacedName{Namespace: sbc.Namespace, Name: ref.Name}, secret); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("getting ignition Secret %s: %w", ref.Name, err)
		}
		r.setCondition(sbc, metalv1alpha1.BootConfigurationIgnitionValid, metav1.ConditionFalse,
			metalv1alpha1.ReasonIgnitionSecretNotFound, fmt.Sprintf("Secret %s not found", ref.Name))
		return nil
	}
	if _, err := ignition.Render(secret.Data); err != nil {
		reason, msg := metalv1alpha1.ReasonInvalidIgnition, "the ignition config is not valid"
		if ierr, ok := errors.AsType[*ignition.Error](err); ok {
			reason, msg = ierr.Reason, ierr.Message
		}
		r.setCondition(sbc, metalv1alpha1.BootConfigurationIgnitionValid, metav1.ConditionFalse, reason,
			fmt.Sprintf("Secret %s: %s", ref.Name, msg))
		return nil
	}
	r.setCondition(sbc, metalv1alpha1.BootConfigurationIgnitionValid, metav1.ConditionTrue, metalv1alpha1.ReasonIgnitionValid,
		fmt.Sprintf("Secret %s holds a valid ignition config", ref.Name))
	return nil
}

func (r *ServerBootConfigurationReconciler) setCondition(sbc *metalv1alpha1.ServerBootConfiguration, t string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&sbc.Status.Conditions, metav1.Condition{
		Type:               t,
		Status:             status,
		Reason:             reason,
		Message:            msg,
		ObservedGeneration: sbc.Generation,
	})
}

// patchStatus writes the status when it changed, with an optimistic lock: the boot server
// writes the BootStateReceived condition of the same list.
func (r *ServerBootConfigurationReconciler) patchStatus(ctx context.Context, before, sbc *metalv1alpha1.ServerBootConfiguration) error {
	if equality.Semantic.DeepEqual(before.Status, sbc.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, sbc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patching status of ServerBootConfiguration %s: %w", client.ObjectKeyFromObject(sbc), err)
	}
	return nil
}

// recordTransition emits an event when the state became Error, and when it became Ready
// again: from Error, or for a changed spec. A configuration Ready at its first resolution says
// so in its state and ImageResolved condition only, so that a burst of claims costs no event
// per boot configuration (like a claim bound at once).
func (r *ServerBootConfigurationReconciler) recordTransition(sbc *metalv1alpha1.ServerBootConfiguration, from metalv1alpha1.ServerBootConfigurationState) {
	if sbc.Status.State == from {
		return
	}
	switch sbc.Status.State {
	case metalv1alpha1.ServerBootConfigurationStateReady:
		if from != metalv1alpha1.ServerBootConfigurationStateError && sbc.Generation <= 1 {
			return
		}
		note := "Ready to boot"
		if img := sbc.Status.Image; img != nil {
			note = fmt.Sprintf("Ready to boot %s pinned at %s", img.Reference, img.Digest)
		}
		r.Recorder.Eventf(sbc, nil, corev1.EventTypeNormal, "BootConfigurationReady", "Resolve", "%s", note)
	case metalv1alpha1.ServerBootConfigurationStateError:
		for _, t := range []string{metalv1alpha1.BootConfigurationImageResolved, metalv1alpha1.BootConfigurationIgnitionValid} {
			if c := meta.FindStatusCondition(sbc.Status.Conditions, t); c != nil && c.Status != metav1.ConditionTrue {
				r.Recorder.Eventf(sbc, nil, corev1.EventTypeWarning, c.Reason, "Resolve", "%s", c.Message)
				return
			}
		}
	}
}

// ignoreConflict drops a conflict of an optimistically locked write: the cached copy was
// stale, and the update event of the newer version brings the configuration back.
func ignoreConflict(err error) error {
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}
