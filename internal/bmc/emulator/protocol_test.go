package emulator_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/bmc/redfish"
)

// rawResponse is what the protocol tests look at.
type rawResponse struct {
	status int
	header http.Header
	body   map[string]any
}

// call sends one request to the handler with basic auth unless auth is false.
func call(t *testing.T, h http.Handler, method, path, body string, header map[string]string, auth bool) rawResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if auth {
		req.SetBasicAuth(emulator.DefaultUsername, emulator.DefaultPassword)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	out := rawResponse{status: rec.Code, header: rec.Header()}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &out.body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v: %s", method, path, err, rec.Body.String())
		}
	}
	return out
}

func messageID(r rawResponse) string {
	e, _ := r.body["error"].(map[string]any)
	infos, _ := e["@Message.ExtendedInfo"].([]any)
	if len(infos) == 0 {
		return ""
	}
	info, _ := infos[0].(map[string]any)
	id, _ := info["MessageId"].(string)
	return id
}

func TestProtocol(t *testing.T) {
	e := emulator.New(emulator.Options{UUIDSeed: "proto"})
	h := e.Handler()
	sys := e.Systems()[0]
	reset := sys.URI + "/Actions/ComputerSystem.Reset"

	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		header     map[string]string
		noAuth     bool
		wantStatus int
		wantMsg    string
	}{
		{name: "service root is public", method: "GET", path: "/redfish/v1/", noAuth: true, wantStatus: 200},
		{name: "version document", method: "GET", path: "/redfish", noAuth: true, wantStatus: 200},
		{name: "systems need auth", method: "GET", path: "/redfish/v1/Systems", noAuth: true, wantStatus: 401, wantMsg: "InsufficientPrivilege"},
		{name: "bad token", method: "GET", path: sys.URI, noAuth: true, header: map[string]string{"X-Auth-Token": "forged"}, wantStatus: 401},
		{name: "system", method: "GET", path: sys.URI, wantStatus: 200},
		{name: "trailing slash", method: "GET", path: sys.URI + "/", wantStatus: 200},
		{name: "unknown system", method: "GET", path: "/redfish/v1/Systems/999", wantStatus: 404, wantMsg: "ResourceNotFound"},
		{name: "unknown path", method: "GET", path: "/redfish/v1/Chassis", wantStatus: 404},
		{name: "outside redfish", method: "GET", path: "/metrics", wantStatus: 404},
		{name: "delete system", method: "DELETE", path: sys.URI, wantStatus: 405, wantMsg: "OperationNotAllowed"},
		{name: "GET reset", method: "GET", path: reset, wantStatus: 405},
		{name: "reset without type", method: "POST", path: reset, body: `{}`, wantStatus: 400, wantMsg: "ActionParameterMissing"},
		{name: "reset bad type", method: "POST", path: reset, body: `{"ResetType":"Explode"}`, wantStatus: 400, wantMsg: "ActionParameterValueNotInList"},
		{name: "reset bad json", method: "POST", path: reset, body: `{`, wantStatus: 400, wantMsg: "MalformedJSON"},
		{name: "reset", method: "POST", path: reset, body: `{"ResetType":"Nmi"}`, wantStatus: 204},
		{name: "patch unknown property", method: "PATCH", path: sys.URI, body: `{"AssetTag":"x"}`, wantStatus: 400, wantMsg: "PropertyNotWritable"},
		{name: "patch bad target", method: "PATCH", path: sys.URI, body: `{"Boot":{"BootSourceOverrideTarget":"Floppy"}}`, wantStatus: 400, wantMsg: "PropertyValueNotInList"},
		{name: "patch bad enabled", method: "PATCH", path: sys.URI, body: `{"Boot":{"BootSourceOverrideEnabled":"Sometimes"}}`, wantStatus: 400},
		{name: "patch bad led", method: "PATCH", path: sys.URI, body: `{"IndicatorLED":"Disco"}`, wantStatus: 400},
		{name: "patch stale etag", method: "PATCH", path: sys.URI, body: `{"IndicatorLED":"Lit"}`, header: map[string]string{"If-Match": `"0"`}, wantStatus: 412, wantMsg: "PreconditionFailed"},
		{name: "patch any etag", method: "PATCH", path: sys.URI, body: `{"IndicatorLED":"Lit"}`, header: map[string]string{"If-Match": `*`}, wantStatus: 200},
		{name: "patch unknown boot option", method: "PATCH", path: sys.URI, body: `{"Boot":{"BootOrder":["Boot0001","Boot0042"]}}`, wantStatus: 400, wantMsg: "PropertyValueNotInList"},
		{name: "patch empty boot order", method: "PATCH", path: sys.URI, body: `{"Boot":{"BootOrder":[]}}`, wantStatus: 400, wantMsg: "PropertyValueError"},
		{name: "patch boot option twice", method: "PATCH", path: sys.URI, body: `{"Boot":{"BootOrder":["Boot0001","Boot0001"]}}`, wantStatus: 400, wantMsg: "PropertyValueError"},
		{name: "patch boot order of numbers", method: "PATCH", path: sys.URI, body: `{"Boot":{"BootOrder":[1]}}`, wantStatus: 400, wantMsg: "PropertyValueFormatError"},
		{name: "boot options", method: "GET", path: sys.URI + "/BootOptions", wantStatus: 200},
		{name: "boot option", method: "GET", path: sys.URI + "/BootOptions/Boot0003", wantStatus: 200},
		{name: "no such boot option", method: "GET", path: sys.URI + "/BootOptions/Boot0004", wantStatus: 404},
		{name: "processor", method: "GET", path: sys.URI + "/Processors/CPU2", wantStatus: 200},
		{name: "no such processor", method: "GET", path: sys.URI + "/Processors/CPU3", wantStatus: 404},
		{name: "empty dimm slot", method: "GET", path: sys.URI + "/Memory/DIMM5", wantStatus: 200},
		{name: "no such dimm", method: "GET", path: sys.URI + "/Memory/DIMM6", wantStatus: 404},
		{name: "drive", method: "GET", path: sys.URI + "/Storage/1/Drives/0", wantStatus: 200},
		{name: "volume", method: "GET", path: sys.URI + "/Storage/1/Volumes/1", wantStatus: 200},
		{name: "second drive", method: "GET", path: sys.URI + "/Storage/1/Drives/1", wantStatus: 200},
		{name: "no such drive", method: "GET", path: sys.URI + "/Storage/1/Drives/2", wantStatus: 404},
		{name: "drive id not canonical", method: "GET", path: sys.URI + "/Storage/1/Drives/01", wantStatus: 404},
		{name: "GET secure erase", method: "GET", path: sys.URI + "/Storage/1/Drives/0/Actions/Drive.SecureErase", wantStatus: 405},
		{name: "secure erase bad json", method: "POST", path: sys.URI + "/Storage/1/Drives/0/Actions/Drive.SecureErase", body: `{`, wantStatus: 400, wantMsg: "MalformedJSON"},
		{name: "secure erase no such drive", method: "POST", path: sys.URI + "/Storage/1/Drives/9/Actions/Drive.SecureErase", wantStatus: 404},
		{name: "patch drive", method: "PATCH", path: sys.URI + "/Storage/1/Drives/0", body: `{}`, wantStatus: 405},
		{name: "task service", method: "GET", path: "/redfish/v1/TaskService", wantStatus: 200},
		{name: "tasks", method: "GET", path: "/redfish/v1/TaskService/Tasks", wantStatus: 200},
		{name: "no such task", method: "GET", path: "/redfish/v1/TaskService/Tasks/77", wantStatus: 404},
		{name: "delete task", method: "DELETE", path: "/redfish/v1/TaskService/Tasks/1", wantStatus: 405},
		{name: "manager nic", method: "GET", path: "/redfish/v1/Managers/BMC/EthernetInterfaces/1", wantStatus: 200},
		{name: "no such manager", method: "GET", path: "/redfish/v1/Managers/Other", wantStatus: 404},
		{name: "session service", method: "GET", path: "/redfish/v1/SessionService", wantStatus: 200},
		{name: "login wrong password", method: "POST", path: "/redfish/v1/SessionService/Sessions", noAuth: true,
			body: `{"UserName":"admin","Password":"wrong"}`, wantStatus: 401},
		{name: "delete unknown session", method: "DELETE", path: "/redfish/v1/SessionService/Sessions/42", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r := call(t, h, tt.method, tt.path, tt.body, tt.header, !tt.noAuth)
			g.Expect(r.status).To(Equal(tt.wantStatus), "%v", r.body)
			if tt.wantMsg != "" {
				g.Expect(messageID(r)).To(Equal("Base.1.15." + tt.wantMsg))
			}
			if r.status >= 400 {
				g.Expect(r.body).To(HaveKey("error"))
			}
		})
	}
}

