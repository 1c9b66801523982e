package wipe

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

func TestQuickWipesSignaturesAndEnds(t *testing.T) {
	g := NewWithT(t)
	// Over 64 MiB, for the btrfs mirror; not a multiple of 4 KiB, for the short last block.
	const size = 70*mib + 1536
	root := machine(t, fakeDisk{name: "sda", size: size, model: "SAMSUNG MZ7LH", serial: "S4"})
	dev := filepath.Join(root, "dev/sda")
	middle := region{2 * mib, 3 * mib}
	before := readAt(t, dev, middle.off, middle.end-middle.off)

	w, err := Run(t.Context(), Options{Root: root, Policy: report.PolicyQuick})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(w.Validate()).To(Succeed())
	g.Expect(w.Succeeded()).To(BeTrue(), "%+v", w.Disks)
	g.Expect(w.SystemUUID).To(Equal(testUUID))
	g.Expect(w.Policy).To(Equal(report.PolicyQuick))
	g.Expect(w.FinishedAt).NotTo(BeTemporally("<", w.StartedAt))
	g.Expect(w.Disks).To(HaveLen(1))
	d := w.Disks[0]
	g.Expect(d.Path).To(Equal("/dev/sda"))
	g.Expect(d.Model).To(Equal("SAMSUNG MZ7LH"))
	g.Expect(d.Serial).To(Equal("S4"))
	g.Expect(d.SizeBytes).To(BeNumerically("==", size))
	g.Expect(d.Method).To(Equal("signatures+ends"), "a regular file has no discard")
	g.Expect(d.Error).To(BeEmpty())
	// The first MiB (256 blocks), the btrfs mirror at 64 MiB (1), the last MiB widened to
	// whole blocks (257: it starts 1536 bytes into one).
	g.Expect(d.Verification).To(Equal(report.Verification{SampledBlocks: 514, Passed: true}))

	g.Expect(dirtyRegions(t, dev, []region{
		{0, mib}, {64 * mib, 64*mib + 4*kib}, {size - mib, size},
		{512, 1024}, {4 * kib, 8 * kib}, {size - 8*kib, size},
	})).To(BeEmpty())
	// Quick leaves the rest alone.
	g.Expect(readAt(t, dev, middle.off, middle.end-middle.off)).To(Equal(before))
}

func TestSecureOverwritesEverything(t *testing.T) {
	g := NewWithT(t)
	const size = 64*mib + 512
	root := machine(t,
		fakeDisk{name: "sda", size: size},
		fakeDisk{name: "nvme0n1", size: 2 * mib},
	)
	var mu sync.Mutex
	var progress []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, args)
	}, funcr.Options{})

	w, err := Run(t.Context(), Options{Root: root, Policy: report.PolicySecure, ProgressEvery: 16 * mib, Log: log})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(w.Validate()).To(Succeed())
	g.Expect(w.Succeeded()).To(BeTrue(), "%+v", w.Disks)
	byPath := map[string]report.DiskWipe{}
	for _, d := range w.Disks {
		byPath[d.Path] = d
	}
	sda, nvme := byPath["/dev/sda"], byPath["/dev/nvme0n1"]
	g.Expect(sda.Method).To(Equal("overwrite"))
	g.Expect(nvme.Method).To(Equal("overwrite (nvme crypto erase not implemented)"))
	// Both ends (256 + 257 blocks) and a random block in each of 64 strata of 1 MiB, of which
	// the first and the last fall in the ends.
	g.Expect(sda.Verification).To(Equal(report.Verification{SampledBlocks: 513 + 62, Passed: true}))
	// A 2 MiB disk is its two ends: every one of its 512 blocks is read back.
	g.Expect(nvme.Verification).To(Equal(report.Verification{SampledBlocks: 512, Passed: true}))

	for _, name := range []string{"sda", "nvme0n1"} {
		b, err := os.ReadFile(filepath.Join(root, "dev", name))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(bytes.Count(b, []byte{0})).To(Equal(len(b)), "%s is all zero", name)
	}
	overwriting := 0
	for _, l := range progress {
		if strings.Contains(l, `"msg"="Overwriting disk"`) && strings.Contains(l, `"disk"="/dev/sda"`) {
			overwriting++
		}
	}
	g.Expect(overwriting).To(Equal(4), "a progress line every 16 MiB of 64.0005 MiB: %v", progress)
}

