package agent

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// Kernel parameters and modes of the agent, as report defines them for both sides.
const (
	CmdlineMode       = report.CmdlineMode
	CmdlineWipePolicy = report.CmdlineWipePolicy
	ModeDiscover      = report.ModeDiscover
	ModeWipe          = report.ModeWipe
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
