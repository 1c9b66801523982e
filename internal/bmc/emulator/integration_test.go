package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/bmc/redfish"
)

const (
	pollInterval = 5 * time.Millisecond
	pollTimeout  = 5 * time.Second
)

// startEmulator starts an emulator for the test and returns it with a client for it.
func startEmulator(t *testing.T, opts emulator.Options, mutate ...func(*redfish.Config)) (*emulator.Emulator, *redfish.Client) {
	t.Helper()
	e, err := emulator.Start(opts)
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(e.Close)
	return e, newClient(t, e, mutate...)
}

func newClient(t *testing.T, e *emulator.Emulator, mutate ...func(*redfish.Config)) *redfish.Client {
	t.Helper()
	cfg := redfish.Config{
		Endpoint: e.URL(),
		Username: emulator.DefaultUsername,
		Password: emulator.DefaultPassword,
		Timeout:  5 * time.Second,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := redfish.New(cfg)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

// powerOf reads the power state through the client.
func powerOf(ctx context.Context, c *redfish.Client, uri string) func() (bmc.PowerState, error) {
	return func() (bmc.PowerState, error) {
		info, err := c.SystemInfo(ctx, uri)
		return info.PowerState, err
	}
}

func TestPowerCycles(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{PowerDelay: 50 * time.Millisecond, UUIDSeed: "power"})
	ctx := t.Context()
	sys := e.Systems()[0]
	eventually := func(want bmc.PowerState) {
		t.Helper()
		g.Eventually(powerOf(ctx, c, sys.URI)).WithTimeout(pollTimeout).WithPolling(pollInterval).Should(Equal(want))
	}

	g.Expect(powerOf(ctx, c, sys.URI)()).To(Equal(bmc.PowerStateOff))
	g.Expect(c.PowerOn(ctx, sys.URI)).To(Succeed())
	g.Expect(powerOf(ctx, c, sys.URI)()).To(Equal(bmc.PowerStatePoweringOn))
	g.Expect(c.PowerOn(ctx, sys.URI)).To(Succeed(), "PoweringOn: nothing to do")
	eventually(bmc.PowerStateOn)
	g.Expect(c.PowerOn(ctx, sys.URI)).To(Succeed(), "On: nothing to do")
	g.Expect(e.ResetCount(sys.UUID, bmc.ResetOn)).To(Equal(1))

	g.Expect(c.PowerOff(ctx, sys.URI)).To(Succeed())
	g.Expect(powerOf(ctx, c, sys.URI)()).To(Equal(bmc.PowerStatePoweringOff))
	eventually(bmc.PowerStateOff)
	g.Expect(e.ResetCount(sys.UUID, bmc.ResetGracefulShutdown)).To(Equal(1))

	g.Expect(c.PowerOn(ctx, sys.URI)).To(Succeed())
	eventually(bmc.PowerStateOn)
	g.Expect(c.ForcePowerOff(ctx, sys.URI)).To(Succeed())
	eventually(bmc.PowerStateOff)
	g.Expect(c.ForcePowerOff(ctx, sys.URI)).To(Succeed(), "Off: nothing to do")
	g.Expect(e.ResetCount(sys.UUID, bmc.ResetForceOff)).To(Equal(1))

	g.Expect(c.PowerOn(ctx, sys.URI)).To(Succeed())
	eventually(bmc.PowerStateOn)
	g.Expect(c.Reset(ctx, sys.URI, bmc.ResetForceRestart)).To(Succeed())
	g.Expect(powerOf(ctx, c, sys.URI)()).To(Equal(bmc.PowerStateOff), "a restart goes through Off")
	eventually(bmc.PowerStateOn)
	g.Expect(c.Reset(ctx, sys.URI, bmc.ResetPowerCycle)).To(Succeed())
	eventually(bmc.PowerStateOn)
	g.Expect(e.BootHistory(sys.UUID)).To(HaveLen(5), "every power-on and restart is a boot")
}

func TestResetDuringTransitionIsConflict(t *testing.T) {
	g := NewWithT(t)
	// The transition outlasts the test; SetPowerState ends it.
	e, c := startEmulator(t, emulator.Options{PowerDelay: time.Hour})
	ctx := t.Context()
	sys := e.Systems()[0]

	g.Expect(c.PowerOn(ctx, sys.URI)).To(Succeed())
	err := c.ForcePowerOff(ctx, sys.URI)
	g.Expect(err).To(MatchError(bmc.ErrConflict))
	g.Expect(bmc.Reason(err)).To(Equal(bmc.ReasonConflict))
	g.Expect(err.Error()).To(HavePrefix("redfish: POST " + sys.URI + "/Actions/ComputerSystem.Reset: conflict (409)"))
	g.Expect(e.ResetCount(sys.UUID, bmc.ResetForceOff)).To(Equal(0))

	g.Expect(e.SetPowerState(sys.UUID, bmc.PowerStateOn)).To(BeTrue())
	g.Expect(c.ForcePowerOff(ctx, sys.URI)).To(Succeed())
}

func TestOneTimeBootOverride(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{PowerDelay: 10 * time.Millisecond})
	ctx := t.Context()
	sys := e.Systems()[0]
	eventually := func(want bmc.PowerState) {
		t.Helper()
		g.Eventually(powerOf(ctx, c, sys.URI)).WithTimeout(pollTimeout).WithPolling(pollInterval).Should(Equal(want))
	}

	pxeOnce := bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeUEFI, Once: true}
	g.Expect(c.SetBootOverride(ctx, sys.URI, pxeOnce)).To(Succeed())
	g.Expect(e.BootOverride(sys.UUID)).To(Equal(pxeOnce))
	info, err := c.SystemInfo(ctx, sys.URI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.BootOverride).To(Equal(pxeOnce))

	g.Expect(c.PowerOn(ctx, sys.URI)).To(Succeed())
	eventually(bmc.PowerStateOn)
	info, err = c.SystemInfo(ctx, sys.URI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.BootOverride).To(Equal(bmc.BootOverride{Target: bmc.BootTargetNone, Mode: bmc.BootModeUEFI}), "consumed")

	g.Expect(c.ForcePowerOff(ctx, sys.URI)).To(Succeed())
	eventually(bmc.PowerStateOff)
	g.Expect(c.PowerOn(ctx, sys.URI)).To(Succeed())
	eventually(bmc.PowerStateOn)

	history := e.BootHistory(sys.UUID)
	g.Expect(history).To(HaveLen(2))
	g.Expect(history[0].Target).To(Equal(bmc.BootTargetPxe))
	g.Expect(history[1].Target).To(Equal(bmc.BootTargetHdd))
	g.Expect(history[1].At).To(BeTemporally(">", history[0].At))
}