func TestFailuresArePerDisk(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(t *testing.T, root string) string // returns the Devices entry
		policy string
		error  string
	}{{
		name:  "missing device",
		setup: func(t *testing.T, root string) string { return "sdz" },
		error: "cannot open: no such file or directory",
	}, {
		name: "a directory",
		setup: func(t *testing.T, root string) string {
			must(t, os.Mkdir(filepath.Join(root, "dev/sdy"), 0o755))
			return "sdy"
		},
		error: "cannot open: a directory, not a disk",
	}, {
		name:   "a character device",
		setup:  func(t *testing.T, root string) string { return "/dev/null" },
		policy: report.PolicySecure,
		error:  "cannot open: neither a block device nor a regular file",
	}, {
		name: "read-only file",
		setup: func(t *testing.T, root string) string {
			if os.Geteuid() == 0 {
				t.Skip("root writes to a file of mode 0400; the loop device test covers a read-only device")
			}
			p := filepath.Join(root, "dev/sdx")
			randomFile(t, p, 2*mib)
			must(t, os.Chmod(p, 0o400))
			return "sdx"
		},
		error: "cannot open for writing: permission denied",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			root := machine(t, fakeDisk{name: "sda", size: 4 * mib})
			bad := tc.setup(t, root)
			policy := tc.policy
			if policy == "" {
				policy = report.PolicyQuick
			}
			w, err := Run(t.Context(), Options{Root: root, Policy: policy, Devices: []string{bad, "sda"}})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(w.Validate()).To(Succeed())
			g.Expect(w.Succeeded()).To(BeFalse())
			failed, ok := w.FirstFailure()
			g.Expect(ok).To(BeTrue())
			g.Expect(failed.Result).To(Equal(report.ResultFailed))
			g.Expect(failed.Error).To(Equal(tc.error))
			g.Expect(failed.Verification.Passed).To(BeFalse())
			g.Expect(failed.Path).NotTo(Equal("/dev/sda"))
			// The run went on with the good disk.
			g.Expect(w.Disks).To(HaveLen(2))
			g.Expect(w.Disks[1].Path).To(Equal("/dev/sda"))
			g.Expect(w.Disks[1].Result).To(Equal(report.ResultSucceeded))
		})
	}
}

func TestVerificationMismatchFailsTheDisk(t *testing.T) {
	for _, policy := range []string{report.PolicyQuick, report.PolicySecure} {
		t.Run(policy, func(t *testing.T) {
			g := NewWithT(t)
			root := machine(t, fakeDisk{name: "sda", size: 8 * mib}, fakeDisk{name: "sdb", size: 8 * mib})
			o := Options{Root: root, Policy: policy}
			// Re-dirty two blocks of sda after its wipe: one in the first MiB, one in the last.
			o.afterWipe = func(f *os.File) error {
				if filepath.Base(f.Name()) != "sda" {
					return nil
				}
				if _, err := f.WriteAt([]byte{0xff}, 5000); err != nil {
					return err
				}
				_, err := f.WriteAt([]byte{1, 2, 3}, 8*mib-10)
				return err
			}
			w, err := Run(t.Context(), o)
			g.Expect(err).NotTo(HaveOccurred())
			sda, sdb := w.Disks[0], w.Disks[1]
			g.Expect(sda.Result).To(Equal(report.ResultFailed))
			g.Expect(sda.Verification.Mismatches).To(Equal(2))
			g.Expect(sda.Verification.Passed).To(BeFalse())
			g.Expect(sda.Error).To(MatchRegexp(
				`^verification mismatch: 2 of \d+ sampled blocks not zero, the first at offset 4096$`))
			g.Expect(sdb.Result).To(Equal(report.ResultSucceeded))
			g.Expect(sdb.Verification.Passed).To(BeTrue())
		})
	}
}

