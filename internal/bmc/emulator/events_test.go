package emulator_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

// sink is a subscriber that keeps what it receives, by path.
type sink struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string][]map[string]any
}

func newSink(t *testing.T) *sink {
	s := &sink{got: map[string][]map[string]any{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if json.Unmarshal(data, &body) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.got[r.URL.Path] = append(s.got[r.URL.Path], body)
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) received(path string) func() []map[string]any {
	return func() []map[string]any {
		s.mu.Lock()
		defer s.mu.Unlock()
		return append([]map[string]any(nil), s.got[path]...)
	}
}

// TestEventSubscriptions: subscribe (a duplicate yields the same subscription), list,
// deliver alerts, power changes and metric reports to the right subscribers, unsubscribe.
func TestEventSubscriptions(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{UUIDSeed: "events"})
	ctx := t.Context()
	sys := e.Systems()[0]
	rcv := newSink(t)

	alerts, err := c.Subscribe(ctx, rcv.srv.URL+"/alerts/x", "metal-operator", bmc.EventFormatEvent)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(alerts).To(HavePrefix("/redfish/v1/EventService/Subscriptions/"))
	again, err := c.Subscribe(ctx, rcv.srv.URL+"/alerts/x", "metal-operator", bmc.EventFormatEvent)
	g.Expect(err).NotTo(HaveOccurred(), "ResourceAlreadyExists: the existing one")
	g.Expect(again).To(Equal(alerts))
	_, err = c.Subscribe(ctx, rcv.srv.URL+"/alerts/x", "someone-else", bmc.EventFormatEvent)
	g.Expect(err).To(MatchError(bmc.ErrBadRequest), "a duplicate with another context is not ours")
	g.Expect(err.Error()).NotTo(ContainSubstring(rcv.srv.URL), "errors never quote the destination")
	reports, err := c.Subscribe(ctx, rcv.srv.URL+"/reports/x", "metal-operator", bmc.EventFormatMetricReport)
	g.Expect(err).NotTo(HaveOccurred())

	subs, err := c.Subscriptions(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(subs).To(ConsistOf(
		bmc.Subscription{URI: alerts, Destination: rcv.srv.URL + "/alerts/x", Context: "metal-operator", Format: bmc.EventFormatEvent},
		bmc.Subscription{URI: reports, Destination: rcv.srv.URL + "/reports/x", Context: "metal-operator", Format: bmc.EventFormatMetricReport},
	))

	g.Expect(e.Alert(sys.UUID, "Fan.1.0.FanFailed", "Critical", "Fan 3 failed")).To(BeTrue())
	g.Eventually(rcv.received("/alerts/x")).WithTimeout(pollTimeout).WithPolling(pollInterval).Should(HaveLen(1))
	ev := rcv.received("/alerts/x")()[0]
	g.Expect(ev).To(HaveKeyWithValue("Context", "metal-operator"))
	g.Expect(ev["Events"]).To(ConsistOf(And(
		HaveKeyWithValue("MessageId", "Fan.1.0.FanFailed"), HaveKeyWithValue("MessageSeverity", "Critical"),
		HaveKeyWithValue("Message", "Fan 3 failed"), HaveKey("EventId"), HaveKey("EventTimestamp"),
		HaveKeyWithValue("OriginOfCondition", HaveKeyWithValue("@odata.id", sys.URI)))))

	g.Expect(c.PowerOn(ctx, sys.URI)).To(Succeed())
	g.Eventually(rcv.received("/alerts/x")).WithTimeout(pollTimeout).WithPolling(pollInterval).Should(HaveLen(3), "power changes: PoweringOn, On")

	e.ReportMetrics(emulator.MetricValue{MetricID: "CPU1Temp", MetricProperty: sys.URI + "/Thermal#/Temperatures/0", MetricValue: "41.5", Units: "Cel"})
	g.Eventually(rcv.received("/reports/x")).WithTimeout(pollTimeout).WithPolling(pollInterval).Should(HaveLen(1))
	g.Expect(rcv.received("/reports/x")()[0]["MetricValues"]).To(ConsistOf(And(
		HaveKeyWithValue("MetricId", "CPU1Temp"), HaveKeyWithValue("MetricValue", "41.5"))))
	g.Expect(rcv.received("/alerts/x")()).To(HaveLen(3), "alert subscribers get no metric reports")

	g.Expect(c.Unsubscribe(ctx, alerts)).To(Succeed())
	g.Expect(c.Unsubscribe(ctx, alerts)).To(Succeed(), "gone is gone")
	g.Expect(e.Subscriptions()).To(HaveLen(1))
	delivered, failed, dropped := e.EventDeliveries()
	g.Expect([]int{delivered, failed, dropped}).To(Equal([]int{4, 0, 0}))
}

// TestEventDeliveryIsBounded: while a subscriber does not answer, the queue drops what does
// not fit, and Close ends the running delivery and queues nothing more.
func TestEventDeliveryIsBounded(t *testing.T) {
	g := NewWithT(t)
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(stuck.Close)
	t.Cleanup(func() { close(release) })

	e, c := startEmulator(t, emulator.Options{UUIDSeed: "events-bounded", EventQueue: 2})
	sys := e.Systems()[0]
	_, err := c.Subscribe(t.Context(), stuck.URL+"/a", "ctx", bmc.EventFormatEvent)
	g.Expect(err).NotTo(HaveOccurred())
	for range 10 {
		e.Alert(sys.UUID, "Test.1.0.Alert", "Warning", "x")
	}
	g.Eventually(func() int { _, _, dropped := e.EventDeliveries(); return dropped }).
		WithTimeout(pollTimeout).WithPolling(pollInterval).Should(BeNumerically(">=", 7))
	e.Close()
	delivered, failed, dropped := e.EventDeliveries()
	g.Expect(delivered).To(BeZero())
	g.Expect(failed + dropped).To(BeNumerically("<=", 10))
	e.Alert(sys.UUID, "Test.1.0.Alert", "Warning", "after close")
	_, _, after := e.EventDeliveries()
	g.Expect(after).To(Equal(dropped), "nothing is queued after Close")
}