func TestIndicatorLEDAndETags(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{})
	sys := e.Systems()[0]
	g.Expect(c.SetIndicatorLED(t.Context(), sys.URI, bmc.IndicatorLEDBlinking)).To(Succeed())
	g.Expect(e.IndicatorLED(sys.UUID)).To(Equal(bmc.IndicatorLEDBlinking))
	info, err := c.SystemInfo(t.Context(), sys.URI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.IndicatorLED).To(Equal(bmc.IndicatorLEDBlinking))
}

// The client reads the boot order with the system and replaces it; a reference the system
// does not have is refused with the BMC's message; a system boots from the first entry.
func TestBootOrder(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{})
	ctx := t.Context()
	sys := e.Systems()[0]
	bootOrder := func() ([]string, error) {
		info, err := c.SystemInfo(ctx, sys.URI)
		return info.BootOrder, err
	}

	g.Expect(bootOrder()).To(Equal([]string{"Boot0001", "Boot0000", "Boot0002", "Boot0003"}))
	want := []string{"Boot0000", "Boot0002", "Boot0001", "Boot0003"}
	g.Expect(c.SetBootOrder(ctx, sys.URI, want)).To(Succeed())
	g.Expect(e.BootOrder(sys.UUID)).To(Equal(want))
	g.Expect(bootOrder()).To(Equal(want))
	requests := e.RequestCount()
	g.Expect(c.SetBootOrder(ctx, sys.URI, want)).To(Succeed())
	g.Expect(e.RequestCount()-requests).To(Equal(int64(1)), "already in that order: one GET, no PATCH")

	err := c.SetBootOrder(ctx, sys.URI, []string{"Boot0000", "Boot0042"})
	g.Expect(err).To(MatchError(bmc.ErrBadRequest))
	g.Expect(err.Error()).To(ContainSubstring(`The value "Boot0042" for the property BootOrder is not in the list of acceptable values.`))
	g.Expect(e.BootOrder(sys.UUID)).To(Equal(want), "a refused order changes nothing")

	g.Expect(e.SetBootOrder(sys.UUID, []string{"Boot0001"})).To(BeTrue())
	g.Expect(bootOrder()).To(Equal([]string{"Boot0001"}), "a change made at the BMC is visible")

	g.Expect(c.SetBootOrder(ctx, sys.URI, want)).To(Succeed())
	g.Expect(c.PowerOn(ctx, sys.URI)).To(Succeed())
	g.Expect(e.BootHistory(sys.UUID)).To(ConsistOf(HaveField("Target", bmc.BootTargetPxe)), "Boot0000 is the PXE option")
}

