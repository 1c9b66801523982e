package cli

import (
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/metalfleet/metal-operator/internal/cli/rackview"
)

func newUICommand(g *globals) *cobra.Command {
	o := rackview.DefaultOptions()
	address, port := "127.0.0.1", 0
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve the live rack view on 127.0.0.1: servers by location and rack, coloured by state, with their claims",
		Long: `Serve the live rack view on a loopback address: the fleet drawn by location and rack
(labels metadata.metal.ironcore.dev/location, rack, shelf and height), each server coloured by
state with its claim, kept current from a watch; a click shows a server's conditions and last
wipe. It uses your kubeconfig; open the URL it prints (it carries a one-time token).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.restConfig()
			if err != nil {
				return err
			}
			o.Address = net.JoinHostPort(address, strconv.Itoa(port))
			v, err := rackview.Start(cmd.Context(), cfg, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Out, "Serving the rack view at\n\n  %s\n\nPress Ctrl-C to stop.\n", v.URL)
			return v.Serve()
		},
	}
	cmd.Flags().StringVar(&address, "address", address, "Loopback address to listen on (127.0.0.1, ::1 or localhost).")
	cmd.Flags().IntVar(&port, "port", port, "Port to listen on (0: a free port).")
	return cmd
}
