package redfish

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestNewValidatesConfigWithoutIO(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"http", Config{Endpoint: "http://127.0.0.1:1"}, ""},
		{"https with path", Config{Endpoint: "https://bmc.example:8443/redfish/v1/"}, ""},
		{"no scheme", Config{Endpoint: "10.0.0.1"}, "scheme must be http or https"},
		{"ftp", Config{Endpoint: "ftp://10.0.0.1"}, "scheme must be http or https"},
		{"no host", Config{Endpoint: "http://"}, "missing host"},
		{"credentials in URL", Config{Endpoint: "http://root:calvin@10.0.0.1"}, "credentials belong in Username/Password"},
		{"bad CA", Config{Endpoint: "https://10.0.0.1", CACertPEM: []byte("not a cert")}, "no valid certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c, err := New(tt.cfg)
			if tt.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(c.timeout).To(Equal(DefaultTimeout))
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			g.Expect(err.Error()).NotTo(ContainSubstring("calvin"))
		})
	}
}

func TestTransportsAreShared(t *testing.T) {
	g := NewWithT(t)
	a, err := New(Config{Endpoint: "http://10.0.0.1"})
	g.Expect(err).NotTo(HaveOccurred())
	b, err := New(Config{Endpoint: "https://10.0.0.2", Username: "other"})
	g.Expect(err).NotTo(HaveOccurred())
	insecure, err := New(Config{Endpoint: "https://10.0.0.3", InsecureSkipVerify: true})
	g.Expect(err).NotTo(HaveOccurred())
	insecure2, err := New(Config{Endpoint: "https://10.0.0.4", InsecureSkipVerify: true})
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(a.hc.Transport).To(BeIdenticalTo(b.hc.Transport))
	g.Expect(insecure.hc.Transport).To(BeIdenticalTo(insecure2.hc.Transport))
	g.Expect(insecure.hc.Transport).NotTo(BeIdenticalTo(a.hc.Transport))

	tr := a.hc.Transport.(*http.Transport)
	g.Expect(tr.MaxIdleConnsPerHost).To(BeNumerically(">", 0))
	g.Expect(tr.MaxIdleConns).To(BeNumerically(">", 0))
	g.Expect(tr.IdleConnTimeout).To(BeNumerically(">", 0))
	g.Expect(tr.Proxy).To(BeNil())
}

func TestSystemInfoReadsOneGET(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem: reply(http.StatusOK, nil, systemBody("PoweringOn", "Once", "Pxe")),
	})
	info, err := f.client(t).SystemInfo(t.Context(), testSystem)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info).To(Equal(bmc.SystemInfo{
		UUID:             "4C4C4544-0042-3010-8051-B7C04F4E5A31",
		URI:              testSystem,
		Manufacturer:     "Dell Inc.",
		Model:            "PowerEdge R650",
		SKU:              "7XY1Z2",
		SerialNumber:     "CN7016",
		BIOSVersion:      "1.9.2",
		PowerState:       bmc.PowerStatePoweringOn,
		IndicatorLED:     bmc.IndicatorLEDOff,
		TotalMemoryBytes: 512 << 20,
		BootOverride:     bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeLegacy, Once: true},
		BootOrder:        []string{"Boot0002", "Boot0000", "Boot0001"},
	}))

	reqs := f.requests()
	g.Expect(reqs).To(HaveLen(1))
	g.Expect(reqs[0].Method).To(Equal(http.MethodGet))
	g.Expect(reqs[0].Header.Get("Authorization")).To(Equal(basicAuth(testUser, testPassword)))
	g.Expect(reqs[0].Header.Get("Accept")).To(Equal("application/json"))
	g.Expect(reqs[0].Header.Get("OData-Version")).To(Equal("4.0"))
	g.Expect(reqs[0].Header.Get("X-Auth-Token")).To(BeEmpty())
}

