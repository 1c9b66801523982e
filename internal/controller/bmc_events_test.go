package controller

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/bmc/redfish"
	"github.com/metalfleet/metal-operator/internal/events"
)

// startBMCControllerWithEvents starts a manager with the BMC controller subscribing BMCs to
// an event receiver that the same manager serves on a loopback port; it returns the
// receiver's base URL.
func startBMCControllerWithEvents(t *testing.T, unsubscribeTimeout time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	startManager(t, func(mgr manager.Manager) error {
		o := testBMCOptions()
		o.Events = EventOptions{URL: base, UnsubscribeTimeout: unsubscribeTimeout}
		if err := (&BMCReconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
			Recorder:  mgr.GetEventRecorder("bmc-controller"),
			Connector: &access.RedfishConnector{Reader: mgr.GetClient(), Timeout: time.Second},
			Options:   o,
		}).SetupWithManager(mgr); err != nil {
			return err
		}
		rcv, err := events.NewReceiver(mgr.GetClient(), mgr.GetEventRecorder("event-receiver"), events.Options{})
		if err != nil {
			return err
		}
		return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { return rcv.Serve(ctx, l) }))
	})
	return base
}

// metricValue is the value of the series of the named family with exactly these labels, or
// -1 when there is none.
func metricValue(g Gomega, name string, labels map[string]string) float64 {
	mfs, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// subscribedBMCOf waits until the BMC records both subscriptions and returns it.
func subscribedBMCOf(t *testing.T, obj *metalv1alpha1.BMC) *metalv1alpha1.BMC {
	t.Helper()
	var cur *metalv1alpha1.BMC
	NewWithT(t).Eventually(func(g Gomega) {
		cur = getBMC(g, obj)
		expectBMCCondition(g, cur, metalv1alpha1.BMCEventsSubscribed, metav1.ConditionTrue, metalv1alpha1.ReasonSubscribed)
		g.Expect(cur.Status.EventsSubscriptionLink).NotTo(BeEmpty())
		g.Expect(cur.Status.MetricsReportSubscriptionLink).NotTo(BeEmpty())
		g.Expect(cur.Status.EventTokenHash).To(HaveLen(64))
	}).Should(Succeed())
	return cur
}

// TestBMCEventSubscriptions: an enrolled BMC subscribes alerts and metric reports with a
// token only its status knows the hash of; an alert and a reading reach the receiver and
// its metrics, a Critical alert makes a Warning event without the BMC's text; a subscription
// the BMC lost is made anew; deleting the BMC removes its subscriptions from the BMC.
func TestBMCEventSubscriptions(t *testing.T) {
	g := NewWithT(t)
	base := startBMCControllerWithEvents(t, 10*time.Second)
	em := newEmulator(t, emulator.Options{})
	secret := newBMCSecret(t, "admin", "secret-password")
	obj := createBMC(t, bmcFor(t, em.URL(), secret.Name))
	cur := subscribedBMCOf(t, obj)

	// What the BMC has and what the status records agree once the controller settled (a
	// subscription whose status write was lost is replaced, with a new token).
	byFormat := map[string]emulator.Subscription{}
	g.Eventually(func(g Gomega) {
		cur = subscribedBMCOf(t, obj)
		subs := em.Subscriptions()
		g.Expect(subs).To(HaveLen(2))
		for _, s := range subs {
			byFormat[s.EventFormatType] = s
			g.Expect(s.Context).To(Equal(events.SubscriptionContext))
			token := s.Destination[strings.LastIndexByte(s.Destination, '/')+1:]
			g.Expect(events.HashToken(token)).To(Equal(cur.Status.EventTokenHash))
		}
	}).Should(Succeed())
	g.Expect(byFormat["Event"].Destination).To(HavePrefix(base + "/serverevents/alerts/" + obj.Name + "/"))
	g.Expect(byFormat["MetricReport"].Destination).To(HavePrefix(base + "/serverevents/metricsreport/" + obj.Name + "/"))
	g.Expect(cur.Status.EventsSubscriptionLink).To(Equal("/redfish/v1/EventService/Subscriptions/" + byFormat["Event"].ID))

	sys := em.Systems()[0]
	systemID := sys.URI[strings.LastIndexByte(sys.URI, '/')+1:]
	g.Expect(em.Alert(sys.UUID, "Fan.1.0.FanFailed", "Critical", "Fan 3 failed: call +1-555-SECRET")).To(BeTrue())
	alert := map[string]string{"hostname": obj.Name, "severity": "Critical", "message_id": "Fan.1.0.FanFailed", "component": systemID}
	g.Eventually(func(g Gomega) float64 { return metricValue(g, "redfish_event_alert_total", alert) }).Should(Equal(1.0))
	ev := expectBMCEvent(t, obj.Name, "Warning", "CriticalAlert")
	g.Expect(ev.Note).To(ContainSubstring("Fan.1.0.FanFailed"))
	g.Expect(ev.Note).NotTo(ContainSubstring("SECRET"), "never the BMC's text")

	reading := map[string]string{"hostname": obj.Name, "metric_id": "CPU1Temp", "type": "Temperature", "unit": "seconds",
		"origin_context": "/redfish/v1/Chassis/1/Thermal#/Temperatures/0"}
	// The emulator's delivery queue is bounded and drops what does not fit (as a busy BMC
	// may): the report is sent again until one arrives.
	g.Eventually(func(g Gomega) float64 {
		if v := metricValue(g, "redfish_monitor_reading", reading); v >= 0 {
			return v
		}
		em.ReportMetrics(emulator.MetricValue{MetricID: "CPU1Temp", MetricProperty: "/redfish/v1/Chassis/1/Thermal#/Temperatures/0", MetricValue: "47"})
		return -1
	}).WithPolling(500 * time.Millisecond).Should(Equal(47.0))

	// A subscription that disappears from the BMC (a factory reset) is made anew.
	c, err := redfish.New(redfish.Config{Endpoint: em.URL(), Username: "admin", Password: "secret-password"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Unsubscribe(t.Context(), cur.Status.EventsSubscriptionLink)).To(Succeed())
	g.Eventually(func(g Gomega) {
		again := getBMC(g, obj)
		g.Expect(again.Status.EventsSubscriptionLink).NotTo(BeEmpty())
		g.Expect(again.Status.MetricsReportSubscriptionLink).NotTo(BeEmpty())
		g.Expect(again.Status.EventsSubscriptionLink).NotTo(Equal(cur.Status.EventsSubscriptionLink))
		g.Expect(again.Status.EventTokenHash).NotTo(Equal(cur.Status.EventTokenHash))
		g.Expect(em.Subscriptions()).To(HaveLen(2), "the old metric report subscription went with the old token")
	}).Should(Succeed())

	g.Expect(env.Client.Delete(t.Context(), obj)).To(Succeed())
	g.Eventually(func() bool {
		return client.IgnoreNotFound(env.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), &metalv1alpha1.BMC{})) == nil &&
			env.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), &metalv1alpha1.BMC{}) != nil
	}).Should(BeTrue(), "the BMC is gone")
	g.Expect(em.Subscriptions()).To(BeEmpty(), "unsubscribed before the finalizer went")
	expectBMCEvent(t, obj.Name, "Normal", "EventsUnsubscribed")
}

