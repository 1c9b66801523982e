// Package cli is the command line of cmd/metal-agent: its flags and what each mode does. The
// machine simulator (internal/testing/machine) runs the same code in-process with the same
// arguments it would give the binary.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-logr/logr"

	"github.com/metalfleet/metal-operator/internal/agent"
	"github.com/metalfleet/metal-operator/internal/agent/report"
	"github.com/metalfleet/metal-operator/internal/agent/wipe"
)

// config is the parsed command line.
type config struct {
	root          string
	mode          string
	server        string
	credential    string
	lldpTimeout   time.Duration
	wipePolicy    string
	dryRun        bool
	sourceAddress string
	version       bool
}

// Run parses args and does what they say: discover the machine or wipe its disks, and report
// to the boot server (or print the report with --dry-run). Logs go to stderr, never with the
// credential; the report of --dry-run goes to stdout.
func Run(ctx context.Context, version string, args []string, stdout, stderr io.Writer) error {
	c, err := parse(args, stderr)
	if err != nil {
		return err
	}
	if c.version {
		_, err := fmt.Fprintln(stdout, version)
		return err
	}
	if err := c.complete(); err != nil {
		return err
	}
	r := &runner{config: c, log: slog.New(slog.NewTextHandler(stderr, nil)), stdout: stdout}
	if !c.dryRun {
		if r.client, err = agent.NewClient(c.sourceAddress); err != nil {
			return err
		}
	}
	if c.mode == agent.ModeWipe {
		return r.wipe(ctx)
	}
	return r.discover(ctx, version)
}

func parse(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("metal-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.root, "root", "/", "filesystem root to read the machine from (a fixture tree in tests)")
	fs.StringVar(&c.mode, "mode", "", "discover or wipe (default: the kernel parameter "+agent.CmdlineMode+", else discover)")
	fs.StringVar(&c.server, "server", "", "boot server URL (default: the kernel parameter "+report.CmdlineServer+")")
	fs.StringVar(&c.credential, "credential", "", "boot credential (default: the kernel parameter "+report.CmdlineCredential+")")
	fs.DurationVar(&c.lldpTimeout, "lldp-timeout", agent.DefaultLLDPTimeout, fmt.Sprintf("how long to listen for LLDP frames on each link (at most %s)", agent.MaxLLDPTimeout))
	fs.StringVar(&c.wipePolicy, "wipe-policy", "", "Quick or Secure, in wipe mode (default: the kernel parameter "+agent.CmdlineWipePolicy+", else Quick)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "print the report as JSON to stdout instead of sending it")
	fs.StringVar(&c.sourceAddress, "source-address", "", "local IP address to send from (for machines simulated on loopback addresses)")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return c, nil
}

// complete fills what the flags left open from the kernel command line and checks the result.
func (c *config) complete() error {
	params, err := agent.Cmdline(c.root)
	if err != nil && (c.server == "" || c.credential == "") && !c.dryRun {
		return fmt.Errorf("no --server and --credential, and %w", err)
	}
	fill := func(v *string, key, fallback string) {
		if *v == "" {
			*v = params[key]
		}
		if *v == "" {
			*v = fallback
		}
	}
	fill(&c.mode, agent.CmdlineMode, agent.ModeDiscover)
	fill(&c.wipePolicy, agent.CmdlineWipePolicy, report.PolicyQuick)
	fill(&c.server, report.CmdlineServer, "")
	fill(&c.credential, report.CmdlineCredential, "")
	switch {
	case c.mode != agent.ModeDiscover && c.mode != agent.ModeWipe:
		return fmt.Errorf("--mode must be %s or %s, got %q", agent.ModeDiscover, agent.ModeWipe, c.mode)
	case c.wipePolicy != report.PolicyQuick && c.wipePolicy != report.PolicySecure:
		return fmt.Errorf("--wipe-policy must be %s or %s, got %q", report.PolicyQuick, report.PolicySecure, c.wipePolicy)
	case c.lldpTimeout <= 0 || c.lldpTimeout > agent.MaxLLDPTimeout:
		return fmt.Errorf("--lldp-timeout must be positive and at most %s, got %s", agent.MaxLLDPTimeout, c.lldpTimeout)
	case c.dryRun:
		return nil
	case c.server == "":
		return fmt.Errorf("no --server and no %s kernel parameter", report.CmdlineServer)
	case c.credential == "":
		return fmt.Errorf("no --credential and no %s kernel parameter", report.CmdlineCredential)
	}
	return nil
}

type runner struct {
	config
	log    *slog.Logger
	client *http.Client
	stdout io.Writer
}

func (r *runner) discover(ctx context.Context, version string) error {
	d, warnings, err := agent.Discover(ctx, agent.Options{Root: r.root, LLDPTimeout: r.lldpTimeout, Version: version})
	if err != nil {
		return err
	}
	for _, w := range warnings {
		r.log.Warn("Collecting a part of the report failed", "error", w)
	}
	r.log.Info("Discovered the machine", "systemUUID", d.SystemUUID, "cpus", len(d.CPUs), "memoryBytes", d.MemoryBytes,
		"blockDevices", len(d.BlockDevices), "nics", len(d.NICs), "pciDevices", len(d.PCIDevices))
	// A dry run prints even a report the boot server would refuse, to show what is missing.
	if err := d.Validate(); err != nil {
		err = fmt.Errorf("the discovery report is not valid: %w", err)
		if r.dryRun {
			return errors.Join(r.send(ctx, report.DiscoveryPath, d), err)
		}
		return err
	}
	return r.send(ctx, report.DiscoveryPath, d)
}

// wipe wipes the disks and sends the report, also of a wipe that failed (the operator decides
// from it); the run fails when any disk failed.
func (r *runner) wipe(ctx context.Context) error {
	w, err := wipe.Run(ctx, wipe.Options{Root: r.root, Policy: r.wipePolicy, Log: logr.FromSlogHandler(r.log.Handler())})
	if w == nil {
		if err == nil {
			err = errors.New("the wipe made no report")
		}
		return fmt.Errorf("wiping: %w", err)
	}
	if w.SystemUUID == "" {
		if w.SystemUUID, err = agent.SystemUUID(r.root); err != nil {
			return err
		}
	}
	if err := w.Validate(); err != nil {
		return fmt.Errorf("the wipe report is not valid: %w", err)
	}
	r.log.Info("Wiped the disks", "systemUUID", w.SystemUUID, "policy", w.Policy, "disks", len(w.Disks), "succeeded", w.Succeeded())
	if err := r.send(ctx, report.WipePath, w); err != nil {
		return err
	}
	if d, failed := w.FirstFailure(); failed {
		return fmt.Errorf("the wipe of %s failed", d.Path)
	}
	return nil
}

func (r *runner) send(ctx context.Context, path string, body any) error {
	if r.dryRun {
		enc := json.NewEncoder(r.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(body)
	}
	if err := agent.Post(ctx, r.client, r.server, r.credential, path, body); err != nil {
		return err
	}
	r.log.Info("Sent the report", "server", r.server, "path", path)
	return nil
}