func TestInventory(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{Systems: 3, UUIDSeed: "inventory", Manufacturer: "Acme", Model: "R1"})
	ctx := t.Context()

	systems, err := c.Systems(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(systems).To(Equal(e.Systems()))
	g.Expect(systems).To(HaveLen(3))

	serials := map[string]bool{}
	macs := map[string]bool{}
	for _, s := range systems {
		info, err := c.SystemInfo(ctx, s.URI)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(info.UUID).To(Equal(s.UUID))
		g.Expect(info.Manufacturer).To(Equal("Acme"))
		g.Expect(info.Model).To(Equal("R1"))
		g.Expect(info.SKU).NotTo(BeEmpty())
		g.Expect(info.BIOSVersion).NotTo(BeEmpty())
		g.Expect(info.PowerState).To(Equal(bmc.PowerStateOff))
		g.Expect(info.IndicatorLED).To(Equal(bmc.IndicatorLEDOff))
		g.Expect(info.TotalMemoryBytes).To(Equal(int64(128) << 30))
		g.Expect(info.BootOverride.Disabled()).To(BeTrue())
		serials[info.SerialNumber] = true

		procs, err := c.Processors(ctx, s.URI)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(procs).To(HaveLen(2))
		g.Expect(procs[0].ID).To(Equal("CPU1"))
		g.Expect(procs[0].Architecture).To(Equal("x86"))
		g.Expect(procs[0].TotalCores).To(BeNumerically(">", 0))

		mem, err := c.Memory(ctx, s.URI)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(mem).To(HaveLen(4), "the empty slot is left out")
		var total int64
		for _, m := range mem {
			total += m.CapacityMiB
			g.Expect(m.MemoryDeviceType).To(Equal("DDR4"))
		}
		g.Expect(total << 20).To(Equal(info.TotalMemoryBytes))

		nics, err := c.NICs(ctx, s.URI)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(nics).To(HaveLen(1))
		g.Expect(nics[0].MACAddress).To(MatchRegexp(`^02(:[0-9a-f]{2}){5}$`))
		g.Expect(nics[0].IPv4).To(HaveLen(1))
		g.Expect(nics[0].LinkStatus).To(Equal("LinkDown"), "powered off")
		macs[nics[0].MACAddress] = true

		storage, err := c.Storage(ctx, s.URI)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(storage).To(HaveLen(1))
		g.Expect(storage[0].Drives).To(HaveLen(2))
		g.Expect(storage[0].Drives[0].CapacityBytes).To(BeNumerically(">", 0))
		g.Expect(storage[0].Drives[0].MediaType).To(Equal("SSD"))
		g.Expect(storage[0].Volumes).To(HaveLen(1))
		g.Expect(storage[0].Volumes[0].RAIDType).To(Equal("RAID0"))
	}
	g.Expect(serials).To(HaveLen(3))
	g.Expect(macs).To(HaveLen(3))

	m, err := c.Manager(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(m.UUID).To(Equal(e.ManagerUUID()))
	g.Expect(m.Manufacturer).To(Equal("Acme"))
	g.Expect(m.FirmwareVersion).NotTo(BeEmpty())
	g.Expect(m.MACAddress).To(MatchRegexp(`^06(:[0-9a-f]{2}){5}$`))
	g.Expect(m.PowerState).To(Equal(bmc.PowerStateOn))

}

func TestSessions(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{}, func(cfg *redfish.Config) { cfg.UseSessions = true })
	ctx := t.Context()
	sys := e.Systems()[0]

	_, err := c.SystemInfo(ctx, sys.URI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.PowerOn(ctx, sys.URI)).To(Succeed())
	g.Expect(e.SessionCount()).To(Equal(1))
	g.Expect(c.Logout(ctx)).To(Succeed())
	g.Expect(e.SessionCount()).To(Equal(0))

	// The next request logs in again.
	_, err = c.SystemInfo(ctx, sys.URI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(e.SessionCount()).To(Equal(1))

	// Changed credentials end the session; logging in again fails.
	e.SetCredentials("admin", "rotated")
	_, err = c.SystemInfo(ctx, sys.URI)
	g.Expect(err).To(MatchError(bmc.ErrUnauthorized))
	g.Expect(err.Error()).NotTo(ContainSubstring(emulator.DefaultPassword))

	wrong := newClient(t, e, func(cfg *redfish.Config) { cfg.UseSessions = true; cfg.Password = "nope" })
	_, err = wrong.SystemInfo(ctx, sys.URI)
	g.Expect(err).To(MatchError(bmc.ErrUnauthorized))
	g.Expect(wrong.Logout(ctx)).To(Succeed())
}

func TestFaultUnavailable(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{})
	sys := e.Systems()[0]

	e.SetUnavailable(true)
	before := e.RequestCount()
	_, err := c.SystemInfo(t.Context(), sys.URI)
	g.Expect(err).To(MatchError(bmc.ErrUnavailable))
	g.Expect(bmc.Reason(err)).To(Equal(bmc.ReasonUnreachable))
	g.Expect(e.RequestCount()-before).To(BeNumerically(">", 1), "GETs are retried")

	before = e.RequestCount()
	g.Expect(c.Reset(t.Context(), sys.URI, bmc.ResetOn)).To(MatchError(bmc.ErrUnavailable))
	g.Expect(e.ResetCount(sys.UUID, bmc.ResetOn)).To(Equal(0))

	e.SetUnavailable(false)
	_, err = c.SystemInfo(t.Context(), sys.URI)
	g.Expect(err).NotTo(HaveOccurred())
}

