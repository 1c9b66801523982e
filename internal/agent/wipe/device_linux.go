package wipe

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readOnly asks the kernel whether the block device at path is read-only (BLKROGET).
func readOnly(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer func() { _ = f.Close() }()
	ro, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKROGET)
	if err != nil {
		return false, err
	}
	return ro != 0, nil
}

// discard tells a block device that every byte of it is unused (BLKDISCARD over the whole
// device), so that an SSD can erase its cells and a thin volume can free its space. It
// reports false, without error, where the device does not support discard.
func (d *device) discard() (bool, error) {
	if !d.block {
		return false, nil
	}
	r := [2]uint64{0, uint64(d.size)}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, d.f.Fd(), unix.BLKDISCARD, uintptr(unsafe.Pointer(&r)))
	switch {
	case errno == 0:
		return true, nil
	case errors.Is(errno, unix.EOPNOTSUPP): // ENOTSUP is the same number on Linux
		return false, nil
	}
	return false, errno
}

// dropCache drops the page cache of the device so that a read after it comes from the disk,
// not from the pages the wipe has just written.
func (d *device) dropCache() error {
	return unix.Fadvise(int(d.f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// directReader opens the block device at path again for reads that bypass the page cache
// (O_DIRECT), or returns nil where that is not possible (a regular file on a filesystem
// without O_DIRECT, e.g. tmpfs); the caller then reads through the wipe's own descriptor.
func (d *device) directReader() *os.File {
	if !d.block {
		return nil
	}
	f, err := os.OpenFile(d.f.Name(), os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}