func TestPatchETagFlow(t *testing.T) {
	g := NewWithT(t)
	e := emulator.New(emulator.Options{})
	h := e.Handler()
	sys := e.Systems()[0]

	get := call(t, h, "GET", sys.URI, "", nil, true)
	etag := get.header.Get("ETag")
	g.Expect(etag).NotTo(BeEmpty())
	g.Expect(get.body["@odata.etag"]).To(Equal(etag))

	patch := call(t, h, "PATCH", sys.URI,
		`{"Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideTarget":"UefiHttp","BootSourceOverrideMode":"UEFI"}}`,
		map[string]string{"If-Match": etag}, true)
	g.Expect(patch.status).To(Equal(http.StatusOK))
	g.Expect(patch.body["Boot"]).To(HaveKeyWithValue("BootSourceOverrideTarget", "UefiHttp"))
	g.Expect(patch.header.Get("ETag")).NotTo(Equal(etag), "the change yields a new ETag")

	stale := call(t, h, "PATCH", sys.URI, `{"IndicatorLED":"Lit"}`, map[string]string{"If-Match": etag}, true)
	g.Expect(stale.status).To(Equal(http.StatusPreconditionFailed))
	g.Expect(e.BootOverride(sys.UUID)).To(Equal(bmc.BootOverride{Target: bmc.BootTargetUefiHttp, Mode: bmc.BootModeUEFI, Once: true}))

	// A power change also changes the representation, hence the ETag.
	before := call(t, h, "GET", sys.URI, "", nil, true).header.Get("ETag")
	g.Expect(e.SetPowerState(sys.UUID, bmc.PowerStateOn)).To(BeTrue())
	g.Expect(call(t, h, "GET", sys.URI, "", nil, true).header.Get("ETag")).NotTo(Equal(before))
}