func TestFaultLatency(t *testing.T) {
	g := NewWithT(t)
	e, _ := startEmulator(t, emulator.Options{})
	sys := e.Systems()[0]
	e.SetLatency(time.Minute)

	short := newClient(t, e, func(cfg *redfish.Config) { cfg.Timeout = 50 * time.Millisecond })
	_, err := short.SystemInfo(t.Context(), sys.URI)
	g.Expect(err).To(MatchError(bmc.ErrUnavailable))

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	patient := newClient(t, e)
	_, err = patient.SystemInfo(ctx, sys.URI)
	g.Expect(err).To(MatchError(bmc.ErrUnavailable))
	g.Expect(bmc.Reason(err)).To(Equal(bmc.ReasonUnreachable))

	e.SetLatency(20 * time.Millisecond)
	info, err := patient.SystemInfo(t.Context(), sys.URI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.UUID).To(Equal(sys.UUID))
}

func TestFaultWrongCredentials(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{Username: "root", Password: "calvin-123"}, func(cfg *redfish.Config) {
		cfg.Username, cfg.Password = "root", "calvin-123"
	})
	sys := e.Systems()[0]
	_, err := c.SystemInfo(t.Context(), sys.URI)
	g.Expect(err).NotTo(HaveOccurred())

	e.SetCredentials("root", "new-secret")
	_, err = c.SystemInfo(t.Context(), sys.URI)
	g.Expect(err).To(MatchError(bmc.ErrUnauthorized))
	g.Expect(bmc.Reason(err)).To(Equal(bmc.ReasonUnauthorized))
	g.Expect(err.Error()).To(Equal("redfish: GET " + sys.URI + ": unauthorized (401): Authentication is required."))
	g.Expect(err.Error()).NotTo(ContainSubstring("calvin-123"))
}

func TestFaultIgnoreGracefulShutdown(t *testing.T) {
	g := NewWithT(t)
	// Without a delay an honoured shutdown would be visible at once, so "still On" is final.
	e, c := startEmulator(t, emulator.Options{InitialPower: bmc.PowerStateOn})
	ctx := t.Context()
	sys := e.Systems()[0]
	g.Expect(e.IgnoreGracefulShutdown(sys.UUID, true)).To(BeTrue())

	g.Expect(c.PowerOff(ctx, sys.URI)).To(Succeed())
	g.Expect(e.ResetCount(sys.UUID, bmc.ResetGracefulShutdown)).To(Equal(1))
	g.Expect(powerOf(ctx, c, sys.URI)()).To(Equal(bmc.PowerStateOn))

	g.Expect(c.ForcePowerOff(ctx, sys.URI)).To(Succeed())
	g.Expect(powerOf(ctx, c, sys.URI)()).To(Equal(bmc.PowerStateOff))

	g.Expect(e.IgnoreGracefulShutdown(sys.UUID, false)).To(BeTrue())
	g.Expect(c.PowerOn(ctx, sys.URI)).To(Succeed())
	g.Expect(c.PowerOff(ctx, sys.URI)).To(Succeed())
	g.Expect(powerOf(ctx, c, sys.URI)()).To(Equal(bmc.PowerStateOff))
	g.Expect(e.IgnoreGracefulShutdown("no-such-uuid", true)).To(BeFalse())
}