func TestCancellation(t *testing.T) {
	t.Run("before the run", func(t *testing.T) {
		g := NewWithT(t)
		root := machine(t, fakeDisk{name: "sda", size: 2 * mib}, fakeDisk{name: "sdb", size: 2 * mib})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		w, err := Run(ctx, Options{Root: root, Policy: report.PolicyQuick})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(w.Disks).To(HaveLen(2))
		for _, d := range w.Disks {
			g.Expect(d.Result).To(Equal(report.ResultFailed))
			g.Expect(d.Error).To(Equal("cancelled before the wipe started"))
		}
	})
	t.Run("during an overwrite", func(t *testing.T) {
		g := NewWithT(t)
		root := machine(t, fakeDisk{name: "sda", size: 16 * mib})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		// The first progress line (after the first 4 MiB chunk) cancels the run.
		log := funcr.New(func(_, args string) {
			if strings.Contains(args, "Overwriting disk") {
				cancel()
			}
		}, funcr.Options{})
		w, err := Run(ctx, Options{Root: root, Policy: report.PolicySecure, ProgressEvery: mib, Log: log})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(w.Disks[0].Result).To(Equal(report.ResultFailed))
		g.Expect(w.Disks[0].Method).To(Equal("overwrite"))
		g.Expect(w.Disks[0].Error).To(Equal("cancelled at offset 4194304"))
		g.Expect(w.Disks[0].Verification.SampledBlocks).To(BeZero(), "nothing to verify")
	})
}

func TestRunErrors(t *testing.T) {
	cases := []struct {
		name  string
		o     func(root string) Options
		error string
	}{{
		name:  "unknown policy",
		o:     func(root string) Options { return Options{Root: root, Policy: "Thorough"} },
		error: `policy "Thorough": must be Quick or Secure`,
	}, {
		name: "no system UUID",
		o: func(root string) Options {
			_ = os.Remove(filepath.Join(root, "sys/class/dmi/id/product_uuid"))
			return Options{Root: root, Policy: report.PolicyQuick}
		},
		error: "no system UUID in /sys/class/dmi/id/product_uuid",
	}, {
		name: "no sysfs",
		o: func(root string) Options {
			_ = os.RemoveAll(filepath.Join(root, "sys/block"))
			return Options{Root: root, Policy: report.PolicyQuick}
		},
		error: "list disks: open " + "ROOT/sys/block: no such file or directory",
	}, {
		name: "a relative path",
		o: func(root string) Options {
			return Options{Root: root, Policy: report.PolicyQuick, Devices: []string{"dev/sda"}}
		},
		error: `device "dev/sda": neither a name (sda) nor an absolute path`,
	}, {
		name: "a disk twice",
		o: func(root string) Options {
			return Options{Root: root, Policy: report.PolicyQuick, Devices: []string{"sda", filepath.Join(root, "dev/sda")}}
		},
		error: "listed twice",
	}, {
		name: "too many disks",
		o: func(root string) Options {
			names := make([]string, report.MaxBlockDevices+1)
			for i := range names {
				names[i] = "sd" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			}
			return Options{Root: root, Policy: report.PolicyQuick, Devices: names}
		},
		error: "257 disks, a report holds at most 256",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			root := machine(t, fakeDisk{name: "sda", size: 2 * mib})
			w, err := Run(t.Context(), tc.o(root))
			g.Expect(w).To(BeNil())
			g.Expect(err).To(MatchError(ContainSubstring(strings.ReplaceAll(tc.error, "ROOT", root))))
		})
	}
}
