// Command kubectl-metal is the kubectl plugin for the metal operator: `kubectl metal fleet`,
// `explain claim`, cordon, park, release, boots and the live rack view (`ui`). Install it
// with `go install ./cmd/kubectl-metal`; kubectl finds it on the PATH. See docs/kubectl-metal.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/metalfleet/metal-operator/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := cli.NewCommand(cli.Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