// TestBMCEventSubscriptionsCleanUp: subscriptions the BMC has for this BMC's destinations
// but the status does not record (a status write that was lost) are removed when it
// subscribes; others are left alone.
func TestBMCEventSubscriptionsCleanUp(t *testing.T) {
	g := NewWithT(t)
	base := startBMCControllerWithEvents(t, 10*time.Second)
	em := newEmulator(t, emulator.Options{})
	c, err := redfish.New(redfish.Config{Endpoint: em.URL(), Username: "admin", Password: "secret-password"})
	g.Expect(err).NotTo(HaveOccurred())
	name := "events-" + strings.TrimPrefix(env.Namespace(t), "test-")
	_, err = c.Subscribe(t.Context(), events.Destination(base, events.KindAlerts, name, "stale-token"), events.SubscriptionContext, bmc.EventFormatEvent)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.Subscribe(t.Context(), "http://192.0.2.7/someone-else", "other", bmc.EventFormatEvent)
	g.Expect(err).NotTo(HaveOccurred())

	secret := newBMCSecret(t, "admin", "secret-password")
	obj := createBMC(t, bmcFor(t, em.URL(), secret.Name, func(b *metalv1alpha1.BMC) { b.GenerateName, b.Name = "", name }))
	subscribedBMCOf(t, obj)
	var destinations []string
	for _, s := range em.Subscriptions() {
		destinations = append(destinations, s.Destination)
	}
	g.Expect(destinations).To(HaveLen(3))
	g.Expect(destinations).To(ContainElement("http://192.0.2.7/someone-else"))
	g.Expect(destinations).NotTo(ContainElement(HaveSuffix("/stale-token")))
}

