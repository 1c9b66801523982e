package emulator

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

func newTestSystem(power bmc.PowerState) *system {
	return &system{power: power, version: 1, bootEnabled: overrideDisabled, bootTarget: "None", bootMode: "UEFI"}
}

func TestResetTransitions(t *testing.T) {
	const d = time.Second
	const (
		on  = bmc.PowerStateOn
		off = bmc.PowerStateOff
		pOn = bmc.PowerStatePoweringOn
		pOf = bmc.PowerStatePoweringOff
	)
	tests := []struct {
		from       bmc.PowerState
		reset      bmc.ResetType
		ignore     bool
		during     bmc.PowerState // right after the reset
		after      bmc.PowerState // once the delay has passed
		wantBoots  int
		transition bool // whether a transition runs (a second reset would conflict)
	}{
		{off, bmc.ResetOn, false, pOn, on, 1, true},
		{off, bmc.ResetForceOn, false, pOn, on, 1, true},
		{on, bmc.ResetOn, false, on, on, 0, false},
		{on, bmc.ResetForceOff, false, pOf, off, 0, true},
		{off, bmc.ResetForceOff, false, off, off, 0, false},
		{on, bmc.ResetGracefulShutdown, false, pOf, off, 0, true},
		{on, bmc.ResetGracefulShutdown, true, on, on, 0, false},
		{on, bmc.ResetForceOff, true, pOf, off, 0, true},
		{on, bmc.ResetPushPowerButton, false, pOf, off, 0, true},
		{off, bmc.ResetPushPowerButton, false, pOn, on, 1, true},
		{on, bmc.ResetPushPowerButton, true, on, on, 0, false},
		{on, bmc.ResetForceRestart, false, off, on, 1, true},
		{on, bmc.ResetPowerCycle, false, off, on, 1, true},
		{on, bmc.ResetGracefulRestart, false, off, on, 1, true},
		{on, bmc.ResetGracefulRestart, true, on, on, 0, false},
		{off, bmc.ResetPowerCycle, false, pOn, on, 1, true},
		{on, bmc.ResetNmi, false, on, on, 0, false},
		{bmc.PowerStatePaused, bmc.ResetForceOff, false, pOf, off, 0, true},
	}
	for _, tt := range tests {
		name := string(tt.from) + "/" + string(tt.reset)
		if tt.ignore {
			name += "/ignoring"
		}
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			s := newTestSystem(tt.from)
			s.ignoreGraceful = tt.ignore

			g.Expect(s.reset(tt.reset, now, d)).To(Succeed())
			g.Expect(s.power).To(Equal(tt.during))
			g.Expect(s.resets[tt.reset]).To(Equal(1))
			if tt.transition {
				g.Expect(s.reset(bmc.ResetForceOff, now.Add(d/2), d)).To(MatchError(errTransition))
				s.advance(now.Add(d / 2))
				g.Expect(s.power).To(Equal(tt.during), "still transitioning before the delay")
			}
			s.advance(now.Add(d))
			g.Expect(s.power).To(Equal(tt.after))
			g.Expect(s.transitioning()).To(BeFalse())
			g.Expect(s.history).To(HaveLen(tt.wantBoots))
			if tt.wantBoots > 0 {
				g.Expect(s.history[0].At).To(Equal(now.Add(d)), "the boot happens when the transition ends, not when observed")
			}
		})
	}
}

func TestImmediateTransitionsWithoutDelay(t *testing.T) {
	g := NewWithT(t)
	now := time.Now()
	s := newTestSystem(bmc.PowerStateOff)
	g.Expect(s.reset(bmc.ResetOn, now, 0)).To(Succeed())
	g.Expect(s.power).To(Equal(bmc.PowerStateOn))
	g.Expect(s.reset(bmc.ResetPowerCycle, now, 0)).To(Succeed())
	g.Expect(s.power).To(Equal(bmc.PowerStateOn))
	g.Expect(s.history).To(HaveLen(2))
}

func TestOneTimeOverrideIsConsumedByTheNextBoot(t *testing.T) {
	g := NewWithT(t)
	now := time.Now()
	s := newTestSystem(bmc.PowerStateOff)
	s.bootEnabled, s.bootTarget = overrideOnce, "Pxe"
	v := s.version

	g.Expect(s.reset(bmc.ResetOn, now, 0)).To(Succeed())
	g.Expect(s.bootEnabled).To(Equal(overrideDisabled))
	g.Expect(s.bootTarget).To(Equal("None"))
	g.Expect(s.version).To(BeNumerically(">", v), "the ETag changes")

	g.Expect(s.reset(bmc.ResetForceRestart, now, 0)).To(Succeed())
	s.bootEnabled, s.bootTarget = overrideContinuous, "UefiHttp"
	g.Expect(s.reset(bmc.ResetForceRestart, now, 0)).To(Succeed())
	g.Expect(s.reset(bmc.ResetForceRestart, now, 0)).To(Succeed())
	g.Expect(s.bootEnabled).To(Equal(overrideContinuous), "a continuous override stays")

	var targets []bmc.BootTarget
	for _, b := range s.history {
		targets = append(targets, b.Target)
	}
	g.Expect(targets).To(Equal([]bmc.BootTarget{"Pxe", "Hdd", "UefiHttp", "UefiHttp"}))
}

func TestBootHistoryIsBounded(t *testing.T) {
	g := NewWithT(t)
	now := time.Now()
	s := newTestSystem(bmc.PowerStateOn)
	for range maxBootHistory + 10 {
		g.Expect(s.reset(bmc.ResetPowerCycle, now, 0)).To(Succeed())
	}
	g.Expect(s.history).To(HaveLen(maxBootHistory))
}

func TestDerivedIdentities(t *testing.T) {
	g := NewWithT(t)
	canonical := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

	a := New(Options{Systems: 10000, UUIDSeed: "rack-1"})
	b := New(Options{Systems: 3, UUIDSeed: "rack-1"})
	c := New(Options{Systems: 3, UUIDSeed: "rack-2"})

	g.Expect(b.Systems()).To(Equal(a.Systems()[:3]), "same seed, same identities")
	g.Expect(c.Systems()[0].UUID).NotTo(Equal(a.Systems()[0].UUID))
	g.Expect(a.ManagerUUID()).To(Equal(b.ManagerUUID()))
	g.Expect(a.ManagerUUID()).NotTo(Equal(c.ManagerUUID()))

	uuids := map[string]bool{}
	serials := map[string]bool{}
	macs := map[string]bool{}
	for i, s := range a.Systems() {
		g.Expect(s.UUID).To(MatchRegexp(canonical.String()))
		g.Expect(s.URI).To(Equal("/redfish/v1/Systems/" + strconv.Itoa(i+1)))
		sys := a.lookup(s.UUID)
		uuids[s.UUID], serials[sys.serial], macs[sys.mac] = true, true, true
	}
	g.Expect(uuids).To(HaveLen(10000))
	g.Expect(serials).To(HaveLen(10000))
	g.Expect(macs).To(HaveLen(10000))

	g.Expect(New(Options{}).Systems()).To(HaveLen(1))
	g.Expect(New(Options{Systems: -1}).Systems()).To(BeEmpty())
	g.Expect(New(Options{}).Systems()[0].UUID).NotTo(Equal(New(Options{}).Systems()[0].UUID), "random seed by default")
}
