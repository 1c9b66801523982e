package events

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// subscribedBMC creates a BMC whose status carries the hash of a fresh token, and returns
// it with the token.
func subscribedBMC(t *testing.T, name string) (*metalv1alpha1.BMC, string) {
	t.Helper()
	g := NewWithT(t)
	obj := &metalv1alpha1.BMC{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: metalv1alpha1.BMCSpec{
			Access:       &metalv1alpha1.InlineEndpoint{IP: "192.0.2.1"},
			Protocol:     metalv1alpha1.Protocol{Name: metalv1alpha1.ProtocolRedfish, Port: 443},
			BMCSecretRef: metalv1alpha1.LocalObjectReference{Name: "unused"},
		},
	}
	g.Expect(env.Client.Create(t.Context(), obj)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
	token, hash, err := NewToken()
	g.Expect(err).NotTo(HaveOccurred())
	base := obj.DeepCopy()
	obj.Status.EventTokenHash = hash
	g.Expect(env.Client.Status().Patch(t.Context(), obj, client.MergeFrom(base))).To(Succeed())
	return obj, token
}

// startReceiver serves a receiver on a loopback port until the test ends.
func startReceiver(t *testing.T, opts ...Options) string {
	t.Helper()
	o := Options{}
	if len(opts) > 0 {
		o = opts[0]
	}
	r, err := NewReceiver(env.Client, nil, o)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("receiver: %v", err)
		}
	})
	return "http://" + l.Addr().String()
}

func post(t *testing.T, method, url, body string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	return resp.StatusCode
}

const alertBody = `{"Events":[{"EventId":"1","MessageId":"Fan.1.0.FanFailed","MessageSeverity":"Critical","Message":"Fan 3 failed","OriginOfCondition":{"@odata.id":"/redfish/v1/Chassis/1/Thermal"}}]}`

// TestReceiverRefuses: only POSTs for a known BMC with its token, within the size bound
// and with a JSON body, are taken; the others are answered without counting anything.
func TestReceiverRefuses(t *testing.T) {
	base := startReceiver(t)
	obj, token := subscribedBMC(t, "receiver-refuses")
	other, otherToken := subscribedBMC(t, "receiver-refuses-other")
	alerts := func(bmcName, tok string) string { return Destination(base, KindAlerts, bmcName, tok) }
	counted := func() float64 {
		return counterValue(alertsTotal.WithLabelValues(obj.Name, "Critical", "Fan.1.0.FanFailed", "Thermal"))
	}

	for _, tc := range []struct {
		name, method, url, body string
		want                    int
	}{
		{"GET", http.MethodGet, alerts(obj.Name, token), "", http.StatusMethodNotAllowed},
		{"PUT", http.MethodPut, alerts(obj.Name, token), alertBody, http.StatusMethodNotAllowed},
		{"unknown BMC", http.MethodPost, alerts("no-such-bmc", token), alertBody, http.StatusNotFound},
		{"wrong token", http.MethodPost, alerts(obj.Name, token+"x"), alertBody, http.StatusNotFound},
		{"another BMC's token", http.MethodPost, alerts(obj.Name, otherToken), alertBody, http.StatusNotFound},
		{"no token (the reference's path)", http.MethodPost, base + "/serverevents/alerts/" + obj.Name, alertBody, http.StatusNotFound},
		{"unknown kind", http.MethodPost, base + "/serverevents/other/" + obj.Name + "/" + token, alertBody, http.StatusNotFound},
		{"too large", http.MethodPost, alerts(obj.Name, token), `{"Events":[],"x":"` + strings.Repeat("a", MaxBody) + `"}`, http.StatusRequestEntityTooLarge},
		{"not JSON", http.MethodPost, alerts(obj.Name, token), `{"Events":`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(post(t, tc.method, tc.url, tc.body)).To(Equal(tc.want))
			g.Expect(counted()).To(BeZero())
		})
	}

	g := NewWithT(t)
	g.Expect(post(t, http.MethodPost, alerts(obj.Name, token), alertBody)).To(Equal(http.StatusOK))
	g.Expect(counted()).To(Equal(1.0))
	g.Expect(post(t, http.MethodPost, alerts(other.Name, otherToken), alertBody)).To(Equal(http.StatusOK))
	g.Expect(counted()).To(Equal(1.0), "the other BMC's alert is its own series")
	g.Expect(counterValue(alertsTotal.WithLabelValues(other.Name, "Critical", "Fan.1.0.FanFailed", "Thermal"))).To(Equal(1.0))
}

