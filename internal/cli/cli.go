// Package cli is kubectl-metal, the kubectl plugin for the metal operator: it works on the
// user's own kubeconfig and RBAC, and decides nothing the operator's rules do not (explain
// applies internal/binding's rules as the claim controller does).
package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/metalfleet/metal-operator/internal/scheme"
)

// Streams are the command's standard input, output and error.
type Streams struct {
	In          io.Reader
	Out, ErrOut io.Writer
}

// globals are the flags every command shares: where the API server is and who we are there.
type globals struct {
	kubeconfig string
	context    string
	namespace  string

	streams Streams
}

// NewCommand returns the kubectl-metal root command.
func NewCommand(streams Streams) *cobra.Command {
	g := &globals{streams: streams}
	root := &cobra.Command{
		Use:   "kubectl-metal",
		Short: "Look at and steer a bare-metal fleet run by the metal operator",
		Long:  "kubectl-metal shows the fleet, explains why a ServerClaim is not bound, cordons, parks and releases servers, shows their boot history and serves a live rack view. It uses your kubeconfig and your RBAC.",
		// main prints the error once, as kubectl does.
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// kubectl shows a plugin as "kubectl metal"; so do the usage lines.
	root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl metal"}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	f := root.PersistentFlags()
	f.StringVar(&g.kubeconfig, "kubeconfig", "", "Path of the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).")
	f.StringVar(&g.context, "context", "", "The kubeconfig context to use (default: its current context).")
	f.StringVarP(&g.namespace, "namespace", "n", "", "Namespace of ServerClaims (default: the context's namespace).")
	root.AddCommand(
		newFleetCommand(g),
		newExplainCommand(g),
		newCordonCommand(g, true), newCordonCommand(g, false),
		newParkCommand(g, true), newParkCommand(g, false),
		newReleaseCommand(g),
		newBootsCommand(g),
		newUICommand(g),
	)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nSee '%s --help'", err, c.CommandPath())
	})
	return root
}

func (g *globals) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = g.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: g.context}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}

// restConfig is the API server and identity of the user's kubeconfig.
func (g *globals) restConfig() (*rest.Config, error) {
	cfg, err := g.clientConfig().ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubectl-metal"
	return cfg, nil
}

// client is a client on the user's kubeconfig that knows the operator's kinds.
func (g *globals) client() (client.Client, error) {
	cfg, err := g.restConfig()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme.New()})
}

// withClient is a command body that gets the command's context and a client on the user's
// kubeconfig.
func (g *globals) withClient(run func(ctx context.Context, c client.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		return run(cmd.Context(), c, args)
	}
}

// ns is the namespace of ServerClaims: -n, else the kubeconfig context's.
func (g *globals) ns() (string, error) {
	if g.namespace != "" {
		return g.namespace, nil
	}
	ns, _, err := g.clientConfig().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}
