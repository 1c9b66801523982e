package bench

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// SteadyResult is what the operator did while nothing changed: after a case settled, for
// Config.Steady.
type SteadyResult struct {
	Duration, ResyncInterval time.Duration
	Servers                  int
	// RequestTally is what the operator sent to the API server meanwhile.
	RequestTally
	// Redfish is the requests the BMCs received meanwhile; RedfishByShape by method and path.
	Redfish        int
	RedfishByShape map[string]int
	// CPUSeconds is the operator's CPU time meanwhile; APIServerCPUSeconds and
	// EtcdCPUSeconds the control plane's.
	CPUSeconds, APIServerCPUSeconds, EtcdCPUSeconds float64
}

// RedfishPerServerPerResync is the BMC requests per server per resync interval.
func (s SteadyResult) RedfishPerServerPerResync() float64 {
	intervals := s.Duration.Seconds() / s.ResyncInterval.Seconds()
	return float64(s.Redfish) / float64(max(s.Servers, 1)) / intervals
}

// CPUPerMinute is the operator's CPU seconds per minute.
func (s SteadyResult) CPUPerMinute() float64 { return s.CPUSeconds / s.Duration.Minutes() }

// isWrite reports whether an audit verb changes state.
func isWrite(verb string) bool {
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

// measureSteady lets the operator (process pid) run for cfg.Steady and counts its API
// requests, the BMCs' requests and its CPU time meanwhile.
func measureSteady(ctx context.Context, cfg Config, audit *auditReader, bmcs []*countedBMC, pid, servers int) (SteadyResult, error) {
	st := SteadyResult{Duration: cfg.Steady, ResyncInterval: cfg.ResyncInterval, Servers: servers, RequestTally: RequestTally{ByKind: map[string]int{}}}
	if st.ResyncInterval <= 0 {
		st.ResyncInterval = 30 * time.Minute
	}
	from := audit.offset()
	redfishBefore := countAll(bmcs)
	cpu, err := startCPU(pid)
	if err != nil {
		return st, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return st, ctx.Err()
	case <-time.After(cfg.Steady):
	}
	end := time.Now()
	if st.CPUSeconds, st.APIServerCPUSeconds, st.EtcdCPUSeconds, err = cpu.read(); err != nil {
		return st, err
	}
	rf := countAll(bmcs).since(redfishBefore)
	st.Redfish, st.RedfishByShape = rf.total, rf.byShape

	// Let the audit batch (1 s) flush, then count what was received in the window.
	select {
	case <-ctx.Done():
		return st, ctx.Err()
	case <-time.After(2 * time.Second):
	}
	events, err := audit.read(from)
	if err != nil {
		return st, err
	}
	for _, e := range events {
		if !e.RequestReceivedTimestamp.Before(start) && e.RequestReceivedTimestamp.Before(end) {
			st.add(e)
		}
	}
	return st, nil
}

// RequestTally counts the operator's requests (watches excluded), as the API server's audit
// log saw them: Writes (events apart: Events) and Reads (get, list), and all of them by
// "verb resource[/subresource]" in ByKind.
type RequestTally struct {
	Writes, Events, Reads int
	ByKind                map[string]int
}

// add counts e if it is a request of the operator.
func (t *RequestTally) add(e auditEvent) {
	if e.User.Username != operatorUser || e.Verb == "watch" {
		return
	}
	if t.ByKind == nil {
		t.ByKind = map[string]int{}
	}
	t.ByKind[requestKey(e)]++
	switch {
	case e.ObjectRef.Resource == "events":
		t.Events++
	case isWrite(e.Verb):
		t.Writes++
	default:
		t.Reads++
	}
}

// cpuMeter measures the CPU time of a process and of the control plane from its start.
type cpuMeter struct {
	pid             int
	proc, api, etcd float64
}

func startCPU(pid int) (cpuMeter, error) {
	proc, err := cpuSeconds(pid)
	return cpuMeter{pid: pid, proc: proc, api: childCPU("kube-apiserver"), etcd: childCPU("etcd")}, err
}

// read returns the CPU seconds of the process, the API server and etcd since the start.
func (m cpuMeter) read() (proc, api, etcd float64, err error) {
	proc, err = cpuSeconds(m.pid)
	return proc - m.proc, childCPU("kube-apiserver") - m.api, childCPU("etcd") - m.etcd, err
}

// requestKey is "verb resource[/subresource]".
func requestKey(e auditEvent) string {
	key := e.Verb + " " + e.ObjectRef.Resource
	if e.ObjectRef.Subresource != "" {
		key += "/" + e.ObjectRef.Subresource
	}
	return key
}

// SteadyMarkdown renders the steady-state results as a table.
func SteadyMarkdown(results []Result) string {
	var b strings.Builder
	b.WriteString("| servers / claims | duration (resync interval) | API writes (events) | API reads | Redfish requests per server per resync | operator CPU per minute | API server / etcd CPU |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		s := r.Steady
		if s == nil {
			continue
		}
		fmt.Fprintf(&b, "| %d / %d | %s (%s) | %d (+%d) | %d | %.2f | %.2f s | %.1f s / %.1f s |\n",
			r.Servers, r.Claims, s.Duration, s.ResyncInterval, s.Writes, s.Events, s.Reads,
			s.RedfishPerServerPerResync(), s.CPUPerMinute(), s.APIServerCPUSeconds, s.EtcdCPUSeconds)
	}
	return b.String()
}
