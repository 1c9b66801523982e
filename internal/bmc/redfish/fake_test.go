package redfish

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

const (
	testUser     = "admin"
	testPassword = "s3cr3t-Pa55w0rd"
	testSystem   = "/redfish/v1/Systems/1"
)

// recorded is one request the fake BMC received.
type recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   string
}

// fakeBMC is an httptest server with per-route handlers that records every request.
type fakeBMC struct {
	srv *httptest.Server

	mu     sync.Mutex
	reqs   []recorded
	routes map[string]http.HandlerFunc // "METHOD /path"
}

func newFakeBMC(t *testing.T, routes map[string]http.HandlerFunc) *fakeBMC {
	t.Helper()
	f := &fakeBMC{routes: maps.Clone(routes)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeBMC) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)})
	h := f.routes[r.Method+" "+r.URL.Path]
	f.mu.Unlock()
	if h == nil {
		writeTestJSON(w, http.StatusNotFound, nil, redfishErrorBody("ResourceNotFound", "no such resource"))
		return
	}
	h(w, r)
}

// route replaces the handler of a route.
func (f *fakeBMC) route(key string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[key] = h
}

func (f *fakeBMC) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// count returns how many requests had the method and path.
func (f *fakeBMC) count(method, path string) int {
	n := 0
	for _, r := range f.requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// only returns the requests with the method.
func (f *fakeBMC) only(method string) []recorded {
	var out []recorded
	for _, r := range f.requests() {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeBMC) client(t *testing.T, mutate ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{Endpoint: f.srv.URL, Username: testUser, Password: testPassword, Timeout: 2 * time.Second}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func writeTestJSON(w http.ResponseWriter, status int, header map[string]string, body any) {
	for k, v := range header {
		w.Header().Set(k, v)
	}
	if body == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// reply answers with a fixed status, headers and JSON body.
func reply(status int, header map[string]string, body any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { writeTestJSON(w, status, header, body) }
}

// sequence answers with the handlers in turn, repeating the last one.
func sequence(hs ...http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	i := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hs[min(i, len(hs)-1)]
		i++
		mu.Unlock()
		h(w, r)
	}
}

func redfishErrorBody(id, msg string) map[string]any {
	return map[string]any{"error": map[string]any{
		"code":    "Base.1.15.GeneralError",
		"message": "A general error has occurred.",
		"@Message.ExtendedInfo": []any{
			map[string]any{"MessageId": "Base.1.15." + id, "Message": msg},
		},
	}}
}

// systemBody is a ComputerSystem resource as a typical BMC returns it.
func systemBody(power, enabled, target string) map[string]any {
	return map[string]any{
		"@odata.id":    testSystem,
		"Id":           "1",
		"UUID":         "4C4C4544-0042-3010-8051-B7C04F4E5A31",
		"Manufacturer": "Dell Inc.",
		"Model":        "PowerEdge R650",
		"SKU":          "7XY1Z2",
		"SerialNumber": "CN7016",
		"BiosVersion":  "1.9.2",
		"PowerState":   power,
		"IndicatorLED": "Off",
		"MemorySummary": map[string]any{
			"TotalSystemMemoryGiB": 0.5,
		},
		"Boot": map[string]any{
			"BootSourceOverrideEnabled":                        enabled,
			"BootSourceOverrideTarget":                         target,
			"BootSourceOverrideMode":                           "Legacy",
			"BootSourceOverrideTarget@Redfish.AllowableValues": []string{"None", "Pxe", "Hdd", "UefiHttp"},
			"BootOrder": []string{"Boot0002", "Boot0000", "Boot0001"},
		},
		"Actions": map[string]any{
			"#ComputerSystem.Reset": map[string]any{
				"target": testSystem + "/Actions/Custom.Reset",
				"ResetType@Redfish.AllowableValues": []string{
					"On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "PushPowerButton", "Nmi",
				},
			},
		},
		"Processors":         map[string]any{"@odata.id": testSystem + "/Processors"},
		"Memory":             map[string]any{"@odata.id": testSystem + "/Memory"},
		"EthernetInterfaces": map[string]any{"@odata.id": testSystem + "/EthernetInterfaces"},
		"Storage":            map[string]any{"@odata.id": testSystem + "/Storage"},
	}
}

// expectSystemPatch checks the PATCHes the fake BMC received: none if want is "", else one
// of the system with the JSON body want and If-Match etag.
func expectSystemPatch(g Gomega, f *fakeBMC, want, etag string) {
	patches := f.only(http.MethodPatch)
	if want == "" {
		g.Expect(patches).To(BeEmpty())
		return
	}
	g.Expect(patches).To(HaveLen(1))
	g.Expect(patches[0].Path).To(Equal(testSystem))
	g.Expect(patches[0].Body).To(MatchJSON(want))
	g.Expect(patches[0].Header.Get("If-Match")).To(Equal(etag))
	g.Expect(patches[0].Header.Get("Content-Type")).To(Equal("application/json"))
}

func members(paths ...string) map[string]any {
	m := make([]any, 0, len(paths))
	for _, p := range paths {
		m = append(m, map[string]any{"@odata.id": p})
	}
	return map[string]any{"Members": m, "Members@odata.count": len(m)}
}
