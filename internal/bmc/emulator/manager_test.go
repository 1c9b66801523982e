package emulator_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

func TestManagerResetCuresHungService(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{UUIDSeed: "manager-reset", ManagerResetDelay: 50 * time.Millisecond})
	ctx := t.Context()

	e.SetHung(true)
	_, err := c.Systems(ctx)
	g.Expect(err).To(MatchError(bmc.ErrUnavailable))
	_, err = c.Manager(ctx)
	g.Expect(err).NotTo(HaveOccurred(), "a hung service still serves the manager")

	g.Expect(c.ResetManager(ctx, bmc.ResetPowerCycle)).To(MatchError(bmc.ErrNotSupported))
	g.Expect(e.ManagerResetCount()).To(Equal(0), "a type outside the allowable values is not sent")

	g.Expect(c.ResetManager(ctx, bmc.ResetGracefulRestart)).To(Succeed())
	g.Expect(e.ManagerResetCount()).To(Equal(1))
	g.Eventually(func() error { _, err := c.Systems(ctx); return err }).
		WithTimeout(pollTimeout).WithPolling(pollInterval).Should(Succeed())
}

func TestManagerResetWhileUnavailableFails(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{UUIDSeed: "manager-unavailable"})
	e.SetUnavailable(true)
	g.Expect(c.ResetManager(t.Context(), bmc.ResetForceRestart)).To(MatchError(bmc.ErrUnavailable))
	g.Expect(e.ManagerResetCount()).To(Equal(0))
}
