package wipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// chunkSize bounds every write and read of the engine.
const chunkSize = 4 * mib

// device is one disk opened for the wipe: a block device or, in fixture trees and tests, a
// regular file standing for one.
type device struct {
	f     *os.File
	size  int64
	block bool
}

// openDevice opens path for reading and writing. It refuses what is neither a block device
// nor a regular file, and a block device the kernel marks read-only. A block device is
// opened exclusively: one that is mounted or held by md or device-mapper fails with "device
// or resource busy" rather than being written under the layer that owns it.
func openDevice(path string) (*device, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open: %w", bare(err))
	}
	mode := st.Mode()
	var block bool
	switch {
	case mode.IsRegular():
	case mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice == 0:
		block = true
	case mode.IsDir():
		return nil, errors.New("cannot open: a directory, not a disk")
	default:
		return nil, errors.New("cannot open: neither a block device nor a regular file")
	}
	if block {
		ro, err := readOnly(path)
		if err != nil {
			return nil, fmt.Errorf("cannot open: %w", bare(err))
		}
		if ro {
			return nil, errors.New("read-only device")
		}
	}
	flags := os.O_RDWR
	if block {
		flags |= syscall.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		if errors.Is(err, syscall.EROFS) {
			return nil, errors.New("read-only device")
		}
		return nil, fmt.Errorf("cannot open for writing: %w", bare(err))
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cannot read the size: %w", bare(err))
	}
	return &device{f: f, size: size, block: block}, nil
}

// zero writes zeros over [off, end) in chunks of at most chunkSize, stopping at the first
// chunk after ctx ends. progress, if not nil, is told the end offset of every chunk written.
func (d *device) zero(ctx context.Context, off, end int64, progress func(done int64)) error {
	zeros := make([]byte, min(chunkSize, end-off))
	for off < end {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("cancelled at offset %d", off)
		}
		n := min(int64(len(zeros)), end-off)
		if _, err := d.f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("write at offset %d: %w", off, bare(err))
		}
		off += n
		if progress != nil {
			progress(off)
		}
	}
	return nil
}

// flush writes the device's dirty pages and its volatile write cache to stable storage.
func (d *device) flush() error {
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", bare(err))
	}
	return nil
}

// bare strips the path an *os.PathError carries: the disk is named by the record already, and
// the error says only what the system said.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}
