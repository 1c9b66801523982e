// Package procfs reads what the benchmark and the control-plane bookkeeping need to know
// about processes from Linux's /proc.
package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ on Linux).
const userHZ = 100

// Stat is what /proc/<pid>/stat says about a process.
type Stat struct {
	// Comm is the command name (the executable's name, cut to 15 bytes).
	Comm string
	// PPID is the parent's pid.
	PPID int
	// StartTime is when the process started, in clock ticks since boot: with the pid it
	// names one process, even after the pid is reused.
	StartTime string
	// CPUSeconds is the process's user and system CPU time.
	CPUSeconds float64
}

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	// The command name is in parentheses and may contain spaces and parentheses itself.
	s := string(data)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open || closing+2 > len(s) {
		return Stat{}, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(s[closing+2:])
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("/proc/%d/stat: parent: %w", pid, err)
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return Stat{Comm: s[open+1 : closing], PPID: ppid, StartTime: f[19], CPUSeconds: (utime + stime) / userHZ}, nil
}

// Processes lists the pids in /proc.
func Processes() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Alive reports whether a process with the pid exists.
func Alive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// Executable is the path of the process's executable.
func Executable(pid int) (string, error) {
	return os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
}
