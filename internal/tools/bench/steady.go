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
	// Writes (events apart: Events) and Reads (get, list) the operator sent, counted by the
	// API server; ByKind breaks them down by "verb resource[/subresource]".
	Writes, Events, Reads int
	ByKind                map[string]int
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
	st := SteadyResult{Duration: cfg.Steady, ResyncInterval: cfg.ResyncInterval, Servers: servers, ByKind: map[string]int{}}
	if st.ResyncInterval <= 0 {
		st.ResyncInterval = 30 * time.Minute
	}
	from := audit.offset()
	redfishBefore := countAll(bmcs)
	cpuBefore, err := cpuSeconds(pid)
	if err != nil {
		return st, err
	}
	apiBefore, etcdBefore := childCPU("kube-apiserver"), childCPU("etcd")
	start := time.Now()
	select {
	case <-ctx.Done():
		return st, ctx.Err()
	case <-time.After(cfg.Steady):
	}
	end := time.Now()
	cpuAfter, err := cpuSeconds(pid)
	if err != nil {
		return st, err
	}
	st.CPUSeconds = cpuAfter - cpuBefore
	st.APIServerCPUSeconds = childCPU("kube-apiserver") - apiBefore
	st.EtcdCPUSeconds = childCPU("etcd") - etcdBefore
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
		if e.User.Username != operatorUser || e.Verb == "watch" ||
			e.RequestReceivedTimestamp.Before(start) || !e.RequestReceivedTimestamp.Before(end) {
			continue
		}
		st.ByKind[requestKey(e)]++
		switch {
		case e.ObjectRef.Resource == "events":
			st.Events++
		case isWrite(e.Verb):
			st.Writes++
		default:
			st.Reads++
		}
	}
	return st, nil
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
