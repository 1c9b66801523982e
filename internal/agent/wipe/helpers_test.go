package wipe

import (
	"bytes"
	crand "crypto/rand"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

const testUUID = "4c4c4544-0042-3510-8051-b4c04f4e3232"

// fakeDisk is a disk of a fixture tree: sysfs attributes and a file of random data as /dev/<name>.
type fakeDisk struct {
	name          string
	size          int64
	model, serial string
	noDev         bool // sysfs only, no /dev file
}

// machine writes a fixture root with a DMI UUID and the given disks, and returns it.
func machine(t testing.TB, ds ...fakeDisk) string {
	t.Helper()
	root := t.TempDir()
	write(t, filepath.Join(root, "sys/class/dmi/id/product_uuid"), testUUID+"\n")
	must(t, os.MkdirAll(filepath.Join(root, "sys/block"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "dev"), 0o755))
	for _, d := range ds {
		sys := filepath.Join(root, "sys/block", d.name)
		write(t, filepath.Join(sys, "size"), strconv.FormatInt(d.size/512, 10)+"\n")
		if d.model != "" {
			write(t, filepath.Join(sys, "device/model"), d.model+"   \n")
		}
		if d.serial != "" {
			write(t, filepath.Join(sys, "device/serial"), d.serial+"\n")
		}
		if !d.noDev {
			randomFile(t, filepath.Join(root, "dev", d.name), d.size)
		}
	}
	return root
}

// randomFile writes size bytes of random data to path.
func randomFile(t testing.TB, path string, size int64) {
	t.Helper()
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	f, err := os.Create(path)
	must(t, err)
	_, err = io.CopyN(f, mrand.NewChaCha8(seed), size)
	must(t, err)
	must(t, f.Close())
}

func write(t testing.TB, path, content string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, []byte(content), 0o644))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// readAt reads n bytes of path at off.
func readAt(t testing.TB, path string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer func() { _ = f.Close() }()
	b := make([]byte, n)
	_, err = f.ReadAt(b, off)
	must(t, err)
	return b
}

// dirtyRegions returns the regions of path, of those given, that are not all zero.
func dirtyRegions(t testing.TB, path string, rs []region) []region {
	t.Helper()
	var dirty []region
	for _, r := range rs {
		if !bytes.Equal(readAt(t, path, r.off, r.end-r.off), make([]byte, r.end-r.off)) {
			dirty = append(dirty, r)
		}
	}
	return dirty
}
