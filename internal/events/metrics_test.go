package events

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestLabelValue(t *testing.T) {
	for _, tc := range []struct{ in, def, want string }{
		{"Fan.1.0.FanFailed", "unknown", "Fan.1.0.FanFailed"},
		{"  iLOEvents.2.1:ServerPoweredOn ", "unknown", "iLOEvents.2.1:ServerPoweredOn"},
		{"", "unknown", "unknown"},
		{"has space", "unknown", otherLabel},
		{"quote\"", "unknown", otherLabel},
		{"ünïcode", "unknown", otherLabel},
		{strings.Repeat("a", 100), "unknown", strings.Repeat("a", maxLabelLen)},
	} {
		t.Run(tc.in, func(t *testing.T) { NewWithT(t).Expect(labelValue(tc.in, tc.def)).To(Equal(tc.want)) })
	}
}

func TestSeverityLabel(t *testing.T) {
	for in, want := range map[string]string{"OK": "OK", "warning": "Warning", " CRITICAL": "Critical", "Fatal": otherLabel, "": otherLabel} {
		NewWithT(t).Expect(severityLabel(in)).To(Equal(want), in)
	}
}

// TestAlertSeriesAreBounded: a BMC sending ever new message ids gets at most
// maxAlertSeriesPerBMC series of its own, then "other"; another BMC is not affected.
func TestAlertSeriesAreBounded(t *testing.T) {
	g := NewWithT(t)
	const host = "bounded-alerts"
	for i := range 3 * maxAlertSeriesPerBMC {
		countAlert(host, "Warning", fmt.Sprintf("Test.1.0.Id%d", i), "system")
	}
	g.Expect(counterValue(alertsTotal.WithLabelValues(host, "Warning", otherLabel, otherLabel))).To(BeEquivalentTo(2 * maxAlertSeriesPerBMC))
	series := 0
	for _, m := range collect(alertsTotal) {
		for _, l := range m.GetLabel() {
			if l.GetName() == "hostname" && l.GetValue() == host {
				series++
			}
		}
	}
	g.Expect(series).To(Equal(maxAlertSeriesPerBMC+1), "its own, and other")
	messageID, _ := countedAlerts.admit("bounded-alerts-other", "Test.1.0.Id0", "system")
	g.Expect(messageID).To(Equal("Test.1.0.Id0"))
}

// TestReadingsAreBoundedAndExpire: a BMC gets at most maxReadingsPerBMC series, and a
// reading is exported for readingTTL after it arrived.
func TestReadingsAreBoundedAndExpire(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newReadings(func() time.Time { return now })
	for i := range maxReadingsPerBMC + 10 {
		r.set(readingKey{host: "a", metricID: fmt.Sprint(i)}, 1)
	}
	g.Expect(r.set(readingKey{host: "b", metricID: "x"}, 2)).To(BeTrue(), "another BMC has room")
	g.Expect(collectCount(r)).To(Equal(maxReadingsPerBMC + 1))
	g.Expect(r.set(readingKey{host: "a", metricID: "0"}, 3)).To(BeTrue(), "a known series is updated")

	now = now.Add(readingTTL / 2)
	g.Expect(r.set(readingKey{host: "b", metricID: "x"}, 4)).To(BeTrue())
	now = now.Add(readingTTL/2 + time.Second)
	g.Expect(collectCount(r)).To(Equal(1), "only the reading refreshed within the last 10 minutes")
	g.Expect(r.set(readingKey{host: "a", metricID: "new"}, 5)).To(BeTrue(), "expired series free their room")
}

// collect returns what a collector exports now.
func collect(c prometheus.Collector) []*dto.Metric {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	var out []*dto.Metric
	for m := range ch {
		pb := &dto.Metric{}
		if err := m.Write(pb); err == nil {
			out = append(out, pb)
		}
	}
	return out
}

func collectCount(c prometheus.Collector) int { return len(collect(c)) }

// counterValue is the value of one counter.
func counterValue(c prometheus.Counter) float64 {
	pb := &dto.Metric{}
	if err := c.Write(pb); err != nil {
		return -1
	}
	return pb.GetCounter().GetValue()
}
