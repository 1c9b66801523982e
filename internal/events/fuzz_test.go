package events

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// FuzzPayloads: whatever a BMC posts as an alert or a metric report, the receiver does not
// panic, and every label value it exports for that BMC is within the bounds. The seed corpus
// is in testdata/fuzz/FuzzPayloads.
func FuzzPayloads(f *testing.F) {
	const host = "fuzzed-bmc"
	r := &Receiver{}
	obj := &metalv1alpha1.BMC{ObjectMeta: metav1.ObjectMeta{Name: host}}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = r.alerts(obj, data)
		_ = metricReport(host, data)
		for _, m := range append(collect(alertsTotal), collect(defaultReadings)...) {
			mine := false
			for _, l := range m.GetLabel() {
				if l.GetName() == "hostname" && l.GetValue() == host {
					mine = true
				}
			}
			if !mine {
				continue
			}
			for _, l := range m.GetLabel() {
				limit := maxLabelLen
				if l.GetName() == "origin_context" {
					limit = 2 * maxLabelLen
				}
				if len(l.GetValue()) > limit {
					t.Fatalf("label %s=%q exceeds %d bytes", l.GetName(), l.GetValue(), limit)
				}
			}
		}
	})
}
