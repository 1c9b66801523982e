// Package paths finds the repository root and the control-plane binaries, for the commands
// and tests that run a local control plane.
package paths

import (
	"errors"
	"os"
	"path/filepath"
)

// RootDir finds the repository root: the nearest parent folder with a go.mod.
func RootDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// AssetsDir is where the control-plane binaries are: $KUBEBUILDER_ASSETS, or bin/k8s.
func AssetsDir(root string) string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	return filepath.Join(root, "bin", "k8s")
}
