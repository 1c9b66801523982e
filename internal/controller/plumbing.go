package controller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/cachelag"
)

// This file is the reconcile plumbing every controller shares, in the spirit of
// cluster-api's patch helper: a scope per reconcile whose status is written once at its
// end, spec patches that keep the scope consistent, events held until the status write,
// write conflicts turned into a quick look again, one back-off rule, one way to cut
// messages, and one shape for options.

// scope is one reconcile of one object: the object as read (orig) and the working copy (obj)
// whose status the handlers change. The difference is written once, by objectWriter.finish.
type scope[T client.Object] struct {
	orig, obj T
	// gone is set when the object was let go in this reconcile (finalizer removed):
	// nothing more is written.
	gone bool
	// events are emitted once the status of this reconcile is written.
	events pendingEvents
}

func newScope[T client.Object](obj T, recorder events.EventRecorder) *scope[T] {
	return &scope[T]{orig: obj, obj: obj.DeepCopyObject().(T), events: pendingEvents{recorder: recorder}}
}

// eventf queues an event about the object; it is emitted once the status write of this
// reconcile succeeds, so that a reconcile whose write is refused announces nothing.
func (sc *scope[T]) eventf(related runtime.Object, eventType, reason, action, note string, args ...any) {
	sc.events.add(sc.obj, related, eventType, reason, action, note, args...)
}

// objectWriter writes one kind for one controller. Every write carries the object's
// resourceVersion (an optimistic lock: a decision taken from an older copy fails instead of
// overwriting a newer one), and the version it left is recorded in versions, so that the
// controller's next reconcile does not act on a cached copy older than its own write.
type objectWriter[T client.Object] struct {
	client   client.Client
	versions *cachelag.Versions[string]
	// status returns a pointer to the object's status.
	status func(T) any
}

// versionKey is the key of an object in a controller's version store.
func versionKey(obj client.Object) string { return client.ObjectKeyFromObject(obj).String() }

// reconcile is the shared order of a reconcile of a kind whose steps need nothing but the
// scope: read the object (gone: done), leave it alone when annotated ignore, add the
// finalizer in its own write, then reconcileDelete or reconcileNormal, and finish. A refused
// write is looked at again after retry.
func (w objectWriter[T]) reconcile(ctx context.Context, key client.ObjectKey, obj T, recorder events.EventRecorder,
	finalizer string, retry time.Duration, normal, del func(context.Context, *scope[T]) (ctrl.Result, error)) (ctrl.Result, error) {
	if err := w.client.Get(ctx, key, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if ignored(obj) {
		return ctrl.Result{}, nil
	}
	if added, err := w.ensureFinalizer(ctx, obj, finalizer); added || err != nil {
		return conflictOr(ctrl.Result{}, err, retry)
	}
	sc := newScope(obj, recorder)
	var (
		res ctrl.Result
		err error
	)
	if !obj.GetDeletionTimestamp().IsZero() {
		res, err = del(ctx, sc)
	} else {
		res, err = normal(ctx, sc)
	}
	return w.finish(ctx, sc, res, err, retry)
}

// ensureFinalizer adds the finalizer to a live object that lacks it, in its own locked
// patch; it reports whether it wrote. The write's own event brings the object back.
func (w objectWriter[T]) ensureFinalizer(ctx context.Context, obj T, finalizer string) (bool, error) {
	if !obj.GetDeletionTimestamp().IsZero() || controllerutil.ContainsFinalizer(obj, finalizer) {
		return false, nil
	}
	base := obj.DeepCopyObject().(T)
	controllerutil.AddFinalizer(obj, finalizer)
	if err := w.client.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return true, fmt.Errorf("adding the finalizer: %w", err)
	}
	w.versions.Expect(versionKey(obj), obj.GetResourceVersion())
	return true, nil
}

// patchSpec applies mutate to the scope object's metadata and spec in one locked merge
// patch, if it changes anything. The status changes made so far in the reconcile are kept
// for the status write at the end, which is then based on the written version.
func (w objectWriter[T]) patchSpec(ctx context.Context, sc *scope[T], mutate func(T)) error {
	obj := sc.obj.DeepCopyObject().(T)
	wrote, err := patchLocked(ctx, w.client, obj, mutate)
	if err != nil || !wrote {
		return err
	}
	w.versions.Expect(versionKey(obj), obj.GetResourceVersion())
	// obj is now the object as written, with the status as stored. Rebase the scope on it
	// in place (handlers hold pointers to sc.obj) and carry the working status over.
	working := obj.DeepCopyObject().(T)
	reflect.ValueOf(w.status(working)).Elem().Set(reflect.ValueOf(w.status(sc.obj)).Elem())
	reflect.ValueOf(sc.orig).Elem().Set(reflect.ValueOf(obj).Elem())
	reflect.ValueOf(sc.obj).Elem().Set(reflect.ValueOf(working).Elem())
	return nil
}

// patchLocked applies mutate to obj in one merge patch under obj's resourceVersion, if it
// changes anything, and leaves obj as written. It reports whether it wrote.
func patchLocked[T client.Object](ctx context.Context, c client.Client, obj T, mutate func(T)) (bool, error) {
	base := obj.DeepCopyObject().(T)
	mutate(obj)
	if equality.Semantic.DeepEqual(base, obj) {
		return false, nil
	}
	if err := c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return false, fmt.Errorf("patching %s: %w", obj.GetName(), err)
	}
	return true, nil
}

