package wipe

import "slices"

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	gib = int64(1) << 30

	// blockSize is the unit of verification: a sampled block is 4 KiB (the last block of a
	// device whose size is not a multiple of it is shorter).
	blockSize = 4 * kib
	// endBytes is how much the Quick policy zeroes at each end of a device, and how much every
	// verification reads back at each end.
	endBytes = mib
)

// region is a byte range [off, end) of a device.
type region struct {
	off, end int64
}

// quickRegions returns the byte ranges the Quick policy zeroes on a device of size bytes,
// widened to whole 4 KiB blocks, sorted and merged. The ends cover the GPT headers and tables
// (primary at the start, backup at the end), the MBR, the LVM label (sector 1), the md
// superblocks of every metadata version (1.1 at 0, 1.2 at 4 KiB, 0.90 in the last 64
// KiB-aligned 64 KiB, 1.0 8 KiB before the end) and the superblocks of most filesystems, which
// live in the first MiB; the btrfs superblock mirrors lie beyond it and are listed by their
// own offsets. The signatures are listed even where an end covers them, so that the list says
// what Quick promises when the ends change.
func quickRegions(size int64) []region {
	if size <= 0 {
		return nil
	}
	rs := []region{
		{0, endBytes},                         // MBR, primary GPT, partition boot sectors
		{size - endBytes, size},               // backup GPT, trailing metadata
		{0, 4 * kib},                          // md 1.1 superblock
		{4 * kib, 8 * kib},                    // md 1.2 superblock
		{512, 1024},                           // LVM2 label (sector 1)
		{64 * kib, 68 * kib},                  // btrfs primary superblock
		{64 * mib, 64*mib + 4*kib},            // btrfs mirror 1
		{256 * gib, 256*gib + 4*kib},          // btrfs mirror 2
		{1 << 50, (1 << 50) + 4*kib},          // btrfs mirror 3 (1 PiB)
		{(size - 8*kib) &^ (4*kib - 1), size}, // md 1.0 superblock
	}
	if md090 := (size&^(64*kib-1) - 64*kib); md090 >= 0 {
		rs = append(rs, region{md090, md090 + 64*kib}) // md 0.90 superblock area
	}
	for i := range rs { // whole blocks, as verification reads them
		rs[i].off, rs[i].end = rs[i].off&^(blockSize-1), (rs[i].end+blockSize-1)&^(blockSize-1)
	}
	return merge(clip(rs, size))
}

// clip drops the parts of rs outside [0, size) and the ranges that become empty.
func clip(rs []region, size int64) []region {
	out := rs[:0:0]
	for _, r := range rs {
		r.off, r.end = max(r.off, 0), min(r.end, size)
		if r.off < r.end {
			out = append(out, r)
		}
	}
	return out
}

// merge sorts rs and joins overlapping and touching ranges.
func merge(rs []region) []region {
	slices.SortFunc(rs, func(a, b region) int {
		switch {
		case a.off < b.off:
			return -1
		case a.off > b.off:
			return 1
		}
		return 0
	})
	var out []region
	for _, r := range rs {
		if n := len(out); n > 0 && r.off <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, r.end)
			continue
		}
		out = append(out, r)
	}
	return out
}
