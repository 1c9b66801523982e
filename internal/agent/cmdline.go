package agent

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// Kernel parameters that tell a booted machine what its agent is to do; the boot server sets
// them on the kernel line of the iPXE script beside report.CmdlineServer and
// report.CmdlineCredential.
const (
	// CmdlineMode is ModeDiscover or ModeWipe; without it the boot is an ordinary OS boot.
	CmdlineMode = "metal.agent_mode"
	// CmdlineWipePolicy is report.PolicyQuick or report.PolicySecure.
	CmdlineWipePolicy = "metal.wipe_policy"

	ModeDiscover = "discover"
	ModeWipe     = "wipe"
)

// Cmdline reads the key=value parameters of <root>/proc/cmdline (a parameter without "=" maps
// to ""; of a repeated key the last value counts, as in the kernel).
func Cmdline(root string) (map[string]string, error) {
	content, err := readFile(filepath.Join(root, "proc", "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("reading the kernel command line: %w", err)
	}
	params := map[string]string{}
	for _, field := range strings.Fields(content) {
		k, v, _ := strings.Cut(field, "=")
		params[k] = strings.Trim(v, `"`)
	}
	return params, nil
}

// CmdlineParams returns the boot server URL and the boot credential the boot server put on the
// kernel command line; either is "" when the command line does not carry it.
func CmdlineParams(root string) (server, credential string, err error) {
	params, err := Cmdline(root)
	if err != nil {
		return "", "", err
	}
	return params[report.CmdlineServer], params[report.CmdlineCredential], nil
}