func TestFaultOutOfBandPowerChange(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{})
	ctx := t.Context()
	sys := e.Systems()[0]

	g.Expect(e.SetPowerState(sys.UUID, bmc.PowerStateOn)).To(BeTrue())
	g.Expect(powerOf(ctx, c, sys.URI)()).To(Equal(bmc.PowerStateOn))
	g.Expect(e.BootHistory(sys.UUID)).To(HaveLen(1))
	g.Expect(e.SetPowerState(sys.UUID, bmc.PowerStatePaused)).To(BeTrue())
	g.Expect(powerOf(ctx, c, sys.URI)()).To(Equal(bmc.PowerStatePaused))
	g.Expect(e.PowerState(sys.UUID)).To(Equal(bmc.PowerStatePaused))
}

func TestSystemsAppearAndDisappear(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{Systems: 2})
	ctx := t.Context()
	first, second := e.Systems()[0], e.Systems()[1]

	g.Expect(e.RemoveSystem(first.UUID)).To(BeTrue())
	g.Expect(e.RemoveSystem(first.UUID)).To(BeFalse())
	_, err := c.SystemInfo(ctx, first.URI)
	g.Expect(err).To(MatchError(bmc.ErrNotFound))
	g.Expect(bmc.Reason(err)).To(Equal(bmc.ReasonNotFound))
	g.Expect(c.PowerOn(ctx, first.URI)).To(MatchError(bmc.ErrNotFound))
	_, err = c.Processors(ctx, first.URI)
	g.Expect(err).To(MatchError(bmc.ErrNotFound))
	g.Expect(c.Systems(ctx)).To(Equal([]bmc.System{second}))

	added := e.AddSystem()
	g.Expect(added.URI).To(Equal("/redfish/v1/Systems/3"), "ids are not reused")
	g.Expect(c.Systems(ctx)).To(Equal([]bmc.System{second, added}))
	g.Expect(c.PowerOn(ctx, added.URI)).To(Succeed())
	g.Expect(e.PowerState(added.UUID)).To(Equal(bmc.PowerStateOn))
}

// waitPower polls until the system reaches want (for use outside the test goroutine).
func waitPower(ctx context.Context, c *redfish.Client, uri string, want bmc.PowerState) error {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		info, err := c.SystemInfo(ctx, uri)
		if err == nil && info.PowerState == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %s (last %q, %v): %w", uri, want, info.PowerState, err, ctx.Err())
		case <-t.C:
		}
	}
}

func TestConcurrentPowerCycles(t *testing.T) {
	g := NewWithT(t)
	const n = 100
	e, _ := startEmulator(t, emulator.Options{Systems: n, PowerDelay: 10 * time.Millisecond})
	ctx := t.Context()

	cycle := func(s bmc.System) error {
		// A client per worker, as a controller builds one per reconcile.
		c, err := redfish.New(redfish.Config{Endpoint: e.URL(), Username: emulator.DefaultUsername, Password: emulator.DefaultPassword})
		if err != nil {
			return err
		}
		steps := []struct {
			do   func() error
			want bmc.PowerState
		}{
			{func() error { return c.PowerOn(ctx, s.URI) }, bmc.PowerStateOn},
			{func() error { return c.PowerOff(ctx, s.URI) }, bmc.PowerStateOff},
			{func() error { return c.Reset(ctx, s.URI, bmc.ResetPowerCycle) }, bmc.PowerStateOn},
			{func() error {
				return c.SetBootOverride(ctx, s.URI, bmc.BootOverride{Target: bmc.BootTargetPxe, Once: true})
			}, bmc.PowerStateOn},
			{func() error { return c.Reset(ctx, s.URI, bmc.ResetForceRestart) }, bmc.PowerStateOn},
			{func() error { return c.ForcePowerOff(ctx, s.URI) }, bmc.PowerStateOff},
		}
		for _, st := range steps {
			if err := st.do(); err != nil {
				return err
			}
			if err := waitPower(ctx, c, s.URI, st.want); err != nil {
				return err
			}
		}
		return nil
	}

	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, s := range e.Systems() {
		wg.Go(func() { errs[i] = cycle(s) })
	}
	wg.Wait()
	g.Expect(errors.Join(errs...)).NotTo(HaveOccurred())

	for _, s := range e.Systems() {
		g.Expect(e.PowerState(s.UUID)).To(Equal(bmc.PowerStateOff))
		var targets []bmc.BootTarget
		for _, b := range e.BootHistory(s.UUID) {
			targets = append(targets, b.Target)
		}
		g.Expect(targets).To(Equal([]bmc.BootTarget{"Hdd", "Hdd", "Pxe"}), s.UUID)
	}
}