// A system shows its boot order and links its boot options; a PATCH of Boot.BootOrder
// replaces the order (a new ETag), and a refused one leaves it as it was.
func TestBootOrderProtocol(t *testing.T) {
	g := NewWithT(t)
	e := emulator.New(emulator.Options{})
	h := e.Handler()
	sys := e.Systems()[0]
	defaultOrder := []any{"Boot0001", "Boot0000", "Boot0002", "Boot0003"}

	get := call(t, h, "GET", sys.URI, "", nil, true)
	g.Expect(get.body["Boot"]).To(HaveKeyWithValue("BootOrder", defaultOrder))
	g.Expect(get.body["Boot"]).To(HaveKeyWithValue("BootOptions", map[string]any{"@odata.id": sys.URI + "/BootOptions"}))

	options := call(t, h, "GET", sys.URI+"/BootOptions", "", nil, true)
	g.Expect(options.body["Members@odata.count"]).To(BeNumerically("==", 4))
	aliases := map[string]any{}
	for _, m := range options.body["Members"].([]any) {
		o := call(t, h, "GET", m.(map[string]any)["@odata.id"].(string), "", nil, true)
		g.Expect(o.status).To(Equal(http.StatusOK))
		aliases[o.body["BootOptionReference"].(string)] = o.body["Alias"]
	}
	g.Expect(aliases).To(Equal(map[string]any{"Boot0000": "Pxe", "Boot0001": "Hdd", "Boot0002": "Cd", "Boot0003": "Usb"}))

	etag := get.header.Get("ETag")
	patch := call(t, h, "PATCH", sys.URI, `{"Boot":{"BootOrder":["Boot0000","Boot0001"]}}`, map[string]string{"If-Match": etag}, true)
	g.Expect(patch.status).To(Equal(http.StatusOK))
	g.Expect(patch.body["Boot"]).To(HaveKeyWithValue("BootOrder", []any{"Boot0000", "Boot0001"}))
	g.Expect(patch.header.Get("ETag")).NotTo(Equal(etag))
	g.Expect(e.BootOrder(sys.UUID)).To(Equal([]string{"Boot0000", "Boot0001"}))

	refused := call(t, h, "PATCH", sys.URI, `{"Boot":{"BootOrder":["Boot0009"]}}`, nil, true)
	g.Expect(refused.status).To(Equal(http.StatusBadRequest))
	g.Expect(e.BootOrder(sys.UUID)).To(Equal([]string{"Boot0000", "Boot0001"}))

	// Other Boot properties leave the order alone.
	other := call(t, h, "PATCH", sys.URI, `{"Boot":{"BootSourceOverrideEnabled":"Disabled","BootOrder":null}}`, nil, true)
	g.Expect(other.status).To(Equal(http.StatusOK))
	g.Expect(e.BootOrder(sys.UUID)).To(Equal([]string{"Boot0000", "Boot0001"}))

	g.Expect(e.SetBootOrder(sys.UUID, []string{"Boot0003"})).To(BeTrue())
	g.Expect(call(t, h, "GET", sys.URI, "", nil, true).body["Boot"]).To(HaveKeyWithValue("BootOrder", []any{"Boot0003"}))
	g.Expect(e.SetBootOrder("no-such-uuid", []string{"Boot0003"})).To(BeFalse())
	g.Expect(e.BootOrder("no-such-uuid")).To(BeNil())
}