func TestBootOverrideOf(t *testing.T) {
	tests := []struct {
		enabled, target, mode string
		want                  bmc.BootOverride
	}{
		{"Once", "Pxe", "UEFI", bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeUEFI, Once: true}},
		{"Continuous", "Hdd", "", bmc.BootOverride{Target: bmc.BootTargetHdd}},
		{"Disabled", "Pxe", "UEFI", bmc.BootOverride{Target: bmc.BootTargetNone, Mode: bmc.BootModeUEFI}},
		{"Once", "None", "", bmc.BootOverride{Target: bmc.BootTargetNone}},
		{"", "", "", bmc.BootOverride{Target: bmc.BootTargetNone}},
	}
	for _, tt := range tests {
		t.Run(tt.enabled+"/"+tt.target, func(t *testing.T) {
			g := NewWithT(t)
			var sys computerSystem
			sys.Boot.BootSourceOverrideEnabled = tt.enabled
			sys.Boot.BootSourceOverrideTarget = tt.target
			sys.Boot.BootSourceOverrideMode = tt.mode
			g.Expect(bootOverrideOf(&sys)).To(Equal(tt.want))
		})
	}
}

func TestPowerOperations(t *testing.T) {
	const action = testSystem + "/Actions/Custom.Reset"
	tests := []struct {
		name      string
		power     string
		op        func(context.Context, *Client) error
		wantReset string // "" = no POST
	}{
		{"PowerOn from Off", "Off", func(ctx context.Context, c *Client) error { return c.PowerOn(ctx, testSystem) }, "On"},
		{"PowerOn when On", "On", func(ctx context.Context, c *Client) error { return c.PowerOn(ctx, testSystem) }, ""},
		{"PowerOn when PoweringOn", "PoweringOn", func(ctx context.Context, c *Client) error { return c.PowerOn(ctx, testSystem) }, ""},
		{"PowerOn from PoweringOff", "PoweringOff", func(ctx context.Context, c *Client) error { return c.PowerOn(ctx, testSystem) }, "On"},
		{"PowerOff from On", "On", func(ctx context.Context, c *Client) error { return c.PowerOff(ctx, testSystem) }, "GracefulShutdown"},
		{"PowerOff when Off", "Off", func(ctx context.Context, c *Client) error { return c.PowerOff(ctx, testSystem) }, ""},
		{"PowerOff when PoweringOff", "PoweringOff", func(ctx context.Context, c *Client) error { return c.PowerOff(ctx, testSystem) }, ""},
		{"ForcePowerOff from On", "On", func(ctx context.Context, c *Client) error { return c.ForcePowerOff(ctx, testSystem) }, "ForceOff"},
		{"ForcePowerOff from PoweringOff", "PoweringOff", func(ctx context.Context, c *Client) error { return c.ForcePowerOff(ctx, testSystem) }, "ForceOff"},
		{"ForcePowerOff when Off", "Off", func(ctx context.Context, c *Client) error { return c.ForcePowerOff(ctx, testSystem) }, ""},
		{"Reset always posts", "On", func(ctx context.Context, c *Client) error { return c.Reset(ctx, testSystem, bmc.ResetForceRestart) }, "ForceRestart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newFakeBMC(t, map[string]http.HandlerFunc{
				"GET " + testSystem: reply(http.StatusOK, nil, systemBody(tt.power, "Disabled", "None")),
				"POST " + action:    reply(http.StatusNoContent, nil, nil),
			})
			g.Expect(tt.op(t.Context(), f.client(t))).To(Succeed())
			posts := f.only(http.MethodPost)
			if tt.wantReset == "" {
				g.Expect(posts).To(BeEmpty())
				return
			}
			g.Expect(posts).To(HaveLen(1))
			g.Expect(posts[0].Path).To(Equal(action))
			g.Expect(posts[0].Body).To(MatchJSON(`{"ResetType":"` + tt.wantReset + `"}`))
			g.Expect(posts[0].Header.Get("Content-Type")).To(Equal("application/json"))
			g.Expect(posts[0].Header.Get("Authorization")).To(Equal(basicAuth(testUser, testPassword)))
		})
	}
}

