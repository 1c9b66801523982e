// Command redfish-emulator serves an emulated Redfish BMC for development and manual tests.
//
// On start it prints one JSON document to stdout describing the endpoint and its systems,
// then serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "redfish-emulator:", err)
		}
		stop()
		os.Exit(1)
	}
}

// run parses args, starts the emulator, writes the startup document to stdout and serves
// until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("redfish-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8000", "address to listen on")
	systems := fs.Int("systems", 1, "number of emulated systems")
	seed := fs.String("uuid-seed", "", "seed for deterministic system UUIDs (random if empty)")
	username := fs.String("username", emulator.DefaultUsername, "accepted user name")
	password := fs.String("password", emulator.DefaultPassword, "accepted password")
	powerDelay := fs.Duration("power-delay", 2*time.Second, "duration of a power transition")
	profile := fs.String("profile", string(emulator.ProfileGeneric), fmt.Sprintf("vendor the emulator behaves like, one of %v (docs/vendors.md)", emulator.Profiles))
	useTLS := fs.Bool("tls", false, "serve HTTPS with a self-signed certificate (printed in the startup document), valid for localhost, the loopback addresses and the --listen host")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *systems < 1 {
		return fmt.Errorf("--systems must be at least 1, got %d", *systems)
	}
	p, err := emulator.ParseProfile(*profile)
	if err != nil {
		return fmt.Errorf("--profile: %w", err)
	}

	opts := emulator.Options{
		Systems:    *systems,
		UUIDSeed:   *seed,
		Username:   *username,
		Password:   *password,
		PowerDelay: *powerDelay,
		TLS:        *useTLS,
		Profile:    p,
	}
	scheme := "http"
	if *useTLS {
		scheme = "https"
		if host, _, err := net.SplitHostPort(*listen); err == nil && host != "" {
			if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
				opts.TLSHosts = []string{host}
			}
		}
	}
	e := emulator.New(opts)
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	if err := writeInfo(stdout, scheme+"://"+l.Addr().String(), e.Username(), e.Systems(), e.CertificatePEM()); err != nil {
		_ = l.Close()
		return err
	}
	return e.Serve(ctx, l)
}

// info is the startup document. It never contains the password.
type info struct {
	URL      string       `json:"url"`
	Username string       `json:"username"`
	Systems  []systemInfo `json:"systems"`
	// CertificatePEM is the self-signed certificate served with --tls, for clients to trust.
	CertificatePEM string `json:"certificatePEM,omitempty"`
}

type systemInfo struct {
	UUID string `json:"uuid"`
	URI  string `json:"uri"`
}

// writeInfo writes the startup document as one line of JSON; certPEM is the TLS certificate,
// if any.
func writeInfo(w io.Writer, url, username string, systems []bmc.System, certPEM []byte) error {
	doc := info{URL: url, Username: username, Systems: make([]systemInfo, 0, len(systems)), CertificatePEM: string(certPEM)}
	for _, s := range systems {
		doc.Systems = append(doc.Systems, systemInfo{UUID: s.UUID, URI: s.URI})
	}
	if err := json.NewEncoder(w).Encode(doc); err != nil {
		return fmt.Errorf("write startup document: %w", err)
	}
	return nil
}
