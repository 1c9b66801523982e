package wipe

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkOverwrite measures the Secure overwrite of a 256 MiB file, fsync included:
//
//	go test -run '^$' -bench Overwrite -benchtime 5x ./internal/agent/wipe/
func BenchmarkOverwrite(b *testing.B) {
	const size = 256 * mib
	path := filepath.Join(b.TempDir(), "disk.img")
	must(b, os.WriteFile(path, nil, 0o600))
	must(b, os.Truncate(path, size))
	b.SetBytes(size)
	for b.Loop() {
		dev, err := openDevice(path)
		must(b, err)
		must(b, dev.zero(b.Context(), 0, dev.size, nil))
		must(b, dev.flush())
		must(b, dev.f.Close())
	}
}
