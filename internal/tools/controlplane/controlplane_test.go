package controlplane

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/tools/procfs"
)

// startFake starts a long-running child whose executable lives in dir, as envtest starts
// etcd from the assets folder.
func startFake(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "etcd")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd
}

// TestReapOrphans: the control plane of a live owner is left alone; once its owner is gone
// (here: the record names a process that no longer exists), it is killed, and only
// processes running from the assets folder are.
func TestReapOrphans(t *testing.T) {
	g := NewWithT(t)
	runDirOverride = t.TempDir()
	t.Cleanup(func() { runDirOverride = "" })
	assets, other := t.TempDir(), t.TempDir()
	child := startFake(t, assets)
	foreign := startFake(t, other)

	untrack, err := TrackControlPlane(assets)
	g.Expect(err).NotTo(HaveOccurred())
	record := filepath.Join(runDirOverride, strconv.Itoa(os.Getpid()))
	data, err := os.ReadFile(record)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(data)).To(ContainSubstring(strconv.Itoa(child.Process.Pid) + ":"))
	g.Expect(string(data)).NotTo(ContainSubstring(strconv.Itoa(foreign.Process.Pid)+":"), "not from the assets folder")

	killed, err := ReapOrphans(assets)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(killed).To(BeEmpty(), "the owner (this test) still runs")
	g.Expect(procfs.Alive(child.Process.Pid)).To(BeTrue())

	// A record whose pids now name other processes (another start time) kills nothing.
	entry := func(pid int, started string) string { return strconv.Itoa(pid) + ":" + started }
	childStat, err := procfs.ReadStat(child.Process.Pid)
	g.Expect(err).NotTo(HaveOccurred())
	foreignStat, err := procfs.ReadStat(foreign.Process.Pid)
	g.Expect(err).NotTo(HaveOccurred())
	stale := filepath.Join(runDirOverride, "999999")
	g.Expect(os.WriteFile(stale, []byte("999999 12345\n"+entry(child.Process.Pid, "1")+"\n"), 0o644)).To(Succeed())
	killed, err = ReapOrphans(assets)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(killed).To(BeEmpty(), "the pid was reused")
	g.Expect(procfs.Alive(child.Process.Pid)).To(BeTrue())
	g.Expect(stale).NotTo(BeAnExistingFile())

	// The owner is gone: same pid, another start time.
	g.Expect(os.WriteFile(record, []byte(strconv.Itoa(os.Getpid())+" 1\n"+
		entry(child.Process.Pid, childStat.StartTime)+" "+entry(foreign.Process.Pid, foreignStat.StartTime)+"\n"), 0o644)).To(Succeed())
	killed, err = ReapOrphans(assets)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(killed).To(ConsistOf(child.Process.Pid))
	_, _ = child.Process.Wait()
	g.Expect(procfs.Alive(foreign.Process.Pid)).To(BeTrue(), "a process from another folder is not touched")
	g.Expect(record).To(BeAnExistingFile(), "kept for the run that uses the other folder")

	_ = foreign.Process.Kill()
	_, _ = foreign.Process.Wait()
	g.Eventually(func() bool { return procfs.Alive(foreign.Process.Pid) }, 5*time.Second, 20*time.Millisecond).Should(BeFalse())
	_, err = ReapOrphans(assets)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(record).NotTo(BeAnExistingFile(), "nothing left to reap")
	untrack()
}