// TestReceiverMetricReports: readings are kept per BMC (two BMCs reporting the same metric
// do not overwrite each other) and labelled as the reference does.
func TestReceiverMetricReports(t *testing.T) {
	g := NewWithT(t)
	base := startReceiver(t)
	a, tokenA := subscribedBMC(t, "receiver-reports-a")
	b, tokenB := subscribedBMC(t, "receiver-reports-b")
	report := func(v string) string {
		return `{"Id":"r","MetricValues":[{"MetricId":"CPU1Temp","MetricProperty":"/redfish/v1/Chassis/1/Thermal#/Temperatures/0/ReadingCelsius","MetricValue":"` + v + `"},` +
			`{"MetricId":"PSU1Power","MetricValue":250,"Units":"W","MetricValueKind":"Gauge"},{"MetricId":"Broken","MetricValue":"n/a"}]}`
	}
	g.Expect(post(t, http.MethodPost, Destination(base, KindMetricsReport, a.Name, tokenA), report("41.5"))).To(Equal(http.StatusOK))
	g.Expect(post(t, http.MethodPost, Destination(base, KindMetricsReport, b.Name, tokenB), report("55"))).To(Equal(http.StatusOK))

	want := func(host, value string) string {
		return fmt.Sprintf(`redfish_monitor_reading{hostname=%q,metric_id="CPU1Temp",origin_context="/redfish/v1/Chassis/1/Thermal#/Temperatures/0/ReadingCelsius",type="Temperature",unit="seconds"} %s`, host, value)
	}
	text := gatherText(t, "redfish_monitor_reading")
	g.Expect(text).To(ContainSubstring(want(a.Name, "41.5")))
	g.Expect(text).To(ContainSubstring(want(b.Name, "55")))
	g.Expect(text).To(ContainSubstring(fmt.Sprintf(`redfish_monitor_reading{hostname=%q,metric_id="PSU1Power",origin_context="",type="Gauge",unit="W"} 250`, a.Name)))
	g.Expect(text).NotTo(ContainSubstring("Broken"), "a value that is no number is skipped")
}

// gatherText renders the named metric family from the registry it is registered on.
func gatherText(t *testing.T, name string) string {
	t.Helper()
	var sb strings.Builder
	mfs, err := ctrlmetrics.Registry.Gather()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := make([]string, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			fmt.Fprintf(&sb, "%s{%s} %v\n", name, strings.Join(labels, ","), m.GetGauge().GetValue())
		}
	}
	return sb.String()
}

// TestReceiverIsBusy: past MaxConcurrent requests in progress, a request is answered 503
// at once; once one finishes, requests are taken again.
func TestReceiverIsBusy(t *testing.T) {
	g := NewWithT(t)
	base := startReceiver(t, Options{MaxConcurrent: 1})
	obj, token := subscribedBMC(t, "receiver-busy")
	url := Destination(base, KindAlerts, obj.Name, token)

	// A request whose body trickles in holds the only slot.
	pr, pw := io.Pipe()
	slow := make(chan int, 1)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url, pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slow <- 0
			return
		}
		_ = resp.Body.Close()
		slow <- resp.StatusCode
	}()
	_, err := pw.Write([]byte(`{"Events":[`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() int { return post(t, http.MethodPost, url, alertBody) }).Should(Equal(http.StatusServiceUnavailable))

	_, err = pw.Write([]byte(`]}`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pw.Close()).To(Succeed())
	g.Eventually(slow).Should(Receive(Equal(http.StatusOK)))
	g.Expect(post(t, http.MethodPost, url, alertBody)).To(Equal(http.StatusOK))
}