func TestResetFallsBackToConventionalTarget(t *testing.T) {
	g := NewWithT(t)
	sys := systemBody("Off", "Disabled", "None")
	delete(sys, "Actions")
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem: reply(http.StatusOK, nil, sys),
		"POST " + testSystem + "/Actions/ComputerSystem.Reset": reply(http.StatusOK, nil, map[string]any{}),
	})
	g.Expect(f.client(t).PowerOn(t.Context(), testSystem)).To(Succeed())
	g.Expect(f.count(http.MethodPost, testSystem+"/Actions/ComputerSystem.Reset")).To(Equal(1))
}

func TestResetOutsideAllowableValuesIsNotSent(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem: reply(http.StatusOK, nil, systemBody("On", "Disabled", "None")),
	})
	c := f.client(t)
	err := c.Reset(t.Context(), testSystem, bmc.ResetPowerCycle)
	g.Expect(err).To(MatchError(bmc.ErrNotSupported))
	g.Expect(err.Error()).To(ContainSubstring("PowerCycle not in the allowable values"))
	g.Expect(c.Reset(t.Context(), testSystem, bmc.ResetType("Explode"))).To(MatchError(bmc.ErrNotSupported))
	g.Expect(f.only(http.MethodPost)).To(BeEmpty())
}

func TestSetBootOverride(t *testing.T) {
	tests := []struct {
		name      string
		current   [2]string // Enabled, Target
		override  bmc.BootOverride
		wantPatch string // "" = no PATCH
		wantErr   error
	}{
		{
			name: "once pxe uefi", current: [2]string{"Disabled", "None"},
			override:  bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeUEFI, Once: true},
			wantPatch: `{"Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideTarget":"Pxe","BootSourceOverrideMode":"UEFI"}}`,
		},
		{
			name: "continuous hdd keeps mode", current: [2]string{"Disabled", "None"},
			override:  bmc.BootOverride{Target: bmc.BootTargetHdd},
			wantPatch: `{"Boot":{"BootSourceOverrideEnabled":"Continuous","BootSourceOverrideTarget":"Hdd"}}`,
		},
		{
			name: "disable", current: [2]string{"Once", "Pxe"},
			override:  bmc.BootOverride{Target: bmc.BootTargetNone},
			wantPatch: `{"Boot":{"BootSourceOverrideEnabled":"Disabled","BootSourceOverrideTarget":"None"}}`,
		},
		{
			name: "already set", current: [2]string{"Once", "Pxe"},
			override: bmc.BootOverride{Target: bmc.BootTargetPxe, Once: true},
		},
		{
			name: "already disabled", current: [2]string{"Disabled", "Pxe"},
			override: bmc.BootOverride{},
		},
		{
			name: "mode already as requested is not rewritten", current: [2]string{"Disabled", "None"},
			override:  bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeLegacy, Once: true},
			wantPatch: `{"Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideTarget":"Pxe"}}`,
		},
		{
			name: "target not allowed", current: [2]string{"Disabled", "None"},
			override: bmc.BootOverride{Target: "Floppy", Once: true}, wantErr: bmc.ErrNotSupported,
		},
		{
			name: "same target, mode differs", current: [2]string{"Once", "Pxe"},
			override:  bmc.BootOverride{Target: bmc.BootTargetPxe, Once: true, Mode: bmc.BootModeUEFI},
			wantPatch: `{"Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideTarget":"Pxe","BootSourceOverrideMode":"UEFI"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newFakeBMC(t, map[string]http.HandlerFunc{
				"GET " + testSystem:   reply(http.StatusOK, map[string]string{"ETag": `W/"abc"`}, systemBody("Off", tt.current[0], tt.current[1])),
				"PATCH " + testSystem: reply(http.StatusNoContent, nil, nil),
			})
			err := f.client(t).SetBootOverride(t.Context(), testSystem, tt.override)
			if tt.wantErr != nil {
				g.Expect(err).To(MatchError(tt.wantErr))
			} else {
				g.Expect(err).NotTo(HaveOccurred())
			}
			expectSystemPatch(g, f, tt.wantPatch, `W/"abc"`)
		})
	}
}

func TestPatchWithoutETagSendsNoIfMatch(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem:   reply(http.StatusOK, nil, systemBody("Off", "Disabled", "None")),
		"PATCH " + testSystem: reply(http.StatusOK, nil, map[string]any{}),
	})
	g.Expect(f.client(t).SetIndicatorLED(t.Context(), testSystem, bmc.IndicatorLEDBlinking)).To(Succeed())
	patches := f.only(http.MethodPatch)
	g.Expect(patches).To(HaveLen(1))
	g.Expect(patches[0].Body).To(MatchJSON(`{"IndicatorLED":"Blinking"}`))
	g.Expect(patches[0].Header.Values("If-Match")).To(BeEmpty())
}

func TestPatchUsesODataETagWhenHeaderMissing(t *testing.T) {
	g := NewWithT(t)
	sys := systemBody("Off", "Disabled", "None")
	sys["@odata.etag"] = `"17"`
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem:   reply(http.StatusOK, nil, sys),
		"PATCH " + testSystem: reply(http.StatusNoContent, nil, nil),
	})
	g.Expect(f.client(t).SetIndicatorLED(t.Context(), testSystem, bmc.IndicatorLEDLit)).To(Succeed())
	g.Expect(f.only(http.MethodPatch)[0].Header.Get("If-Match")).To(Equal(`"17"`))
}

func TestSetIndicatorLEDSkipsWhenSameAndRejectsInvalid(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem: reply(http.StatusOK, nil, systemBody("Off", "Disabled", "None")),
	})
	c := f.client(t)
	g.Expect(c.SetIndicatorLED(t.Context(), testSystem, bmc.IndicatorLEDOff)).To(Succeed())
	g.Expect(c.SetIndicatorLED(t.Context(), testSystem, bmc.IndicatorLEDUnknown)).To(MatchError(ContainSubstring("invalid indicator LED")))
	g.Expect(f.only(http.MethodPatch)).To(BeEmpty())
}

func TestPatch412RefetchesAndRetriesOnce(t *testing.T) {
	g := NewWithT(t)
	etag := func(tag string) http.HandlerFunc {
		return reply(http.StatusOK, map[string]string{"ETag": tag}, systemBody("Off", "Disabled", "None"))
	}
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem: sequence(etag(`"1"`), etag(`"2"`)),
		"PATCH " + testSystem: sequence(
			reply(http.StatusPreconditionFailed, nil, redfishErrorBody("PreconditionFailed", "ETag mismatch")),
			reply(http.StatusNoContent, nil, nil),
		),
	})
	err := f.client(t).SetBootOverride(t.Context(), testSystem, bmc.BootOverride{Target: bmc.BootTargetPxe, Once: true})
	g.Expect(err).NotTo(HaveOccurred())

	var seq []string
	for _, r := range f.requests() {
		seq = append(seq, r.Method+" "+r.Header.Get("If-Match"))
	}
	g.Expect(seq).To(Equal([]string{`GET `, `PATCH "1"`, `GET `, `PATCH "2"`}))
}

func TestPatch412TwiceIsConflict(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem:   reply(http.StatusOK, map[string]string{"ETag": `"1"`}, systemBody("Off", "Disabled", "None")),
		"PATCH " + testSystem: reply(http.StatusPreconditionFailed, nil, redfishErrorBody("PreconditionFailed", "ETag mismatch")),
	})
	err := f.client(t).SetIndicatorLED(t.Context(), testSystem, bmc.IndicatorLEDLit)
	g.Expect(err).To(MatchError(bmc.ErrConflict))
	g.Expect(bmc.Reason(err)).To(Equal(bmc.ReasonConflict))
	g.Expect(f.count(http.MethodPatch, testSystem)).To(Equal(2))
}

func TestStatusErrorMapping(t *testing.T) {
	tests := []struct {
		status       int
		want         error // nil: no sentinel
		reason       string
		message      string
		wantAttempts int
	}{
		{http.StatusUnauthorized, bmc.ErrUnauthorized, "Unauthorized", "redfish: GET /redfish/v1/Systems/1: unauthorized (401)", 1},
		{http.StatusForbidden, bmc.ErrUnauthorized, "Unauthorized", "redfish: GET /redfish/v1/Systems/1: unauthorized (403)", 1},
		{http.StatusNotFound, bmc.ErrNotFound, "NotFound", "redfish: GET /redfish/v1/Systems/1: not found (404)", 1},
		{http.StatusMethodNotAllowed, bmc.ErrNotSupported, "NotSupported", "redfish: GET /redfish/v1/Systems/1: not supported (405)", 1},
		{http.StatusConflict, bmc.ErrConflict, "Conflict", "redfish: GET /redfish/v1/Systems/1: conflict (409)", 1},
		{http.StatusBadRequest, bmc.ErrBadRequest, "BadRequest", "redfish: GET /redfish/v1/Systems/1: bad request (400)", 1},
		{http.StatusNotImplemented, bmc.ErrNotSupported, "NotSupported", "redfish: GET /redfish/v1/Systems/1: not supported (501)", 1},
		{http.StatusServiceUnavailable, bmc.ErrUnavailable, "Unreachable", "redfish: GET /redfish/v1/Systems/1: unavailable (503)", maxGetAttempts},
		{http.StatusBadGateway, bmc.ErrUnavailable, "Unreachable", "redfish: GET /redfish/v1/Systems/1: unavailable (502)", maxGetAttempts},
		{http.StatusInternalServerError, bmc.ErrUnavailable, "Unreachable", "redfish: GET /redfish/v1/Systems/1: unavailable (500)", maxGetAttempts},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			g := NewWithT(t)
			f := newFakeBMC(t, map[string]http.HandlerFunc{
				"GET " + testSystem: reply(tt.status, nil, redfishErrorBody("X", "details from the BMC")),
			})
			_, err := f.client(t).SystemInfo(t.Context(), testSystem)
			g.Expect(err).To(HaveOccurred())
			if tt.want != nil {
				g.Expect(err).To(MatchError(tt.want))
			}
			g.Expect(bmc.Reason(err)).To(Equal(tt.reason))
			g.Expect(err.Error()).To(Equal(tt.message + ": details from the BMC"))
			var herr *HTTPError
			g.Expect(errors.As(err, &herr)).To(BeTrue())
			g.Expect(herr.StatusCode).To(Equal(tt.status))
			g.Expect(f.count(http.MethodGet, testSystem)).To(Equal(tt.wantAttempts))
		})
	}
}

func TestGETRetriesOn503ThenSucceeds(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem: sequence(
			reply(http.StatusServiceUnavailable, nil, nil),
			reply(http.StatusOK, nil, systemBody("On", "Disabled", "None")),
		),
	})
	info, err := f.client(t).SystemInfo(t.Context(), testSystem)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.PowerState).To(Equal(bmc.PowerStateOn))
	g.Expect(f.count(http.MethodGet, testSystem)).To(Equal(2))
}

func TestPOSTIsNeverRetried(t *testing.T) {
	g := NewWithT(t)
	const action = testSystem + "/Actions/Custom.Reset"
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem: reply(http.StatusOK, nil, systemBody("Off", "Disabled", "None")),
		"POST " + action:    reply(http.StatusServiceUnavailable, nil, nil),
	})
	err := f.client(t).PowerOn(t.Context(), testSystem)
	g.Expect(err).To(MatchError(bmc.ErrUnavailable))
	g.Expect(err.Error()).To(Equal("redfish: POST " + action + ": unavailable (503)"))
	g.Expect(f.count(http.MethodPost, action)).To(Equal(1))
}

func TestPATCHIsNeverRetriedOn5xx(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem:   reply(http.StatusOK, nil, systemBody("Off", "Disabled", "None")),
		"PATCH " + testSystem: reply(http.StatusBadGateway, nil, nil),
	})
	err := f.client(t).SetIndicatorLED(t.Context(), testSystem, bmc.IndicatorLEDLit)
	g.Expect(err).To(MatchError(bmc.ErrUnavailable))
	g.Expect(f.count(http.MethodPatch, testSystem)).To(Equal(1))
}

// blockUntilClientGivesUp answers only after the client has abandoned the request.
func blockUntilClientGivesUp(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

func TestTimeoutIsUnavailable(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{"GET " + testSystem: blockUntilClientGivesUp})
	c := f.client(t, func(cfg *Config) { cfg.Timeout = 100 * time.Millisecond })
	_, err := c.SystemInfo(t.Context(), testSystem)
	g.Expect(err).To(MatchError(bmc.ErrUnavailable))
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
	g.Expect(bmc.Reason(err)).To(Equal(bmc.ReasonUnreachable))
	g.Expect(err.Error()).To(Equal("redfish: GET " + testSystem + ": unavailable: no response within 100ms: context deadline exceeded"))
	// A timed-out GET is not retried: the worker waiting on it has waited long enough.
	g.Expect(f.count(http.MethodGet, testSystem)).To(Equal(1))
}

func TestCallerDeadlineIsUnavailable(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{"GET " + testSystem: blockUntilClientGivesUp})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := f.client(t).SystemInfo(ctx, testSystem)
	g.Expect(err).To(MatchError(bmc.ErrUnavailable))
	g.Expect(bmc.Reason(err)).To(Equal(bmc.ReasonUnreachable))
}

func TestCallerCancelIsNotUnavailable(t *testing.T) {
	g := NewWithT(t)
	started := make(chan struct{})
	f := newFakeBMC(t, map[string]http.HandlerFunc{"GET " + testSystem: func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	}})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started
		cancel()
	}()
	_, err := f.client(t).SystemInfo(ctx, testSystem)
	g.Expect(err).To(MatchError(context.Canceled))
	g.Expect(errors.Is(err, bmc.ErrUnavailable)).To(BeFalse())
}

func TestConnectionRefusedIsUnavailable(t *testing.T) {
	g := NewWithT(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	g.Expect(l.Close()).To(Succeed())

	c, err := New(Config{Endpoint: "http://" + addr, Username: testUser, Password: testPassword})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.SystemInfo(t.Context(), testSystem)
	g.Expect(err).To(MatchError(bmc.ErrUnavailable))
	g.Expect(bmc.Reason(err)).To(Equal(bmc.ReasonUnreachable))
	g.Expect(err.Error()).To(HavePrefix("redfish: GET " + testSystem + ": unavailable: "))
	g.Expect(err.Error()).To(ContainSubstring("connection refused"))
	g.Expect(err.Error()).NotTo(ContainSubstring(testPassword))
}

func TestTLSVerification(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, http.StatusOK, nil, systemBody("On", "Disabled", "None"))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	tests := []struct {
		name    string
		cfg     Config
		wantErr error
	}{
		{"untrusted certificate", Config{}, bmc.ErrTLS},
		{"trusted CA", Config{CACertPEM: caPEM}, nil},
		{"skip verify", Config{InsecureSkipVerify: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			cfg := tt.cfg
			cfg.Endpoint, cfg.Username, cfg.Password = srv.URL, testUser, testPassword
			c, err := New(cfg)
			g.Expect(err).NotTo(HaveOccurred())
			info, err := c.SystemInfo(t.Context(), testSystem)
			if tt.wantErr == nil {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(info.PowerState).To(Equal(bmc.PowerStateOn))
				return
			}
			g.Expect(err).To(MatchError(tt.wantErr))
			g.Expect(bmc.Reason(err)).To(Equal(bmc.ReasonTLSError))
			g.Expect(err.Error()).To(ContainSubstring("certificate"))
		})
	}
}

func TestHTTPSClientAgainstHTTPServerIsTLSError(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, nil)
	c, err := New(Config{Endpoint: strings.Replace(f.srv.URL, "http://", "https://", 1), Username: testUser, Password: testPassword})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.SystemInfo(t.Context(), testSystem)
	g.Expect(err).To(MatchError(bmc.ErrTLS))
}

// sessionRoutes serves login, one resource and logout; the resource accepts only token.
func sessionRoutes(token string) map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"POST " + pathSessions: func(w http.ResponseWriter, r *http.Request) {
			var creds map[string]string
			_ = json.NewDecoder(r.Body).Decode(&creds)
			if creds["UserName"] != testUser || creds["Password"] != testPassword {
				writeTestJSON(w, http.StatusUnauthorized, nil, redfishErrorBody("NoValidSession", "bad password "+creds["Password"]))
				return
			}
			writeTestJSON(w, http.StatusCreated, map[string]string{
				"X-Auth-Token": token, "Location": pathSessions + "/7",
			}, map[string]any{"@odata.id": pathSessions + "/7", "Id": "7"})
		},
		"GET " + testSystem: func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Auth-Token") != token {
				writeTestJSON(w, http.StatusUnauthorized, nil, redfishErrorBody("NoValidSession", "no session"))
				return
			}
			writeTestJSON(w, http.StatusOK, nil, systemBody("On", "Disabled", "None"))
		},
		"DELETE " + pathSessions + "/7": reply(http.StatusNoContent, nil, nil),
	}
}

func TestSessionLoginAndLogout(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, sessionRoutes("tok-123"))
	c := f.client(t, func(cfg *Config) { cfg.UseSessions = true })

	for range 2 {
		_, err := c.SystemInfo(t.Context(), testSystem)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(c.Logout(t.Context())).To(Succeed())
	g.Expect(c.Logout(t.Context())).To(Succeed()) // nothing left to delete

	reqs := f.requests()
	g.Expect(reqs).To(HaveLen(4))
	login := reqs[0]
	g.Expect(login.Method + " " + login.Path).To(Equal("POST " + pathSessions))
	g.Expect(login.Body).To(MatchJSON(`{"UserName":"admin","Password":"` + testPassword + `"}`))
	g.Expect(login.Header.Get("Authorization")).To(BeEmpty())
	for _, r := range reqs[1:3] {
		g.Expect(r.Method + " " + r.Path).To(Equal("GET " + testSystem))
		g.Expect(r.Header.Get("X-Auth-Token")).To(Equal("tok-123"))
		g.Expect(r.Header.Get("Authorization")).To(BeEmpty())
	}
	logout := reqs[3]
	g.Expect(logout.Method + " " + logout.Path).To(Equal("DELETE " + pathSessions + "/7"))
	g.Expect(logout.Header.Get("X-Auth-Token")).To(Equal("tok-123"))
}

func TestExpiredSessionLogsInAgainOnce(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, sessionRoutes("tok-1"))
	c := f.client(t, func(cfg *Config) { cfg.UseSessions = true })
	_, err := c.SystemInfo(t.Context(), testSystem)
	g.Expect(err).NotTo(HaveOccurred())

	// The BMC forgets the session and hands out a new token on the next login.
	for k, h := range sessionRoutes("tok-2") {
		f.route(k, h)
	}
	_, err = c.SystemInfo(t.Context(), testSystem)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.count(http.MethodPost, pathSessions)).To(Equal(2))

	var tokens []string
	for _, r := range f.only(http.MethodGet) {
		tokens = append(tokens, r.Header.Get("X-Auth-Token"))
	}
	g.Expect(tokens).To(Equal([]string{"tok-1", "tok-1", "tok-2"}))
}

func TestBasicAuthLogoutIsNoop(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, nil)
	g.Expect(f.client(t).Logout(t.Context())).To(Succeed())
	g.Expect(f.requests()).To(BeEmpty())
}

func TestPasswordNeverInErrors(t *testing.T) {
	g := NewWithT(t)
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			// A careless BMC that quotes the request's credentials back.
			msg := "rejected " + r.Header.Get("Authorization") + " " + testPassword
			writeTestJSON(w, status, nil, redfishErrorBody("X", msg))
		}
	}
	var errs []error

	for _, status := range []int{400, 401, 403, 404, 409, 500} {
		f := newFakeBMC(t, map[string]http.HandlerFunc{"GET " + testSystem: echo(status)})
		_, err := f.client(t).SystemInfo(t.Context(), testSystem)
		errs = append(errs, err)
	}
	// Login refused, with the BMC echoing the password.
	f := newFakeBMC(t, sessionRoutes("tok"))
	_, err := f.client(t, func(cfg *Config) { cfg.Password = "wrong-" + testPassword; cfg.UseSessions = true }).SystemInfo(t.Context(), testSystem)
	errs = append(errs, err)
	g.Expect(err).To(MatchError(bmc.ErrUnauthorized))
	g.Expect(err.Error()).To(HavePrefix("redfish: POST " + pathSessions + ": unauthorized (401)"))
	// Transport errors.
	_, err = f.client(t, func(cfg *Config) { cfg.Endpoint = "http://127.0.0.1:1" }).SystemInfo(t.Context(), testSystem)
	errs = append(errs, err)

	basic := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
	for _, err := range errs {
		g.Expect(err).To(HaveOccurred())
		g.Expect(err.Error()).NotTo(ContainSubstring(testPassword))
		g.Expect(err.Error()).NotTo(ContainSubstring(basic))
	}
	// Redaction keeps the error chain intact.
	g.Expect(errs[1]).To(MatchError(bmc.ErrUnauthorized))
	var herr *HTTPError
	g.Expect(errors.As(errs[1], &herr)).To(BeTrue())
}

func TestRedirectToAnotherHostIsNotFollowed(t *testing.T) {
	g := NewWithT(t)
	other := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem: reply(http.StatusOK, nil, systemBody("On", "Disabled", "None")),
	})
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.srv.URL+testSystem, http.StatusFound)
		},
	})
	_, err := f.client(t).SystemInfo(t.Context(), testSystem)
	g.Expect(err).To(HaveOccurred())
	g.Expect(other.requests()).To(BeEmpty())
}

// observation is one call of a Config.Observer.
type observation struct {
	Method string
	Code   int
}

// recordingObserver collects the observations of a Config.Observer.
type recordingObserver struct {
	mu  sync.Mutex
	obs []observation
}

func (r *recordingObserver) observe(method string, code int, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d <= 0 {
		code = -1 // shows up as a mismatch
	}
	r.obs = append(r.obs, observation{Method: method, Code: code})
}

func (r *recordingObserver) all() []observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]observation(nil), r.obs...)
}

// The observer sees every HTTP exchange, retries included, with its status code, and 0 for
// an exchange without a response; the observed client still shares the connection pool.
func TestObserverSeesEveryExchange(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem: sequence(
			reply(http.StatusServiceUnavailable, nil, nil),
			reply(http.StatusOK, nil, systemBody("Off", "Disabled", "None")),
		),
		"PATCH " + testSystem: reply(http.StatusNoContent, nil, nil),
	})
	rec := &recordingObserver{}
	c := f.client(t, func(cfg *Config) { cfg.Observer = rec.observe })
	g.Expect(c.SetIndicatorLED(t.Context(), testSystem, bmc.IndicatorLEDLit)).To(Succeed())
	g.Expect(rec.all()).To(Equal([]observation{
		{http.MethodGet, http.StatusServiceUnavailable},
		{http.MethodGet, http.StatusOK},
		{http.MethodPatch, http.StatusNoContent},
	}))

	plain := f.client(t)
	g.Expect(c.hc.Transport.(*observedTransport).next).To(BeIdenticalTo(plain.hc.Transport))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	g.Expect(l.Close()).To(Succeed())
	refused := &recordingObserver{}
	c, err = New(Config{Endpoint: "http://" + addr, Username: testUser, Password: testPassword, Observer: refused.observe})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.SystemInfo(t.Context(), testSystem)
	g.Expect(err).To(MatchError(bmc.ErrUnavailable))
	g.Expect(refused.all()).To(HaveLen(maxGetAttempts))
	g.Expect(refused.all()).To(HaveEach(observation{http.MethodGet, 0}))
}
