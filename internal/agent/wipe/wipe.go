// Package wipe wipes the disks of the machine the agent runs on. This file is a placeholder
// so that the agent builds on its own branch; the real package replaces it.
package wipe

import (
	"context"
	"errors"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// Options says what to wipe and how.
type Options struct {
	Root    string
	Policy  string
	Devices []string
}

// Run wipes the disks.
func Run(ctx context.Context, o Options) (*report.Wipe, error) {
	return nil, errors.New("wipe not built in this branch")
}
