package redfish_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/bmc/redfish"
)

const (
	profileUser     = "admin"
	profilePassword = "vendor-Pa55word"
)

// startProfile serves an emulator with the profile over real HTTP.
func startProfile(t *testing.T, opts emulator.Options) *emulator.Emulator {
	t.Helper()
	opts.Username, opts.Password = profileUser, profilePassword
	if opts.PowerDelay == 0 {
		opts.PowerDelay = 20 * time.Millisecond
	}
	em, err := emulator.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(em.Close)
	return em
}

// methodCounter counts the client's HTTP exchanges by method and status code.
type methodCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *methodCounter) observe(method string, code int, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[method]++
	m.n[method+" "+http.StatusText(code)]++
}

func (m *methodCounter) get(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[key]
}

func profileClient(t *testing.T, em *emulator.Emulator, observe func(string, int, time.Duration)) *redfish.Client {
	t.Helper()
	c, err := redfish.New(redfish.Config{Endpoint: em.URL(), Username: profileUser, Password: profilePassword, Observer: observe})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The client drives every vendor profile through what the operator does with a server:
// discover the system and the manager (ids not assumed), set the one-time UEFI network boot,
// power on with the reset type the service allows, boot from the network in UEFI mode, shut
// down, reset the BMC.
func TestClientAgainstEveryProfile(t *testing.T) {
	tests := []struct {
		profile   emulator.Profile
		systemURI string
		on, off   bmc.ResetType
	}{
		{emulator.ProfileGeneric, "/redfish/v1/Systems/1", bmc.ResetOn, bmc.ResetGracefulShutdown},
		{emulator.ProfileDell, "/redfish/v1/Systems/System.Embedded.1", bmc.ResetOn, bmc.ResetGracefulShutdown},
		{emulator.ProfileHPE, "/redfish/v1/Systems/1", bmc.ResetOn, bmc.ResetPushPowerButton},
		{emulator.ProfileLenovo, "/redfish/v1/Systems/1", bmc.ResetForceOn, bmc.ResetGracefulShutdown},
		{emulator.ProfileSupermicro, "/redfish/v1/Systems/1", bmc.ResetOn, bmc.ResetGracefulShutdown},
	}
	g := NewWithT(t)
	g.Expect(tests).To(HaveLen(len(emulator.Profiles)), "every profile has a case")
	for _, tt := range tests {
		t.Run(string(tt.profile), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			em := startProfile(t, emulator.Options{Profile: tt.profile})
			var calls methodCounter
			c := profileClient(t, em, calls.observe)
			ctx := t.Context()

			systems, err := c.Systems(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(systems).To(HaveLen(1))
			g.Expect(systems[0].URI).To(Equal(tt.systemURI))
			uri, uuid := systems[0].URI, systems[0].UUID
			info, err := c.SystemInfo(ctx, uri)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(info.Manufacturer).To(Equal(tt.profile.Manufacturer()))
			mgr, err := c.Manager(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(mgr.Manufacturer).To(Equal(tt.profile.Manufacturer()))
			g.Expect(mgr.MACAddress).NotTo(BeEmpty())

			g.Expect(c.SetBootOverride(ctx, uri, bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeUEFI, Once: true})).To(Succeed())
			g.Expect(em.BootOverride(uuid)).To(Equal(bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeUEFI, Once: true}))
			g.Expect(calls.get("PATCH")).To(Equal(1), "one PATCH sets the override")

			g.Expect(c.PowerOn(ctx, uri)).To(Succeed())
			g.Eventually(func() bmc.PowerState { return em.PowerState(uuid) }).Should(Equal(bmc.PowerStateOn))
			g.Expect(em.ResetCount(uuid, tt.on)).To(Equal(1))
			g.Expect(em.BootHistory(uuid)).To(ConsistOf(And(
				HaveField("Target", bmc.BootTargetPxe), HaveField("Mode", bmc.BootModeUEFI))))
			g.Expect(c.PowerOn(ctx, uri)).To(Succeed(), "on already: nothing sent")
			g.Expect(em.ResetCount(uuid, tt.on)).To(Equal(1))

			g.Expect(c.PowerOff(ctx, uri)).To(Succeed())
			g.Eventually(func() bmc.PowerState { return em.PowerState(uuid) }).Should(Equal(bmc.PowerStateOff))
			g.Expect(em.ResetCount(uuid, tt.off)).To(Equal(1))
			g.Expect(c.ForcePowerOff(ctx, uri)).To(Succeed(), "off already: nothing sent")

			g.Expect(c.ResetManager(ctx, bmc.ResetGracefulRestart)).To(Succeed())
			g.Expect(em.ManagerResetCount()).To(Equal(1))
			g.Expect(calls.get("POST Bad Request")).To(BeZero(), "no request the service refuses")
			g.Expect(calls.get("PATCH Precondition Required")).To(BeZero())
		})
	}
}

