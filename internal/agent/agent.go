// Package agent is the in-band agent that runs on a machine booted over the network
// (cmd/metal-agent): Discover collects what the machine sees of itself and its links, Post
// sends a report to the boot server, CmdlineParams reads where to and with which credential.
//
// Everything it reads can come from another filesystem root (Options.Root): fixture trees
// (internal/agent/fixture) stand in for a machine in tests and in the embedded environment.
package agent

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/metalfleet/metal-operator/internal/agent/lldp"
	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// LLDP listening bounds.
const (
	DefaultLLDPTimeout = 30 * time.Second
	MaxLLDPTimeout     = 2 * time.Minute
	// MaxListeners bounds the links listened on at once.
	MaxListeners = 64
)

// Options says where Discover looks.
type Options struct {
	// Root is the filesystem root the facts are read from; "/" (the default) is this machine,
	// anything else a fixture tree, where NIC addresses and LLDP frames come from files too.
	Root string
	// LLDPTimeout bounds the listen for LLDP frames on each link (default DefaultLLDPTimeout,
	// at most MaxLLDPTimeout); all links are listened on at once.
	LLDPTimeout time.Duration
	// Version is reported as the agent version.
	Version string
}

func (o Options) withDefaults() Options {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.LLDPTimeout <= 0 {
		o.LLDPTimeout = DefaultLLDPTimeout
	}
	o.LLDPTimeout = min(o.LLDPTimeout, MaxLLDPTimeout)
	return o
}

// live reports whether the options describe this machine rather than a fixture tree.
func (o Options) live() bool { return filepath.Clean(o.Root) == "/" }

// Discover collects the facts of the machine at o.Root. A collector that fails leaves its part
// of the report empty and adds a warning; only a cancelled ctx fails the discovery. A machine
// without a readable DMI product UUID (reading it needs root) gets a report without one, which
// report.Validate refuses: callers validate before they send.
func Discover(ctx context.Context, o Options) (*report.Discovery, []error, error) {
	o = o.withDefaults()
	d := &report.Discovery{AgentVersion: clean(o.Version)}
	var warnings []error
	warn := func(what string, err error) {
		if err != nil {
			warnings = append(warnings, fmt.Errorf("%s: %w", what, err))
		}
	}

	warn("identity", collect(func() (err error) {
		d.SystemUUID, d.Vendor, d.Product, d.Serial, err = identity(o.Root)
		return err
	}))
	warn("cpus", collect(func() (err error) { d.CPUs, err = cpus(o.Root); return err }))
	warn("memory", collect(func() (err error) { d.MemoryBytes, err = memory(o.Root); return err }))
	warn("block devices", collect(func() (err error) { d.BlockDevices, err = blockDevices(o.Root); return err }))
	warn("pci devices", collect(func() (err error) { d.PCIDevices, err = pciDevices(o.Root); return err }))
	var nicWarnings []error
	warn("nics", collect(func() (err error) { d.NICs, nicWarnings, err = nics(ctx, o); return err }))
	warnings = append(warnings, nicWarnings...)
	if err := ctx.Err(); err != nil {
		return nil, warnings, err
	}
	return d, warnings, nil
}

// collect runs one collector, turning a panic in a library it calls into an error: one
// collector's bad day must not cost the whole report.
func collect(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("collector panicked: %v", r)
		}
	}()
	return f()
}

// maxFileBytes bounds what is read of one sysfs, procfs or fixture file.
const maxFileBytes = 64 << 10

// readFile reads at most maxFileBytes of path.
func readFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes))
	return string(b), err
}

// attr reads a one-value sysfs attribute as clean text, "" when it cannot be read.
func attr(path string) string {
	s, err := readFile(path)
	if err != nil {
		return ""
	}
	return clean(s)
}

// clean makes text read from the machine printable and cuts it to report.MaxString.
func clean(s string) string { return lldp.Printable([]byte(s)) }
