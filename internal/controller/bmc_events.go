package controller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	metalevents "github.com/metalfleet/metal-operator/internal/events"
)

// Redfish event subscriptions (with --event-url): an enrolled BMC gets two subscriptions,
// alerts (EventFormatType Event) to <event-url>/serverevents/alerts/<bmc>/<token> and metric
// reports (MetricReport) to <event-url>/serverevents/metricsreport/<bmc>/<token>, recorded in
// status.eventsSubscriptionLink and status.metricsReportSubscriptionLink, and the SHA-256 of
// the token in status.eventTokenHash, by which the receiver (internal/events) knows the
// events are the BMC's. A BMC that refuses metric reports gets alerts only.
//
// Condition EventsSubscribed:
//
//	True  Subscribed              the subscriptions are recorded in the status
//	False SubscribeFailed         the BMC refused a subscription or did not answer; tried
//	                              again at the next resync
//	False EventServiceUnsupported the BMC has no enabled EventService
//	False UnsubscribeFailed       the BMC is being deleted and its subscriptions could not
//	                              be removed yet
//
// Subscribing is reentrant: at every resync the recorded subscriptions are looked up on the
// BMC (one list); when they are missing (a BMC reset to factory settings), point under
// another --event-url or carry another token, or the status records none, the recorded ones
// and any the BMC has for this BMC's destinations (left by a status write that was lost)
// are deleted and both are made anew with a new token. The reference leaks its
// subscriptions when a BMC is deleted; here reconcileDelete removes them before the
// finalizer, and a BMC that cannot be reached is let go EventOptions.UnsubscribeTimeout
// after its deletion began, with a Warning event. Without --event-url, subscriptions
// recorded earlier are removed. Conditions and events name the reason and HTTP status of a
// failure only, never what the BMC said.

// EventOptions configure the BMC controller's Redfish event subscriptions.
type EventOptions struct {
	// URL is the base URL at which BMCs reach the operator's event receiver
	// (--event-bind-address); empty turns subscriptions off.
	URL string
	// UnsubscribeTimeout is how long after a BMC's deletion began the controller tries to
	// remove its subscriptions before it lets the BMC go without.
	UnsubscribeTimeout time.Duration
}

// DefaultEventOptions are the defaults of the flags.
func DefaultEventOptions() EventOptions { return EventOptions{UnsubscribeTimeout: 2 * time.Minute} }

// BindFlags registers the options as flags on fs, with the current values as defaults.
func (o *EventOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.URL, "event-url", o.URL,
		"Base URL at which BMCs reach the event receiver (--event-bind-address), e.g. http://192.0.2.10:10001; BMCs are subscribed to send alerts and metric reports there. Empty: no subscriptions.")
	fs.DurationVar(&o.UnsubscribeTimeout, "event-unsubscribe-timeout", o.UnsubscribeTimeout,
		"How long after a BMC's deletion began its event subscriptions are tried to be removed before the BMC is let go without.")
}

// Validate reports options that are out of range.
func (o EventOptions) Validate() error {
	if o.URL == "" {
		return nil
	}
	return errors.Join(metalevents.ValidateBaseURL(o.URL),
		positive(map[string]any{"UnsubscribeTimeout": o.UnsubscribeTimeout}))
}

// failureOf describes a BMC failure by reason and HTTP status only.
func failureOf(err error) string {
	if code := access.StatusCode(err); code != 0 {
		return fmt.Sprintf("%s, HTTP %d", bmc.Reason(err), code)
	}
	return bmc.Reason(err)
}

