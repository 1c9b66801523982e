package wipe

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestQuickRegions(t *testing.T) {
	cases := []struct {
		name string
		size int64
		want []region
	}{
		{"empty", 0, nil},
		{"smaller than a block", 1000, []region{{0, 1000}}},
		{"smaller than the two ends", 1536 * kib, []region{{0, 1536 * kib}}},
		{"exactly the two ends", 2 * mib, []region{{0, 2 * mib}}},
		{"ends apart", 8 * mib, []region{{0, mib}, {7 * mib, 8 * mib}}},
		{"size not a multiple of 4 KiB", 10*mib + 512, []region{{0, mib}, {9 * mib, 10*mib + 512}}},
		{"btrfs mirror at 64 MiB", 100 * mib, []region{{0, mib}, {64 * mib, 64*mib + 4*kib}, {99 * mib, 100 * mib}}},
		{"btrfs mirror cut by the end", 64*mib + 2*kib, []region{{0, mib}, {63 * mib, 64*mib + 2*kib}}},
		{
			"btrfs mirrors at 64 MiB and 256 GiB", 300 * gib,
			[]region{{0, mib}, {64 * mib, 64*mib + 4*kib}, {256 * gib, 256*gib + 4*kib}, {300*gib - mib, 300 * gib}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(quickRegions(tc.size)).To(Equal(tc.want))
		})
	}
}

func TestQuickRegionsCoverSignatures(t *testing.T) {
	// Wherever the size, the md superblocks of every version and the LVM label lie inside
	// the regions Quick zeroes.
	for _, size := range []int64{2 * mib, 3*mib + 512, 64*mib + 4*kib, 1*gib - 512, 4*gib + 64*kib + 512} {
		rs := quickRegions(size)
		md090 := size&^(64*kib-1) - 64*kib
		for _, sig := range []region{
			{0, 4 * kib}, {4 * kib, 8 * kib}, {512, 1024}, {md090, md090 + 4*kib}, {size - 8*kib, size - 4*kib},
		} {
			covered := false
			for _, r := range rs {
				covered = covered || (r.off <= sig.off && sig.end <= r.end)
			}
			if !covered {
				t.Errorf("size %d: signature %v outside %v", size, sig, rs)
			}
		}
	}
}

func TestBlocksAndRuns(t *testing.T) {
	g := NewWithT(t)
	blocks := blocksOf([]region{{0, 5000}, {4096, 4097}, {3 * blockSize, 3*blockSize + 1}})
	g.Expect(blocks).To(Equal([]int64{0, 1, 3}))
	g.Expect(runs(blocks)).To(Equal([]region{{0, 2 * blockSize}, {3 * blockSize, 4 * blockSize}}))
	g.Expect(runs(nil)).To(BeEmpty())
}

func TestSecureSamples(t *testing.T) {
	g := NewWithT(t)
	const size = 1 * gib
	n := int64(size / blockSize)
	a := secureSamples(size, 64)
	// 256 blocks at each end, and one block in each of 64 strata; the first and last strata
	// overlap the ends, so between 62 and 64 more.
	g.Expect(len(a)).To(BeNumerically(">=", 512+62))
	g.Expect(len(a)).To(BeNumerically("<=", 512+64))
	g.Expect(a[:256]).To(Equal(seq(0, 256)))
	g.Expect(a[len(a)-256:]).To(Equal(seq(n-256, n)))
	for i := range int64(64) {
		lo, hi := n*i/64, n*(i+1)/64
		g.Expect(a).To(ContainElement(And(BeNumerically(">=", lo), BeNumerically("<", hi))), "stratum %d", i)
	}
	// A fresh seed each time: two runs pick other blocks (of 4096 per stratum, the chance of
	// 62 equal picks is nil).
	g.Expect(secureSamples(size, 64)).NotTo(Equal(a))
	// Tiny devices: every block, once.
	g.Expect(secureSamples(10*kib, 64)).To(Equal([]int64{0, 1, 2}))
}

func seq(from, to int64) []int64 {
	var s []int64
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}
