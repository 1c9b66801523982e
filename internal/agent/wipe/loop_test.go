package wipe

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// loopDevice attaches file as a loop device (read-only if asked) for the length of the test,
// or skips the test where the machine does not allow loop devices.
func loopDevice(t *testing.T, file string, readOnly bool) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("no losetup on this machine")
	}
	args := []string{"--find", "--show"}
	if readOnly {
		args = append(args, "--read-only")
	}
	out, err := exec.CommandContext(t.Context(), "losetup", append(args, file)...).CombinedOutput()
	if err != nil {
		t.Skipf("cannot attach a loop device here: %v: %s", err, bytes.TrimSpace(out))
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("detach %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// discards reports whether the kernel offers discard on the loop device dev.
func discards(dev string) bool {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "queue/discard_max_bytes"))
	return err == nil && strings.TrimSpace(string(b)) != "0"
}

func TestLoopDevice(t *testing.T) {
	const size = 8 * mib
	cases := []struct {
		policy, method string
		// zero are the regions of the backing file that must read back as zero.
		zero []region
	}{
		{report.PolicyQuick, "signatures+ends", quickRegions(size)},
		{report.PolicySecure, "overwrite", []region{{0, size}}},
	}
	for _, tc := range cases {
		t.Run(tc.policy, func(t *testing.T) {
			g := NewWithT(t)
			root := machine(t)
			file := filepath.Join(t.TempDir(), "disk.img")
			randomFile(t, file, size)
			dev := loopDevice(t, file, false)
			method := tc.method
			if discards(dev) {
				method = map[string]string{
					report.PolicyQuick:  "signatures+ends+discard",
					report.PolicySecure: "discard+overwrite",
				}[tc.policy]
			}

			w, err := Run(t.Context(), Options{Root: root, Policy: tc.policy, Devices: []string{dev}})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(w.Validate()).To(Succeed())
			g.Expect(w.Disks).To(HaveLen(1))
			d := w.Disks[0]
			g.Expect(d.Result).To(Equal(report.ResultSucceeded), d.Error)
			g.Expect(d.Path).To(Equal(dev))
			g.Expect(d.SizeBytes).To(BeNumerically("==", size))
			g.Expect(d.Method).To(Equal(method))
			t.Logf("%s: %s, %d blocks read back", dev, d.Method, d.Verification.SampledBlocks)
			g.Expect(d.Verification.Passed).To(BeTrue())
			g.Expect(d.Verification.SampledBlocks).To(BeNumerically(">=", 512))
			// What the wipe wrote through the block device reached the file behind it.
			g.Expect(dirtyRegions(t, file, tc.zero)).To(BeEmpty())
		})
	}
	t.Run("verification reads the disk, not the page cache", func(t *testing.T) {
		g := NewWithT(t)
		root := machine(t)
		file := filepath.Join(t.TempDir(), "disk.img")
		randomFile(t, file, 4*mib)
		dev := loopDevice(t, file, false)
		// After the wipe, change the disk behind the device's back: the pages the wipe wrote
		// are still cached as zeros, the disk is not.
		o := Options{Root: root, Policy: report.PolicyQuick, Devices: []string{dev}}
		o.afterWipe = func(*os.File) error {
			f, err := os.OpenFile(file, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer func() { _ = f.Close() }()
			if _, err := f.WriteAt([]byte{0xff}, 8192); err != nil {
				return err
			}
			return f.Sync()
		}
		w, err := Run(t.Context(), o)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(w.Disks[0].Result).To(Equal(report.ResultFailed))
		g.Expect(w.Disks[0].Error).To(HaveSuffix("sampled blocks not zero, the first at offset 8192"))
	})
	t.Run("read-only", func(t *testing.T) {
		g := NewWithT(t)
		root := machine(t)
		file := filepath.Join(t.TempDir(), "disk.img")
		randomFile(t, file, 2*mib)
		before, err := os.ReadFile(file)
		g.Expect(err).NotTo(HaveOccurred())
		dev := loopDevice(t, file, true)

		w, err := Run(t.Context(), Options{Root: root, Policy: report.PolicyQuick, Devices: []string{dev}})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(w.Disks[0].Result).To(Equal(report.ResultFailed))
		g.Expect(w.Disks[0].Error).To(Equal("read-only device"))
		after, err := os.ReadFile(file)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(after).To(Equal(before))
	})
}