// reconcileEvents keeps the BMC's event subscriptions as EventOptions asks, on a BMC that
// answers. It does not fail the reconcile: a failure is recorded in condition
// EventsSubscribed and tried again at the next resync.
func (r *BMCReconciler) reconcileEvents(ctx context.Context, sc *bmcScope, conn bmc.BMC) {
	obj := sc.obj
	st := &obj.Status
	url := r.Options.Events.URL
	sub, ok := conn.(bmc.EventSubscriber)
	switch {
	case url == "" && st.EventsSubscriptionLink == "" && st.MetricsReportSubscriptionLink == "":
		meta.RemoveStatusCondition(&st.Conditions, metalv1alpha1.BMCEventsSubscribed)
		return
	case url == "":
		if ok && unsubscribeAll(ctx, sub, st) == nil {
			meta.RemoveStatusCondition(&st.Conditions, metalv1alpha1.BMCEventsSubscribed)
			sc.eventf(nil, corev1.EventTypeNormal, "EventsUnsubscribed", "Unsubscribe", "Removed the BMC's event subscriptions: --event-url is not set")
		}
		return
	case !ok && st.EventsSubscriptionLink != "":
		return
	case !ok:
		r.eventsNotSubscribed(sc, metalv1alpha1.ReasonEventServiceUnsupported, "The BMC's protocol has no event subscriptions")
		return
	}
	if st.EventsSubscriptionLink != "" && st.EventTokenHash != "" {
		current, err := subscriptionsCurrent(ctx, sub, obj, url)
		if err != nil || current {
			// A BMC that fails to list them now is looked at again at the next resync.
			return
		}
		ctrl.LoggerFrom(ctx).Info("The BMC's event subscriptions are gone or point elsewhere; subscribing again")
	}
	if err := r.subscribe(ctx, sc, sub); err != nil {
		if errors.Is(err, bmc.ErrNotSupported) {
			r.eventsNotSubscribed(sc, metalv1alpha1.ReasonEventServiceUnsupported, "The BMC has no enabled Redfish EventService")
			return
		}
		r.eventsNotSubscribed(sc, metalv1alpha1.ReasonSubscribeFailed,
			fmt.Sprintf("Subscribing to the BMC's events failed (%s); tried again in %s", failureOf(err), r.Options.ResyncInterval))
	}
}

// subscriptionsCurrent reports whether the subscriptions the status records are on the BMC
// with destinations under url and the recorded token: a BMC reset to factory settings loses
// them, and a changed --event-url leaves them pointing elsewhere.
func subscriptionsCurrent(ctx context.Context, sub bmc.EventSubscriber, obj *metalv1alpha1.BMC, url string) (bool, error) {
	existing, err := sub.Subscriptions(ctx)
	if err != nil {
		return false, err
	}
	st := obj.Status
	want := map[string]metalevents.Kind{st.EventsSubscriptionLink: metalevents.KindAlerts}
	if st.MetricsReportSubscriptionLink != "" {
		want[st.MetricsReportSubscriptionLink] = metalevents.KindMetricsReport
	}
	for _, s := range existing {
		kind, ok := want[s.URI]
		if !ok {
			continue
		}
		prefix := metalevents.Destination(url, kind, obj.Name, "")
		token, under := strings.CutPrefix(s.Destination, prefix)
		if !under || metalevents.HashToken(token) != st.EventTokenHash {
			return false, nil
		}
		delete(want, s.URI)
	}
	return len(want) == 0, nil
}

// subscribe deletes the subscriptions the status records and those the BMC has for this
// BMC's destinations, then subscribes alerts and metric reports with a new token, and
// records them.
func (r *BMCReconciler) subscribe(ctx context.Context, sc *bmcScope, sub bmc.EventSubscriber) error {
	obj := sc.obj
	url := r.Options.Events.URL
	if err := unsubscribeAll(ctx, sub, &obj.Status); err != nil {
		return err
	}
	existing, err := sub.Subscriptions(ctx)
	if err != nil {
		return err
	}
	for _, s := range existing {
		if metalevents.OwnDestination(s.Destination, url, obj.Name) {
			if err := sub.Unsubscribe(ctx, s.URI); err != nil {
				return err
			}
		}
	}
	token, hash, err := metalevents.NewToken()
	if err != nil {
		return err
	}
	alerts, err := sub.Subscribe(ctx, metalevents.Destination(url, metalevents.KindAlerts, obj.Name, token),
		metalevents.SubscriptionContext, bmc.EventFormatEvent)
	if err != nil {
		return err
	}
	what := "alerts and metric reports"
	reports, err := sub.Subscribe(ctx, metalevents.Destination(url, metalevents.KindMetricsReport, obj.Name, token),
		metalevents.SubscriptionContext, bmc.EventFormatMetricReport)
	switch {
	case errors.Is(err, bmc.ErrBadRequest), errors.Is(err, bmc.ErrNotSupported):
		// Many BMCs have no metric reports; alerts are what matters.
		what = "alerts (the BMC refused metric reports)"
		reports = ""
	case err != nil:
		_ = sub.Unsubscribe(ctx, alerts)
		return err
	}
	st := &obj.Status
	st.EventsSubscriptionLink, st.MetricsReportSubscriptionLink, st.EventTokenHash = alerts, reports, hash
	r.setCondition(obj, metalv1alpha1.BMCEventsSubscribed, metav1.ConditionTrue, metalv1alpha1.ReasonSubscribed,
		"The BMC sends "+what+" to the operator's event receiver")
	sc.eventf(nil, corev1.EventTypeNormal, "EventsSubscribed", "Subscribe", "The BMC sends %s to the operator's event receiver", what)
	ctrl.LoggerFrom(ctx).Info("Subscribed to the BMC's events", "alerts", alerts, "metricReports", reports)
	return nil
}

