package cli

import "github.com/spf13/cobra"

func newUICommand(g *globals) *cobra.Command {
	return &cobra.Command{Use: "ui", Short: "Serve the live rack view on 127.0.0.1"}
}