// TestBMCEventsUnreachableAtDeletion: a BMC that does not answer when it is deleted keeps
// its finalizer only until the unsubscribe timeout, then goes with a Warning event.
func TestBMCEventsUnreachableAtDeletion(t *testing.T) {
	g := NewWithT(t)
	startBMCControllerWithEvents(t, 2*time.Second)
	em := newEmulator(t, emulator.Options{})
	secret := newBMCSecret(t, "admin", "secret-password")
	obj := createBMC(t, bmcFor(t, em.URL(), secret.Name))
	subscribedBMCOf(t, obj)

	em.SetUnavailable(true)
	g.Expect(env.Client.Delete(t.Context(), obj)).To(Succeed())
	g.Eventually(func(g Gomega) {
		expectBMCCondition(g, getBMC(g, obj), metalv1alpha1.BMCEventsSubscribed, metav1.ConditionFalse, metalv1alpha1.ReasonUnsubscribeFailed)
	}).Should(Succeed(), "the BMC waits while it may still answer")
	g.Eventually(func() error {
		return env.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), &metalv1alpha1.BMC{})
	}).WithTimeout(10 * time.Second).Should(MatchError(ContainSubstring("not found")))
	ev := expectBMCEvent(t, obj.Name, "Warning", "UnsubscribeAbandoned")
	g.Expect(ev.Note).To(ContainSubstring("Unreachable, HTTP 503"))
	g.Expect(em.Subscriptions()).To(HaveLen(2), "left on the BMC, as the event says")
}

// TestEventOptionsValidate: a URL BMCs can post to, and a positive timeout with it.
func TestEventOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       EventOptions
		wantErr string
	}{
		{"off", EventOptions{}, ""},
		{"http", EventOptions{URL: "http://192.0.2.10:10001", UnsubscribeTimeout: time.Minute}, ""},
		{"https with a path", EventOptions{URL: "https://events.example/metal/", UnsubscribeTimeout: time.Minute}, ""},
		{"no scheme", EventOptions{URL: "192.0.2.10:10001", UnsubscribeTimeout: time.Minute}, "invalid event URL"},
		{"ftp", EventOptions{URL: "ftp://192.0.2.10", UnsubscribeTimeout: time.Minute}, "http or https"},
		{"credentials", EventOptions{URL: "http://u:p@192.0.2.10", UnsubscribeTimeout: time.Minute}, "credentials"},
		{"query", EventOptions{URL: "http://192.0.2.10/?a=b", UnsubscribeTimeout: time.Minute}, "query"},
		{"no timeout", EventOptions{URL: "http://192.0.2.10"}, "UnsubscribeTimeout must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := tc.o.Validate()
			if tc.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
		})
	}
}