// eventsNotSubscribed sets EventsSubscribed=False, with a Warning event when the reason
// changes.
func (r *BMCReconciler) eventsNotSubscribed(sc *bmcScope, reason, msg string) {
	prev := bmcCondition(sc.obj, metalv1alpha1.BMCEventsSubscribed)
	r.setCondition(sc.obj, metalv1alpha1.BMCEventsSubscribed, metav1.ConditionFalse, reason, msg)
	if prev.Status != metav1.ConditionFalse || prev.Reason != reason {
		sc.eventf(nil, corev1.EventTypeWarning, reason, "Subscribe", "%s", msg)
	}
}

// unsubscribeAll deletes the subscriptions the status records and clears them.
func unsubscribeAll(ctx context.Context, sub bmc.EventSubscriber, st *metalv1alpha1.BMCStatus) error {
	for _, uri := range []string{st.EventsSubscriptionLink, st.MetricsReportSubscriptionLink} {
		if err := sub.Unsubscribe(ctx, uri); err != nil {
			return err
		}
	}
	st.EventsSubscriptionLink, st.MetricsReportSubscriptionLink, st.EventTokenHash = "", "", ""
	return nil
}

// removeSubscriptions deletes a deleted BMC's subscriptions before its finalizer goes. A BMC
// that cannot be reached, or refuses, is tried again until UnsubscribeTimeout after the
// deletion began; then it is let go with a Warning event. done reports that the reconcile
// ends here, to try again.
func (r *BMCReconciler) removeSubscriptions(ctx context.Context, sc *bmcScope) (ctrl.Result, bool, error) {
	obj := sc.obj
	st := &obj.Status
	if st.EventsSubscriptionLink == "" && st.MetricsReportSubscriptionLink == "" {
		return ctrl.Result{}, false, nil
	}
	err := r.unsubscribeDeleted(ctx, obj)
	if err == nil {
		sc.eventf(nil, corev1.EventTypeNormal, "EventsUnsubscribed", "Delete", "Removed the BMC's event subscriptions")
		return ctrl.Result{}, false, nil
	}
	timeout := r.Options.Events.UnsubscribeTimeout
	deleting := time.Since(obj.DeletionTimestamp.Time)
	if deleting >= timeout {
		sc.eventf(nil, corev1.EventTypeWarning, "UnsubscribeAbandoned", "Delete",
			"The BMC's event subscriptions could not be removed within %s of its deletion (%s); they are left on the BMC", timeout, failureOf(err))
		return ctrl.Result{}, false, nil
	}
	msg := fmt.Sprintf("Removing the BMC's event subscriptions failed (%s); tried again until %s after the deletion began",
		failureOf(err), timeout)
	prev := bmcCondition(obj, metalv1alpha1.BMCEventsSubscribed)
	r.setCondition(obj, metalv1alpha1.BMCEventsSubscribed, metav1.ConditionFalse, metalv1alpha1.ReasonUnsubscribeFailed, msg)
	if prev.Reason != metalv1alpha1.ReasonUnsubscribeFailed {
		sc.eventf(nil, corev1.EventTypeWarning, metalv1alpha1.ReasonUnsubscribeFailed, "Delete", "%s", msg)
	}
	wait := backoffSince(falseCondition(obj.Status.Conditions, metalv1alpha1.BMCEventsSubscribed), r.retryMin(), r.Options.ResyncInterval)
	return ctrl.Result{RequeueAfter: max(min(wait, timeout-deleting), time.Millisecond)}, true, nil
}

// unsubscribeDeleted connects to a deleted BMC and deletes the subscriptions its status
// records.
func (r *BMCReconciler) unsubscribeDeleted(ctx context.Context, obj *metalv1alpha1.BMC) error {
	conn, err := r.Connector.ConnectBMC(ctx, obj)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Logout(context.WithoutCancel(ctx)) }()
	sub, ok := conn.(bmc.EventSubscriber)
	if !ok {
		return fmt.Errorf("%w: the BMC's protocol has no event subscriptions", bmc.ErrNotSupported)
	}
	return unsubscribeAll(ctx, sub, &obj.Status)
}
