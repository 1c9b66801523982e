// Command claimbench measures how fast and how cheaply the operator binds bursts of claims:
// see internal/tools/bench. Each case is SERVERSxCLAIMS, or SERVERSxCLAIMS:set for one
// ServerClaimSet of CLAIMS replicas spread over the racks; cases run one after another, each on
// a fresh control plane. SERVERSxCLAIMS:steady keeps the operator running for
// --steady-duration after the burst settled and reports what it does meanwhile.
//
//	go run ./cmd/claimbench --cases 100x100,1000x1000,500x1000
//	go run ./cmd/claimbench --racks 50 --cases 1000x500,1000x500:set
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/metalfleet/metal-operator/internal/tools/bench"
	"github.com/metalfleet/metal-operator/internal/tools/paths"
)

func main() {
	cases := flag.String("cases", "100x100,1000x1000,500x1000", "Comma-separated SERVERSxCLAIMS cases; :set makes the burst one ServerClaimSet, :floor makes the harness write the design's floor itself (no operator) for the same burst, :steady measures the operator for --steady-duration after the burst.")
	binary := flag.String("operator", "bin/metal-operator", "The operator binary to run.")
	workDir := flag.String("workdir", "bin/bench", "Folder for audit logs, kubeconfigs and operator logs.")
	timeout := flag.Duration("timeout", 10*time.Minute, "How long one case may take to settle.")
	quiet := flag.Duration("quiet", 3*time.Second, "Idle time before the burst and counting time after it.")
	out := flag.String("out", "", "Also write the Markdown table to this file.")
	profile := flag.Int("profile-seconds", 0, "Take CPU profiles of the operator and of the API server this long from the burst on (written to the case's workdir as cpu.pprof and cpu.pprof.apiserver).")
	operatorArgs := flag.String("operator-args", "", "Extra flags for the operator, space-separated.")
	racks := flag.Int("racks", 40, "Racks the servers are spread over (label rack).")
	steady := flag.Duration("steady-duration", 10*time.Minute, "How long a :steady case keeps the operator running after the burst settled.")
	resync := flag.Duration("server-resync-interval", 0, "The operator's --server-resync-interval (default: a quarter of --steady-duration in :steady cases, else 30m).")
	flag.Parse()
	ctrllog.SetLogger(logr.Discard())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root, err := paths.RootDir()
	if err != nil {
		fail(err)
	}
	bin, _ := filepath.Abs(*binary)
	var results []bench.Result
	for _, c := range strings.Split(*cases, ",") {
		spec, isSteady := strings.CutSuffix(strings.TrimSpace(c), ":steady")
		spec, floor := strings.CutSuffix(spec, ":floor")
		spec, set := strings.CutSuffix(spec, ":set")
		servers, claims, err := parseCase(spec)
		if err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "== %d servers / %d claims\n", servers, claims)
		var steadyFor, resyncEvery time.Duration
		if isSteady {
			steadyFor, resyncEvery = *steady, *steady/4
		}
		if *resync > 0 {
			resyncEvery = *resync
		}
		res, err := bench.Run(ctx, bench.Config{
			Steady: steadyFor, ResyncInterval: resyncEvery,
			Servers: servers, Claims: claims, Racks: *racks, Set: set, Floor: floor,
			ManagerBinary:  bin,
			ManagerArgs:    strings.Fields(*operatorArgs),
			ProfileSeconds: *profile,
			ProfilePath:    profilePath(*profile, filepath.Join(*workDir, strings.ReplaceAll(c, ":", "-"))),
			RootDir:        root, AssetsDir: paths.AssetsDir(root),
			WorkDir: filepath.Join(*workDir, strings.ReplaceAll(c, ":", "-")),
			Timeout: *timeout, Quiet: *quiet,
			Log: func(format string, args ...any) { fmt.Fprintf(os.Stderr, "   "+format+"\n", args...) },
		})
		if err != nil {
			fail(fmt.Errorf("case %s: %w", c, err))
		}
		fmt.Fprintf(os.Stderr, "   requests: %s\n   after settled: %v\n   unbound reasons: %v\n   invariants: %s\n",
			bench.RequestBreakdown(res), res.RequestsAfterByKind, res.UnboundReasons, res.Invariants)
		if st := res.Steady; st != nil {
			fmt.Fprintf(os.Stderr, "   steady: %v\n   steady Redfish per server: %s\n", st.ByKind, bench.PerServer(st.RedfishByShape, st.Servers))
		}
		results = append(results, res)
	}
	table := bench.Markdown(results) + "\n" + bench.SteadyMarkdown(results)
	fmt.Print(table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			fail(err)
		}
	}
}

func profilePath(seconds int, dir string) string {
	if seconds <= 0 {
		return ""
	}
	return filepath.Join(dir, "cpu.pprof")
}

func parseCase(s string) (servers, claims int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "x")
	if !ok {
		return 0, 0, fmt.Errorf("case %q is not SERVERSxCLAIMS", s)
	}
	if servers, err = strconv.Atoi(a); err != nil {
		return 0, 0, err
	}
	claims, err = strconv.Atoi(b)
	return servers, claims, err
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "claimbench:", err)
	os.Exit(1)
}
