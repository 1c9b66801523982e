// Command devenv runs the operator on an embedded control plane with an emulated fleet, a
// local OCI registry and the boot service: `make run`. See internal/tools/devenv.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/tools/devenv"
	"github.com/metalfleet/metal-operator/internal/tools/paths"
)

func main() {
	o := devenv.DefaultOptions()
	flag.StringVar(&o.DataDir, "data-dir", o.DataDir, "Folder for etcd's data and the kubeconfig.")
	flag.IntVar(&o.Systems, "systems", o.Systems, "Number of emulated servers (my-server included).")
	flag.StringVar(&o.BMCAddr, "bmc-address", o.BMCAddr, "Listen address of the emulated BMC (config/samples expect 127.0.0.1:8000).")
	flag.StringVar(&o.RegistryAddr, "registry-address", o.RegistryAddr, "Listen address of the OCI registry.")
	flag.StringVar(&o.BootAddr, "boot-address", o.BootAddr, "Listen address of the boot server.")
	flag.DurationVar(&o.PowerDelay, "power-delay", o.PowerDelay, "How long an emulated power transition takes.")
	profile := flag.String("bmc-profile", string(o.Profile), fmt.Sprintf("Vendor the emulated BMC behaves like, one of %v (docs/vendors.md).", emulator.Profiles))
	flag.StringVar(&o.AgentBinary, "agent-binary", o.AgentBinary,
		"metal-agent binary the emulated machines run on a network boot (empty: the agent runs in-process).")
	o.Operator.BindFlags(flag.CommandLine)
	logFile := flag.String("log-file", "", "File for the logs of the control plane and the operator (default: "+devenv.LogFileName+" in --data-dir; - for the terminal).")
	zapOpts := zap.Options{Development: true}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	if *logFile == "" {
		*logFile = filepath.Join(o.DataDir, devenv.LogFileName)
	}
	if *logFile != "-" {
		f, err := devenv.OpenLog(*logFile)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		zapOpts.DestWriter = f
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	p, err := emulator.ParseProfile(*profile)
	if err != nil {
		fail(err)
	}
	o.Profile = p

	root, err := paths.RootDir()
	if err != nil {
		fail(err)
	}
	o.RootDir, o.AssetsDir = root, paths.AssetsDir(root)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := devenv.Start(ctx, o)
	if err != nil {
		fail(err)
	}
	defer env.Stop()
	fmt.Fprint(os.Stderr, env.Banner(o, *logFile))
	if err := env.Wait(); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "devenv:", err)
	os.Exit(1)
}
