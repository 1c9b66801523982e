package bench

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

func TestPathShape(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/redfish/v1", "/redfish/v1"},
		{"/redfish/v1/", "/redfish/v1"},
		{"/redfish/v1/Systems", "/redfish/v1/Systems"},
		{"/redfish/v1/Systems/437XR1138R2", "/redfish/v1/Systems/{id}"},
		{"/redfish/v1/Systems/0b3e2f5c-1f0a-4a5e-9c3d-0a1b2c3d4e5f/Memory/DIMM1", "/redfish/v1/Systems/{id}/Memory/{id}"},
		{"/redfish/v1/Managers/BMC", "/redfish/v1/Managers/BMC"},
		{"/redfish/v1/SessionService/Sessions/abc-def", "/redfish/v1/SessionService/Sessions/{id}"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			NewWithT(t).Expect(pathShape(tc.path)).To(Equal(tc.want))
		})
	}
}

func TestSteadyRates(t *testing.T) {
	for _, tc := range []struct {
		name              string
		st                SteadyResult
		perResync, perMin float64
	}{
		{"one read per server per resync", SteadyResult{Duration: 2 * time.Minute, ResyncInterval: 30 * time.Second, Servers: 1000, Redfish: 4000, CPUSeconds: 3}, 1, 1.5},
		{"nothing", SteadyResult{Duration: time.Minute, ResyncInterval: time.Minute, Servers: 10}, 0, 0},
		{"half an interval", SteadyResult{Duration: 30 * time.Second, ResyncInterval: time.Minute, Servers: 10, Redfish: 10, CPUSeconds: 1}, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(tc.st.RedfishPerServerPerResync()).To(BeNumerically("~", tc.perResync, 1e-9))
			g.Expect(tc.st.CPUPerMinute()).To(BeNumerically("~", tc.perMin, 1e-9))
		})
	}
}

func TestRedfishCountSince(t *testing.T) {
	g := NewWithT(t)
	before := redfishCount{total: 3, byShape: map[string]int{"GET /a": 2, "GET /b": 1}}
	after := redfishCount{total: 7, byShape: map[string]int{"GET /a": 2, "GET /b": 4, "PATCH /c": 1}}
	d := after.since(before)
	g.Expect(d.total).To(Equal(4))
	g.Expect(d.byShape).To(Equal(map[string]int{"GET /b": 3, "PATCH /c": 1}))
	g.Expect(PerServer(d.byShape, 2)).To(Equal("GET /b: 1.50, PATCH /c: 0.50"))
}

func TestCountedBMCCountsByShape(t *testing.T) {
	g := NewWithT(t)
	b, err := startCountedBMC(emulator.Options{Systems: 2, UUIDSeed: "count"})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(b.close)
	get := func(path string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, fmt.Sprintf("http://%s:%d%s", b.host, b.port, path), nil)
		g.Expect(err).NotTo(HaveOccurred())
		req.SetBasicAuth(emulator.DefaultUsername, emulator.DefaultPassword)
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
		g.Expect(resp.Body.Close()).To(Succeed())
	}
	get("/redfish/v1")
	for _, s := range b.Systems() {
		get(s.URI)
	}
	total, by := b.snapshot()
	g.Expect(total).To(Equal(3))
	g.Expect(by).To(Equal(map[string]int{"GET /redfish/v1": 1, "GET /redfish/v1/Systems/{id}": 2}))
	g.Expect(countAll([]*countedBMC{b, b}).total).To(Equal(6))
}
