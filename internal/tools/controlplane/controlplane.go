// Package controlplane starts the kube-apiserver and etcd that tests, the benchmark and the
// embedded environment use, and cleans up after runs that died without stopping them.
package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/metalfleet/metal-operator/internal/tools/procfs"
)

// A test binary that panics (a test timeout does) or is killed exits without stopping the
// kube-apiserver and etcd it started; they keep running, idle but holding memory and CPU,
// and skew every benchmark after them. TrackControlPlane records, in a file per process,
// the control-plane children this process started; ReapOrphans, called before a new control
// plane starts, kills those whose owner is gone.

// Start starts env's control plane after killing the orphans of earlier runs,
// and records it, so that a later run kills it if this process dies without calling stop.
func Start(env *envtest.Environment) (cfg *rest.Config, stop func() error, err error) {
	assets := env.BinaryAssetsDirectory
	if killed, err := ReapOrphans(assets); err == nil && len(killed) > 0 {
		fmt.Fprintf(os.Stderr, "killed control-plane processes left behind by an earlier run: %v\n", killed)
	}
	cfg, err = env.Start()
	if err != nil {
		return nil, nil, err
	}
	untrack, err := TrackControlPlane(assets)
	if err != nil {
		fmt.Fprintf(os.Stderr, "not recording the control plane's processes: %v\n", err)
	}
	return cfg, func() error {
		defer untrack()
		return env.Stop()
	}, nil
}

// runDirOverride replaces the run directory in tests.
var runDirOverride string

// runDir holds one file per process that runs a control plane.
func runDir() (string, error) {
	if runDirOverride != "" {
		return runDirOverride, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "metal-operator", "run"), nil
}

// TrackControlPlane records the children of this process that run a binary from assetsDir
// (the kube-apiserver and etcd envtest just started). The returned function forgets them,
// for a control plane stopped normally.
func TrackControlPlane(assetsDir string) (untrack func(), err error) {
	dir, err := runDir()
	if err != nil {
		return func() {}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return func() {}, err
	}
	self := os.Getpid()
	me, err := procfs.ReadStat(self)
	if err != nil {
		return func() {}, err
	}
	// Each child as pid:starttime, so that a pid reused by another process is never killed.
	var children []string
	for _, pid := range procfs.Processes() {
		if st, err := procfs.ReadStat(pid); err == nil && st.PPID == self && runsFrom(pid, assetsDir) {
			children = append(children, fmt.Sprintf("%d:%s", pid, st.StartTime))
		}
	}
	path := filepath.Join(dir, strconv.Itoa(self))
	content := fmt.Sprintf("%d %s\n%s\n", self, me.StartTime, strings.Join(children, " "))
	// Written whole under another name and renamed: a reader never sees it half written.
	tmp, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return func() {}, err
	}
	_, werr := tmp.WriteString(content)
	if err := errors.Join(werr, tmp.Close()); err != nil {
		_ = os.Remove(tmp.Name())
		return func() {}, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return func() {}, err
	}
	return func() { _ = os.Remove(path) }, nil
}

// ReapOrphans kills the control-plane processes recorded by a process that is gone, if they
// still run a binary from assetsDir, and returns their pids.
func ReapOrphans(assetsDir string) ([]int, error) {
	dir, err := runDir()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var killed []int
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue // being written
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		lines := strings.SplitN(string(data), "\n", 3)
		if len(lines) < 2 {
			_ = os.Remove(path)
			continue
		}
		owner := strings.Fields(lines[0])
		if len(owner) == 2 {
			if pid, err := strconv.Atoi(owner[0]); err == nil {
				if st, err := procfs.ReadStat(pid); err == nil && st.StartTime == owner[1] {
					continue // the owner still runs: its control plane is in use
				}
			}
		}
		others := false
		for _, f := range strings.Fields(lines[1]) {
			pidText, started, _ := strings.Cut(f, ":")
			pid, err := strconv.Atoi(pidText)
			if err != nil || !procfs.Alive(pid) {
				continue
			}
			if st, err := procfs.ReadStat(pid); err != nil || st.StartTime != started {
				continue // the pid now names another process
			}
			if !runsFrom(pid, assetsDir) {
				others = true // another assets folder's: left to a run that uses it
				continue
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				killed = append(killed, pid)
			}
		}
		if !others {
			_ = os.Remove(path)
		}
	}
	return killed, nil
}

// runsFrom reports whether the process's executable is in dir.
func runsFrom(pid int, dir string) bool {
	exe, err := procfs.Executable(pid)
	if err != nil {
		return false
	}
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		want = dir
	}
	return filepath.Dir(exe) == filepath.Clean(want) || filepath.Dir(exe) == filepath.Clean(dir)
}
