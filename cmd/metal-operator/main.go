// Command metal-operator runs the operator's controllers against a Kubernetes cluster:
// --kubeconfig, $KUBECONFIG or the in-cluster config.
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/metalfleet/metal-operator/internal/operator"
)

func main() {
	opts := operator.DefaultOptions()
	opts.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse() // --kubeconfig is registered by controller-runtime's config package
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "metal-operator: no cluster configuration:", err)
		os.Exit(1)
	}
	mgr, err := operator.New(cfg, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "metal-operator:", err)
		os.Exit(1)
	}
	ctrl.Log.Info("Starting the manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintln(os.Stderr, "metal-operator:", err)
		os.Exit(1)
	}
}
