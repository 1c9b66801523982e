//go:build !linux

package wipe

import (
	"errors"
	"os"
)

var errNotLinux = errors.New("block devices are wiped on Linux only")

func readOnly(string) (bool, error) { return false, errNotLinux }

func (d *device) discard() (bool, error) {
	if !d.block {
		return false, nil
	}
	return false, errNotLinux
}

func (d *device) dropCache() error { return nil }

func (d *device) directReader() *os.File { return nil }
