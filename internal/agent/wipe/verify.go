package wipe

import (
	crand "crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"unsafe"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// DefaultSamples is how many random 4 KiB blocks the verification of a Secure wipe reads
// beyond the two ends.
const DefaultSamples = 64

// blocksOf returns the indexes of the blocks that overlap rs, sorted and without repeats.
func blocksOf(rs []region) []int64 {
	var idx []int64
	for _, r := range rs {
		for b := r.off / blockSize; b*blockSize < r.end; b++ {
			idx = append(idx, b)
		}
	}
	slices.Sort(idx)
	return slices.Compact(idx)
}

// secureSamples returns the blocks the verification of a Secure wipe reads: the first and the
// last MiB, and one random block in each of k equal strata of the device, so that the samples
// spread over all of it. The choice is seeded from crypto/rand: a device cannot know in
// advance which blocks will be read.
func secureSamples(size int64, k int) []int64 {
	n := (size + blockSize - 1) / blockSize
	idx := blocksOf(clip([]region{{0, endBytes}, {size - endBytes, size}}, size))
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // crypto/rand.Read never returns an error
	r := mrand.New(mrand.NewChaCha8(seed))
	for i := range int64(k) {
		lo, hi := n*i/int64(k), n*(i+1)/int64(k)
		if hi > lo {
			idx = append(idx, lo+r.Int64N(hi-lo))
		}
	}
	slices.Sort(idx)
	return slices.Compact(idx)
}

// verify reads back the given blocks of the device and counts those that are not all zero.
// It reads from the disk, not from the page cache: through O_DIRECT where the device allows
// it, else after dropping the cached pages. An error means the blocks could not be read; a
// mismatch is reported in the result, with the offset of the first one in detail.
func verify(d *device, blocks []int64) (v report.Verification, detail string, err error) {
	if err := d.dropCache(); err != nil {
		return v, "", fmt.Errorf("drop the page cache: %w", bare(err))
	}
	var r io.ReaderAt = d.f
	if direct := d.directReader(); direct != nil {
		defer func() { _ = direct.Close() }()
		r = direct
	}
	buf := aligned(chunkSize)
	first := int64(-1)
	for _, run := range runs(blocks) {
		end := min(run.end, d.size) // the last block of a device may be short
		for off := run.off; off < end; {
			n := min(int64(len(buf)), end-off)
			if _, err := r.ReadAt(buf[:n], off); err != nil {
				return v, "", fmt.Errorf("read back at offset %d: %w", off, bare(err))
			}
			for b := int64(0); b < n; b += blockSize {
				v.SampledBlocks++
				if !allZero(buf[b:min(b+blockSize, n)]) {
					v.Mismatches++
					if first < 0 {
						first = off + b
					}
				}
			}
			off += n
		}
	}
	v.Passed = v.Mismatches == 0
	if !v.Passed {
		detail = fmt.Sprintf("verification mismatch: %d of %d sampled blocks not zero, the first at offset %d",
			v.Mismatches, v.SampledBlocks, first)
	}
	return v, detail, nil
}

// runs turns sorted block indexes into byte ranges of consecutive blocks.
func runs(blocks []int64) []region {
	var out []region
	for _, b := range blocks {
		off := b * blockSize
		if n := len(out); n > 0 && out[n-1].end == off {
			out[n-1].end = off + blockSize
			continue
		}
		out = append(out, region{off, off + blockSize})
	}
	return out
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// aligned returns n bytes whose start is aligned to blockSize, as O_DIRECT reads require.
func aligned(n int64) []byte {
	b := make([]byte, n+blockSize)
	shift := (blockSize - int64(uintptr(unsafe.Pointer(&b[0])))%blockSize) % blockSize
	return b[shift : shift+n]
}