// The hpe profile refuses a PATCH without If-Match; the client sends the ETag it read and
// gets through, also when the ETag went stale between its read and its PATCH.
func TestClientIfMatchRequired(t *testing.T) {
	g := NewWithT(t)
	em := startProfile(t, emulator.Options{Profile: emulator.ProfileHPE})
	sys := em.Systems()[0]

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, em.URL()+sys.URI, strings.NewReader(`{"IndicatorLED":"Lit"}`))
	g.Expect(err).NotTo(HaveOccurred())
	req.SetBasicAuth(profileUser, profilePassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusPreconditionRequired))
	g.Expect(em.IndicatorLED(sys.UUID)).To(Equal(bmc.IndicatorLEDOff))

	var calls methodCounter
	c := profileClient(t, em, calls.observe)
	g.Expect(c.SetIndicatorLED(t.Context(), sys.URI, bmc.IndicatorLEDLit)).To(Succeed())
	g.Expect(em.IndicatorLED(sys.UUID)).To(Equal(bmc.IndicatorLEDLit))
	g.Expect(c.SetBootOrder(t.Context(), sys.URI, []string{"Boot0000", "Boot0001"})).To(Succeed())
	g.Expect(em.BootOrder(sys.UUID)).To(Equal([]string{"Boot0000", "Boot0001"}))
	g.Expect(calls.get("PATCH Precondition Required")).To(BeZero())
	g.Expect(calls.get("PATCH OK")).To(Equal(2))
}

// A service that forgets the override mode unless the PATCH carries it is handled by name
// (Supermicro: the mode goes with the target, one PATCH) and, under any other name, by
// reading the override back (a second PATCH with the mode).
func TestClientForgottenOverrideMode(t *testing.T) {
	for _, tt := range []struct {
		manufacturer string
		patches      int
	}{
		{redfish.ManufacturerSupermicro, 1},
		{"Acme Servers", 2},
	} {
		t.Run(tt.manufacturer, func(t *testing.T) {
			g := NewWithT(t)
			em := startProfile(t, emulator.Options{Profile: emulator.ProfileSupermicro, Manufacturer: tt.manufacturer})
			sys := em.Systems()[0]
			var calls methodCounter
			c := profileClient(t, em, calls.observe)
			g.Expect(c.SetBootOverride(t.Context(), sys.URI, bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeUEFI, Once: true})).To(Succeed())
			g.Expect(em.BootOverride(sys.UUID)).To(Equal(bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeUEFI, Once: true}))
			g.Expect(calls.get("PATCH")).To(Equal(tt.patches))
		})
	}
}

// An explicit reset the service does not allow gets its equivalent: ForceOn is On on an
// iDRAC, On is ForceOn on the lenovo profile; one without an equivalent is refused unsent.
func TestClientResetEquivalents(t *testing.T) {
	for _, tt := range []struct {
		profile             emulator.Profile
		asked, got, refused bmc.ResetType
	}{
		{emulator.ProfileDell, bmc.ResetForceOn, bmc.ResetOn, ""},
		{emulator.ProfileLenovo, bmc.ResetOn, bmc.ResetForceOn, bmc.ResetPowerCycle},
	} {
		t.Run(string(tt.profile), func(t *testing.T) {
			g := NewWithT(t)
			em := startProfile(t, emulator.Options{Profile: tt.profile})
			sys := em.Systems()[0]
			var calls methodCounter
			c := profileClient(t, em, calls.observe)
			g.Expect(c.Reset(t.Context(), sys.URI, tt.asked)).To(Succeed())
			g.Eventually(func() bmc.PowerState { return em.PowerState(sys.UUID) }).Should(Equal(bmc.PowerStateOn))
			g.Expect(em.ResetCount(sys.UUID, tt.got)).To(Equal(1))
			if tt.refused != "" {
				g.Expect(c.Reset(t.Context(), sys.URI, tt.refused)).To(MatchError(bmc.ErrNotSupported))
			}
			g.Expect(calls.get("POST")).To(Equal(1), "one reset sent")
		})
	}
}
