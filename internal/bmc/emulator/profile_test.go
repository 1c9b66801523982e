package emulator_test

import (
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

func TestParseProfile(t *testing.T) {
	tests := []struct {
		in      string
		want    emulator.Profile
		wantErr bool
	}{
		{in: "", want: emulator.ProfileGeneric},
		{in: "generic", want: emulator.ProfileGeneric},
		{in: "dell", want: emulator.ProfileDell},
		{in: "HPE", want: emulator.ProfileHPE},
		{in: "lenovo", want: emulator.ProfileLenovo},
		{in: "supermicro", want: emulator.ProfileSupermicro},
		{in: "ibm", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			g := NewWithT(t)
			got, err := emulator.ParseProfile(tt.in)
			if tt.wantErr {
				g.Expect(err).To(MatchError(ContainSubstring("unknown profile")))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

// Every profile names its resources, its manufacturer, its reset types and boot targets as
// the vendor does, and refuses a reset type it does not advertise.
func TestProfileResources(t *testing.T) {
	tests := []struct {
		profile      emulator.Profile
		system       string
		manager      string
		manufacturer string
		refusedReset bmc.ResetType
		resetStatus  int
		overrideMode bool
	}{
		{emulator.ProfileGeneric, "/redfish/v1/Systems/1", "/redfish/v1/Managers/BMC", "Metalfleet", "", http.StatusNoContent, true},
		{emulator.ProfileDell, "/redfish/v1/Systems/System.Embedded.1", "/redfish/v1/Managers/iDRAC.Embedded.1", "Dell Inc.", bmc.ResetForceOn, http.StatusAccepted, true},
		{emulator.ProfileHPE, "/redfish/v1/Systems/1", "/redfish/v1/Managers/1", "HPE", bmc.ResetGracefulShutdown, http.StatusOK, false},
		{emulator.ProfileLenovo, "/redfish/v1/Systems/1", "/redfish/v1/Managers/1", "Lenovo", bmc.ResetOn, http.StatusNoContent, true},
		{emulator.ProfileSupermicro, "/redfish/v1/Systems/1", "/redfish/v1/Managers/1", "Supermicro", bmc.ResetPushPowerButton, http.StatusNoContent, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.profile), func(t *testing.T) {
			g := NewWithT(t)
			e := emulator.New(emulator.Options{Profile: tt.profile})
			h := e.Handler()
			g.Expect(tt.profile.Manufacturer()).To(Equal(tt.manufacturer))
			g.Expect(e.Systems()[0].URI).To(Equal(tt.system))

			sys := call(t, h, "GET", tt.system, "", nil, true)
			g.Expect(sys.status).To(Equal(http.StatusOK))
			g.Expect(sys.body).To(HaveKeyWithValue("Manufacturer", tt.manufacturer))
			g.Expect(sys.body["Links"]).To(HaveKeyWithValue("ManagedBy", ConsistOf(HaveKeyWithValue("@odata.id", tt.manager))))
			boot := sys.body["Boot"].(map[string]any)
			g.Expect(boot).To(HaveKeyWithValue("BootSourceOverrideTarget@Redfish.AllowableValues", ContainElements("None", "Pxe", "Hdd")))
			if tt.overrideMode {
				g.Expect(boot).To(HaveKey("BootSourceOverrideMode"))
			} else {
				g.Expect(boot).NotTo(HaveKey("BootSourceOverrideMode"))
			}
			action := sys.body["Actions"].(map[string]any)["#ComputerSystem.Reset"].(map[string]any)
			allowed := action["ResetType@Redfish.AllowableValues"]
			g.Expect(allowed).To(ContainElement(string(bmc.ResetForceOff)))

			managers := call(t, h, "GET", "/redfish/v1/Managers", "", nil, true)
			g.Expect(managers.body["Members"]).To(ConsistOf(HaveKeyWithValue("@odata.id", tt.manager)))
			mgr := call(t, h, "GET", tt.manager, "", nil, true)
			g.Expect(mgr.status).To(Equal(http.StatusOK))
			if tt.profile == emulator.ProfileHPE {
				g.Expect(mgr.body).NotTo(HaveKey("PowerState"), "iLO's manager has no power state")
			} else {
				g.Expect(mgr.body).To(HaveKeyWithValue("PowerState", "On"))
			}
			g.Expect(mgr.body["Actions"]).To(HaveKeyWithValue("#Manager.Reset", HaveKeyWithValue("target", tt.manager+"/Actions/Manager.Reset")))
			g.Expect(call(t, h, "POST", tt.manager+"/Actions/Manager.Reset", `{"ResetType":"GracefulRestart"}`, nil, true).status).
				To(Equal(http.StatusNoContent))
			force := call(t, h, "POST", tt.manager+"/Actions/Manager.Reset", `{"ResetType":"ForceRestart"}`, nil, true).status
			if tt.profile == emulator.ProfileDell {
				g.Expect(force).To(Equal(http.StatusBadRequest), "iDRAC restarts gracefully only")
			} else {
				g.Expect(force).To(Equal(http.StatusNoContent))
			}

			if tt.refusedReset != "" {
				g.Expect(allowed).NotTo(ContainElement(string(tt.refusedReset)))
				r := call(t, h, "POST", tt.system+"/Actions/ComputerSystem.Reset", `{"ResetType":"`+string(tt.refusedReset)+`"}`, nil, true)
				g.Expect(r.status).To(Equal(http.StatusBadRequest))
				g.Expect(messageID(r)).To(HaveSuffix("ActionParameterValueNotInList"))
			}
			r := call(t, h, "POST", tt.system+"/Actions/ComputerSystem.Reset", `{"ResetType":"ForceOff"}`, nil, true)
			g.Expect(r.status).To(Equal(tt.resetStatus))
		})
	}
}

// The dell profile answers a reset with 202 Accepted and a job as the task monitor: 202 while
// the power transition runs, 200 Completed once it ended.
func TestProfileDellJob(t *testing.T) {
	g := NewWithT(t)
	e := emulator.New(emulator.Options{Profile: emulator.ProfileDell, PowerDelay: 300 * time.Millisecond})
	h := e.Handler()
	sys := e.Systems()[0]

	r := call(t, h, "POST", sys.URI+"/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`, nil, true)
	g.Expect(r.status).To(Equal(http.StatusAccepted))
	monitor := r.header.Get("Location")
	g.Expect(monitor).To(MatchRegexp(`^/redfish/v1/Managers/iDRAC\.Embedded\.1/Jobs/JID_\d+$`))
	g.Expect(e.JobCount()).To(Equal(1))

	running := call(t, h, "GET", monitor, "", nil, true)
	g.Expect(running.status).To(Equal(http.StatusAccepted))
	g.Expect(running.body).To(HaveKeyWithValue("TaskState", "Running"))
	g.Eventually(func(g Gomega) {
		done := call(t, h, "GET", monitor, "", nil, true)
		g.Expect(done.status).To(Equal(http.StatusOK))
		g.Expect(done.body).To(HaveKeyWithValue("TaskState", "Completed"))
	}).WithTimeout(5 * time.Second).WithPolling(20 * time.Millisecond).Should(Succeed())
	g.Expect(e.PowerState(sys.UUID)).To(Equal(bmc.PowerStateOn))
	g.Expect(call(t, h, "GET", "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs/JID_999", "", nil, true).status).To(Equal(http.StatusNotFound))
}

// The hpe profile refuses a PATCH without If-Match (428) or with a stale ETag (412), and any
// BootSourceOverrideMode.
func TestProfileHPEIfMatch(t *testing.T) {
	g := NewWithT(t)
	e := emulator.New(emulator.Options{Profile: emulator.ProfileHPE})
	h := e.Handler()
	sys := e.Systems()[0]
	pxe := `{"Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideTarget":"Pxe"}}`

	none := call(t, h, "PATCH", sys.URI, pxe, nil, true)
	g.Expect(none.status).To(Equal(http.StatusPreconditionRequired))
	g.Expect(messageID(none)).To(HaveSuffix("PreconditionRequired"))
	stale := call(t, h, "PATCH", sys.URI, pxe, map[string]string{"If-Match": `"0"`}, true)
	g.Expect(stale.status).To(Equal(http.StatusPreconditionFailed))
	g.Expect(e.BootOverride(sys.UUID).Target).To(Equal(bmc.BootTargetNone))

	got := call(t, h, "GET", sys.URI, "", nil, true)
	etag := got.header.Get("ETag")
	g.Expect(etag).To(MatchRegexp(`^W/"\d+"$`), "iLO's ETags are weak")
	g.Expect(got.body).To(HaveKeyWithValue("@odata.etag", etag))
	withMode := call(t, h, "PATCH", sys.URI,
		`{"Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideTarget":"Pxe","BootSourceOverrideMode":"UEFI"}}`,
		map[string]string{"If-Match": etag}, true)
	g.Expect(withMode.status).To(Equal(http.StatusBadRequest))
	g.Expect(messageID(withMode)).To(HaveSuffix("PropertyUnknown"))

	ok := call(t, h, "PATCH", sys.URI, pxe, map[string]string{"If-Match": etag}, true)
	g.Expect(ok.status).To(Equal(http.StatusOK))
	g.Expect(e.BootOverride(sys.UUID)).To(HaveField("Target", bmc.BootTargetPxe))

	reset := call(t, h, "POST", sys.URI+"/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`, nil, true)
	g.Expect(reset.status).To(Equal(http.StatusOK))
	g.Expect(messageID(reset)).To(Equal("Base.1.4.Success"))
}

// The supermicro profile sets the override mode back to Legacy unless the PATCH of the
// target carries it.
func TestProfileSupermicroForgetsMode(t *testing.T) {
	g := NewWithT(t)
	e := emulator.New(emulator.Options{Profile: emulator.ProfileSupermicro})
	h := e.Handler()
	sys := e.Systems()[0]
	g.Expect(e.BootOverride(sys.UUID).Mode).To(Equal(bmc.BootModeUEFI))

	r := call(t, h, "PATCH", sys.URI, `{"Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideTarget":"Pxe"}}`, nil, true)
	g.Expect(r.status).To(Equal(http.StatusOK))
	g.Expect(e.BootOverride(sys.UUID)).To(Equal(bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeLegacy, Once: true}))

	r = call(t, h, "PATCH", sys.URI, `{"Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideTarget":"Pxe","BootSourceOverrideMode":"UEFI"}}`, nil, true)
	g.Expect(r.status).To(Equal(http.StatusOK))
	g.Expect(e.BootOverride(sys.UUID)).To(Equal(bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeUEFI, Once: true}))
	g.Expect(e.SetPowerState(sys.UUID, bmc.PowerStateOn)).To(BeTrue())
	g.Expect(e.BootHistory(sys.UUID)).To(ConsistOf(HaveField("Mode", bmc.BootModeUEFI)))

	// The generic profile keeps the mode when the PATCH leaves it out.
	gen := emulator.New(emulator.Options{})
	gsys := gen.Systems()[0]
	r = call(t, gen.Handler(), "PATCH", gsys.URI, `{"Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideTarget":"Pxe"}}`, nil, true)
	g.Expect(r.status).To(Equal(http.StatusOK))
	g.Expect(gen.BootOverride(gsys.UUID).Mode).To(Equal(bmc.BootModeUEFI))
}