// patchStatus writes the scope's status changes, if any, under the optimistic lock. An
// object deleted meanwhile is no error.
func (w objectWriter[T]) patchStatus(ctx context.Context, sc *scope[T]) error {
	if equality.Semantic.DeepEqual(w.status(sc.orig), w.status(sc.obj)) {
		return nil
	}
	patch := client.MergeFromWithOptions(sc.orig, client.MergeFromWithOptimisticLock{})
	if err := w.client.Status().Patch(ctx, sc.obj, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("writing the status: %w", err)
	}
	w.versions.Expect(versionKey(sc.obj), sc.obj.GetResourceVersion())
	return nil
}

// finish ends a reconcile: it writes the status (unless the object is gone), emits the
// events or drops them when the write failed, and turns a write conflict into a look again
// after retry.
func (w objectWriter[T]) finish(ctx context.Context, sc *scope[T], res ctrl.Result, err error, retry time.Duration) (ctrl.Result, error) {
	if sc.gone {
		w.versions.Forget(versionKey(sc.obj))
	} else if perr := w.patchStatus(ctx, sc); perr != nil {
		err = errors.Join(err, perr)
		sc.events.drop()
	}
	sc.events.emit()
	return conflictOr(res, err, retry)
}

// conflictOr passes a result on, except that a write conflict (someone changed the object
// since it was read) becomes a look again after retry, and any other error goes to
// controller-runtime's backoff without a result.
func conflictOr(res ctrl.Result, err error, retry time.Duration) (ctrl.Result, error) {
	switch {
	case err == nil:
		return res, nil
	case apierrors.IsConflict(err):
		return ctrl.Result{RequeueAfter: retry}, nil
	}
	return ctrl.Result{}, err
}

// errCacheBehind says the cache has not caught up with the controller's last write yet.
var errCacheBehind = errors.New("the cache has not caught up with the last write")

const (
	// cacheCatchUpDelay is how long a reconcile waits for the cache to show its own last write.
	cacheCatchUpDelay = 100 * time.Millisecond
	// cacheLagLimit is how long the cache may lag before an object is read around it.
	cacheLagLimit = 2 * time.Second
)

// readFresh reads an object from the cache into obj, no older than the controller's last
// write to it. While the cache has not caught up with that write it returns errCacheBehind
// (the write's own watch event arrives within milliseconds, so waiting costs no request);
// if the cache lags longer than cacheLagLimit, it reads the object around the cache. It
// returns false for an object that is gone.
func readFresh[T client.Object](ctx context.Context, cache, live client.Reader, versions *cachelag.Versions[string], key client.ObjectKey, obj T) (bool, error) {
	if err := cache.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			versions.Forget(key.String())
			return false, nil
		}
		return false, err
	}
	trusted, waiting := versions.Observe(key.String(), obj.GetResourceVersion())
	if trusted {
		return true, nil
	}
	if waiting < cacheLagLimit {
		return false, errCacheBehind
	}
	if err := live.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			versions.Forget(key.String())
			return false, nil
		}
		return false, fmt.Errorf("reading %s: %w", key, err)
	}
	versions.Expect(key.String(), obj.GetResourceVersion())
	return true, nil
}

// ignored reports whether the object carries the operation annotation "ignore": its
// controller leaves it alone.
func ignored(obj client.Object) bool {
	return obj.GetAnnotations()[metalv1alpha1.OperationAnnotation] == metalv1alpha1.OperationAnnotationIgnore
}

// backoffSince is the delay before something failing is tried again: how long it has been
// failing, since the condition that records the failure turned to its status, within
// [lo, hi]. Successive retries roughly double the wait without remembering attempts. A nil
// condition (nothing failing yet) gives lo.
func backoffSince(c *metav1.Condition, lo, hi time.Duration) time.Duration {
	d := lo
	if c != nil {
		d = max(d, time.Since(c.LastTransitionTime.Time))
	}
	return min(d, hi)
}

// falseCondition returns the condition of type t if it is False: the record of a failure
// that backoffSince measures.
func falseCondition(conds []metav1.Condition, t string) *metav1.Condition {
	if c := meta.FindStatusCondition(conds, t); c != nil && c.Status == metav1.ConditionFalse {
		return c
	}
	return nil
}

// options is the shape every controller's options share: a Default<Kind>Options
// constructor with the flags' defaults, BindFlags registering them on a flag set with the
// current values as defaults, and Validate reporting every value out of range.
type options interface {
	BindFlags(fs *flag.FlagSet)
	Validate() error
}

var (
	_ options = (*ServerOptions)(nil)
	_ options = (*BMCOptions)(nil)
	_ options = (*ServerClaimOptions)(nil)
	_ options = (*ServerBootConfigurationOptions)(nil)
	_ options = (*ServerReadinessRuleOptions)(nil)
	_ options = (*BMCUserOptions)(nil)
)

// checkSetup rejects a reconciler built without a dependency it needs (deps: name -> set),
// or with options out of range: what every SetupWithManager checks first.
func checkSetup(reconciler string, o options, deps map[string]bool) error {
	var errs []error
	for _, dep := range slices.Sorted(maps.Keys(deps)) {
		if !deps[dep] {
			errs = append(errs, fmt.Errorf("%s needs %s", reconciler, dep))
		}
	}
	if err := o.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%s options: %w", reconciler, err))
	}
	return errors.Join(errs...)
}

// positive reports each duration or count that is not positive, by name.
func positive(values map[string]any) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(values)) {
		switch v := values[name].(type) {
		case time.Duration:
			if v <= 0 {
				errs = append(errs, fmt.Errorf("%s must be positive, got %s", name, v))
			}
		case int:
			if v <= 0 {
				errs = append(errs, fmt.Errorf("%s must be positive, got %d", name, v))
			}
		}
	}
	return errors.Join(errs...)
}
