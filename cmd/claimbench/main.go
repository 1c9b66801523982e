// Command claimbench measures how fast and how cheaply the operator binds bursts of claims:
// see internal/tools/bench. Each case is SERVERSxCLAIMS, or SERVERSxCLAIMS:set for one
// ServerClaimSet of CLAIMS replicas spread over the racks; cases run one after another, each on
// a fresh control plane. SERVERSxCLAIMS:steady keeps the operator running for
// --steady-duration after the burst settled and reports what it does meanwhile.
// SERVERSxCLAIMS:boot runs the boot service with one image in a local registry and goes on
// until every boot configuration is Ready, every server On and every iPXE script fetched.
// SERVERS:onboard creates --bmcs BMCs, each reaching its own emulator of SERVERS/--bmcs
// systems, and measures until every Server is Available; SERVERS:onboard:floor makes the
// design's writes of that onboarding itself, without the operator.
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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/metalfleet/metal-operator/internal/tools/bench"
	"github.com/metalfleet/metal-operator/internal/tools/paths"
)

func main() {
	cases := flag.String("cases", "100x100,1000x1000,500x1000", "Comma-separated SERVERSxCLAIMS cases; :set makes the burst one ServerClaimSet, :floor makes the harness write the design's floor itself (no operator) for the same burst, :steady measures the operator for --steady-duration after the burst, :boot goes on until every claimed server is On and fetched its iPXE script; SERVERS:onboard[:floor] enrols --bmcs BMCs.")
	binary := flag.String("operator", "bin/metal-operator", "The operator binary to run.")
	workDir := flag.String("workdir", "bin/bench", "Folder for audit logs, kubeconfigs and operator logs.")
	timeout := flag.Duration("timeout", 10*time.Minute, "How long one case may take to settle.")
	quiet := flag.Duration("quiet", 3*time.Second, "Idle time before the burst and counting time after it.")
	out := flag.String("out", "", "Also write the Markdown table to this file.")
	profile := flag.Int("profile-seconds", 0, "Take CPU profiles of the operator and of the API server this long from the burst on (written to the case's workdir as cpu.pprof and cpu.pprof.apiserver).")
	operatorArgs := flag.String("operator-args", "", "Extra flags for the operator, space-separated.")
	racks := flag.Int("racks", 40, "Racks the servers are spread over (label rack).")
	bmcs := flag.Int("bmcs", 10, "BMCs an :onboard case spreads its servers over, one emulator each.")
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
	var onboards []bench.OnboardResult
	for _, c := range strings.Split(*cases, ",") {
		if spec, ok := strings.CutSuffix(strings.TrimSuffix(strings.TrimSpace(c), ":floor"), ":onboard"); ok {
			res, err := runOnboard(ctx, c, spec, strings.HasSuffix(c, ":floor"), *bmcs, bench.Config{
				ManagerBinary: bin, ManagerArgs: strings.Fields(*operatorArgs),
				RootDir: root, AssetsDir: paths.AssetsDir(root),
				WorkDir: filepath.Join(*workDir, strings.ReplaceAll(c, ":", "-")),
				Timeout: *timeout, Quiet: *quiet, ResyncInterval: *resync,
			})
			if err != nil {
				fail(fmt.Errorf("case %s: %w", c, err))
			}
			onboards = append(onboards, res)
			continue
		}
		spec, isSteady := strings.CutSuffix(strings.TrimSpace(c), ":steady")
		spec, boot := strings.CutSuffix(spec, ":boot")
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
			Steady: steadyFor, ResyncInterval: resyncEvery, Boot: boot,
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
	var table string
	if len(results) > 0 {
		table = bench.Markdown(results)
	}
	if slices.ContainsFunc(results, func(r bench.Result) bool { return r.Steady != nil }) {
		table += "\n" + bench.SteadyMarkdown(results)
	}
	if slices.ContainsFunc(results, func(r bench.Result) bool { return r.Boot != nil }) {
		table += "\n" + bench.BootMarkdown(results)
	}
	if len(onboards) > 0 {
		table += "\n" + bench.OnboardMarkdown(onboards)
	}
	fmt.Print(table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			fail(err)
		}
	}
}

// runOnboard runs case c, SERVERS:onboard[:floor]: bmcs BMCs of SERVERS/bmcs systems each.
func runOnboard(ctx context.Context, c, spec string, floor bool, bmcs int, cfg bench.Config) (bench.OnboardResult, error) {
	servers, err := strconv.Atoi(spec)
	if err != nil {
		return bench.OnboardResult{}, fmt.Errorf("case %q is not SERVERS:onboard", c)
	}
	if bmcs <= 0 || servers%bmcs != 0 {
		return bench.OnboardResult{}, fmt.Errorf("case %q: %d servers do not divide over %d BMCs", c, servers, bmcs)
	}
	fmt.Fprintf(os.Stderr, "== onboarding %d BMCs x %d systems (floor: %v)\n", bmcs, servers/bmcs, floor)
	cfg.Floor = floor
	cfg.Log = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "   "+format+"\n", args...) }
	res, err := bench.RunOnboard(ctx, cfg, bench.OnboardConfig{BMCs: bmcs, SystemsPerBMC: servers / bmcs})
	if err != nil {
		return res, err
	}
	fmt.Fprintf(os.Stderr, "   requests: %v\n   Redfish per server: %s\n", res.ByKind, bench.PerServer(res.RedfishByShape, res.Servers))
	return res, nil
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