func TestSessionProtocol(t *testing.T) {
	g := NewWithT(t)
	e := emulator.New(emulator.Options{})
	h := e.Handler()
	sys := e.Systems()[0]

	login := call(t, h, "POST", "/redfish/v1/SessionService/Sessions", `{"UserName":"admin","Password":"password"}`, nil, false)
	g.Expect(login.status).To(Equal(http.StatusCreated))
	token := login.header.Get("X-Auth-Token")
	location := login.header.Get("Location")
	g.Expect(token).To(HaveLen(32))
	g.Expect(location).To(Equal("/redfish/v1/SessionService/Sessions/1"))
	g.Expect(login.body["@odata.id"]).To(Equal(location))

	withToken := map[string]string{"X-Auth-Token": token}
	g.Expect(call(t, h, "GET", sys.URI, "", withToken, false).status).To(Equal(http.StatusOK))
	list := call(t, h, "GET", "/redfish/v1/SessionService/Sessions", "", withToken, false)
	g.Expect(list.body["Members@odata.count"]).To(BeEquivalentTo(1))

	g.Expect(call(t, h, "DELETE", location, "", withToken, false).status).To(Equal(http.StatusNoContent))
	g.Expect(call(t, h, "GET", sys.URI, "", withToken, false).status).To(Equal(http.StatusUnauthorized))
	g.Expect(e.SessionCount()).To(Equal(0))
}

func TestUnavailableAnswers503(t *testing.T) {
	g := NewWithT(t)
	e := emulator.New(emulator.Options{})
	e.SetUnavailable(true)
	r := call(t, e.Handler(), "GET", "/redfish/v1", "", nil, false)
	g.Expect(r.status).To(Equal(http.StatusServiceUnavailable))
	g.Expect(e.RequestCount()).To(Equal(int64(1)))
}

func TestServesTenThousandSystems(t *testing.T) {
	g := NewWithT(t)
	const n = 10000
	e, c := startEmulator(t, emulator.Options{Systems: n, UUIDSeed: "large"})
	ctx := t.Context()

	list := call(t, e.Handler(), "GET", "/redfish/v1/Systems", "", nil, true)
	g.Expect(list.body["Members"]).To(HaveLen(n))

	last := e.Systems()[n-1]
	g.Expect(c.PowerOn(ctx, last.URI)).To(Succeed())
	info, err := c.SystemInfo(ctx, last.URI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.UUID).To(Equal(last.UUID))
	g.Expect(info.PowerState).To(Equal(bmc.PowerStateOn))
	g.Expect(e.RemoveSystem(e.Systems()[n/2].UUID)).To(BeTrue())
	g.Expect(e.Systems()).To(HaveLen(n - 1))
}

func TestServeShutsDownOnContextEnd(t *testing.T) {
	g := NewWithT(t)
	e := emulator.New(emulator.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.ListenAndServe(ctx, "127.0.0.1:0") }()
	cancel()
	g.Eventually(done).WithTimeout(pollTimeout).Should(Receive(BeNil()))
	g.Expect(e.ListenAndServe(t.Context(), "256.0.0.1:0")).To(MatchError(ContainSubstring("listen")))
}

// TestNoGoroutineLeaks drives the emulator and clients through sessions, latency and timeouts,
// then checks every goroutine they started has ended.
func TestNoGoroutineLeaks(t *testing.T) {
	g := NewWithT(t)
	redfish.CloseIdleConnections()
	before := runtime.NumGoroutine()

	e, err := emulator.Start(emulator.Options{Systems: 5, PowerDelay: 5 * time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())
	for _, sessions := range []bool{false, true} {
		c := newClient(t, e, func(cfg *redfish.Config) { cfg.UseSessions = sessions })
		for _, s := range e.Systems() {
			g.Expect(c.PowerOn(t.Context(), s.URI)).To(Succeed())
			_, err := c.Storage(t.Context(), s.URI)
			g.Expect(err).NotTo(HaveOccurred())
		}
		g.Expect(c.Logout(t.Context())).To(Succeed())
	}
	// Leave requests stuck in injected latency behind: Close must release them.
	e.SetLatency(time.Hour)
	short := newClient(t, e, func(cfg *redfish.Config) { cfg.Timeout = 20 * time.Millisecond })
	_, err = short.SystemInfo(t.Context(), e.Systems()[0].URI)
	g.Expect(err).To(MatchError(bmc.ErrUnavailable))

	e.Close()
	redfish.CloseIdleConnections()
	g.Eventually(runtime.NumGoroutine).WithTimeout(pollTimeout).WithPolling(10 * time.Millisecond).
		Should(BeNumerically("<=", before))
}
