package emulator_test

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

// TestSecureEraseEveryDrive: the client lists a system's drives, erases each through
// Drive.SecureErase and polls its task monitor until the task completes.
func TestSecureEraseEveryDrive(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{UUIDSeed: "erase", EraseDuration: 100 * time.Millisecond})
	ctx := t.Context()
	sys := e.Systems()[0]

	drives, err := c.Drives(ctx, sys.URI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(drives).To(HaveLen(2), "two drives by default")
	serials := map[string]bool{}
	for _, d := range drives {
		g.Expect(d.URI).To(HavePrefix(sys.URI + "/Storage/1/Drives/"))
		g.Expect(d.Model).NotTo(BeEmpty())
		g.Expect(d.CapacityBytes).To(BeNumerically(">", 0))
		g.Expect(d.SecureEraseSupported).To(BeTrue())
		serials[d.Serial] = true
	}
	g.Expect(serials).To(HaveLen(2))

	for i, d := range drives {
		ref, err := c.SecureErase(ctx, d.URI)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(ref.URI).To(HavePrefix("/redfish/v1/TaskService/Tasks/"))
		st, err := c.Task(ctx, ref)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(st.State).To(Equal(bmc.TaskRunning), "the erase takes 100ms")
		g.Expect(st.State.Done()).To(BeFalse())

		_, err = c.SecureErase(ctx, d.URI)
		g.Expect(err).To(MatchError(bmc.ErrConflict), "a second erase while the first runs")

		g.Eventually(func() (bmc.TaskState, error) {
			st, err := c.Task(ctx, ref)
			return st.State, err
		}).WithTimeout(pollTimeout).WithPolling(pollInterval).Should(Equal(bmc.TaskCompleted))
		st, err = c.Task(ctx, ref)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(st.PercentComplete).To(Equal(100))
		g.Expect(e.EraseCount(sys.UUID, strings.TrimPrefix(d.URI, sys.URI+"/Storage/1/Drives/"))).To(Equal(1), "drive %d", i)
	}
}

// TestSecureEraseFaults: a drive with an injected fault ends its task in Exception with
// the BMC's message; a drive without the action reports it and is refused without a POST.
func TestSecureEraseFaults(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{UUIDSeed: "erase-faults"})
	ctx := t.Context()
	sys := e.Systems()[0]
	g.Expect(e.FailErase(sys.UUID, "1")).To(BeTrue())
	g.Expect(e.FailErase(sys.UUID, "7")).To(BeFalse(), "no such drive")
	g.Expect(e.SetSecureEraseSupported(sys.UUID, "0", false)).To(BeTrue())

	drives, err := c.Drives(ctx, sys.URI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(drives).To(HaveLen(2))
	g.Expect(drives[0].SecureEraseSupported).To(BeFalse())
	g.Expect(drives[1].SecureEraseSupported).To(BeTrue())

	before := e.RequestCount()
	_, err = c.SecureErase(ctx, drives[0].URI)
	g.Expect(err).To(MatchError(bmc.ErrNotSupported))
	g.Expect(e.RequestCount()-before).To(BeEquivalentTo(1), "only the GET of the drive")
	g.Expect(e.EraseCount(sys.UUID, "0")).To(BeZero())

	ref, err := c.SecureErase(ctx, drives[1].URI)
	g.Expect(err).NotTo(HaveOccurred())
	st, err := c.Task(ctx, ref)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(st.State).To(Equal(bmc.TaskException))
	g.Expect(st.State.Done()).To(BeTrue())
	g.Expect(st.Message).To(ContainSubstring("drive 1 failed"))

	_, err = c.Task(ctx, bmc.TaskRef{URI: "/redfish/v1/TaskService/Tasks/999"})
	g.Expect(err).To(MatchError(bmc.ErrNotFound))
}

// TestDrivesPerSystem: Options.Drives sets every system's drives, SetDrives one system's.
func TestDrivesPerSystem(t *testing.T) {
	g := NewWithT(t)
	one := []emulator.DriveSpec{{Model: "HDD-4T", MediaType: "HDD", Protocol: "SAS", CapacityBytes: 4 << 40}}
	e, c := startEmulator(t, emulator.Options{UUIDSeed: "drives", Systems: 2, Drives: one})
	ctx := t.Context()
	systems := e.Systems()
	g.Expect(e.SetDrives(systems[1].UUID, []emulator.DriveSpec{})).To(BeTrue())

	drives, err := c.Drives(ctx, systems[0].URI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(drives).To(HaveLen(1))
	g.Expect(drives[0].Model).To(Equal("HDD-4T"))
	g.Expect(drives[0].CapacityBytes).To(BeEquivalentTo(int64(4 << 40)))
	drives, err = c.Drives(ctx, systems[1].URI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(drives).To(BeEmpty())
}
