// Package machine plays a bare-metal machine that boots over the network, for tests and the
// embedded environment: it fetches its iPXE script from the boot server like firmware would,
// fetches the kernel, initrd and ignition the script names, and then runs the in-band agent
// (cmd/metal-agent, or the same code in-process) on a fixture tree in the mode the kernel
// command line asks for; without an agent mode it reports a booted OS.
package machine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/metalfleet/metal-operator/internal/agent"
	"github.com/metalfleet/metal-operator/internal/agent/cli"
	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// ErrLocalBoot is returned by Boot when the boot server's script boots from the local disk.
var ErrLocalBoot = errors.New("the boot server said: boot from the local disk")

// Bounds of what a boot fetches.
const (
	maxScriptBytes   = 64 << 10
	maxArtifactBytes = 1 << 30
	maxOutputBytes   = 4 << 10
)

// Options describes the machine.
type Options struct {
	// BootURL is the boot server's base URL.
	BootURL string
	// SystemUUID is the machine's UUID as its firmware sends it.
	SystemUUID string
	// SourceIP is the machine's address: every request is sent from it (e.g. 127.0.0.2).
	SourceIP string
	// Root is the machine's fixture tree (internal/agent/fixture); the boot writes
	// <Root>/proc/cmdline.
	Root string
	// AgentBinary runs that metal-agent binary; empty runs the agent in-process.
	AgentBinary string
	// Output receives the agent's logs (default: discarded).
	Output io.Writer
}

// Boot boots the machine once: the iPXE script, its kernel, initrd and ignition, then the agent
// or, without metal.agent_mode on the kernel line, a boot state report of an OS that booted.
func Boot(ctx context.Context, o Options) error {
	client, err := agent.NewClient(o.SourceIP)
	if err != nil {
		return err
	}
	base, err := url.Parse(strings.TrimRight(o.BootURL, "/") + "/")
	if err != nil {
		return err
	}
	var script bytes.Buffer
	if err := get(ctx, client, base.JoinPath("ipxe", o.SystemUUID).String(), &script, maxScriptBytes); err != nil {
		return err
	}
	s, err := parseScript(script.String(), base)
	if err != nil {
		return err
	}
	if s.kernel == "" {
		return ErrLocalBoot
	}
	if err := writeCmdline(o.Root, s.params); err != nil {
		return err
	}
	for _, u := range append([]string{s.kernel}, s.initrds...) {
		if err := get(ctx, client, u, io.Discard, maxArtifactBytes); err != nil {
			return err
		}
	}
	params := parseParams(s.params)
	if u := params["ignition.config.url"]; u != "" {
		if err := get(ctx, client, u, io.Discard, report.MaxBytes); err != nil {
			return fmt.Errorf("fetching the ignition: %w", err)
		}
	}
	server := params[report.CmdlineServer]
	if server == "" {
		server = strings.TrimRight(o.BootURL, "/")
	}
	mode := params[agent.CmdlineMode]
	if mode == "" {
		body := map[string]any{"systemUUID": o.SystemUUID, "booted": true}
		return agent.Post(ctx, client, server, params[report.CmdlineCredential], "/bootstate", body)
	}
	// The agent reads its credential from <root>/proc/cmdline, as on a machine: it never
	// shows on a process's command line.
	args := []string{"--root", o.Root, "--mode", mode, "--server", server}
	if o.SourceIP != "" {
		args = append(args, "--source-address", o.SourceIP)
	}
	return runAgent(ctx, o, args)
}

func runAgent(ctx context.Context, o Options, args []string) error {
	out := o.Output
	if out == nil {
		out = io.Discard
	}
	if o.AgentBinary == "" {
		return cli.Run(ctx, "in-process", args, out, out)
	}
	tail := &tailBuffer{limit: maxOutputBytes}
	cmd := exec.CommandContext(ctx, o.AgentBinary, args...)
	// One writer for both: exec then copies both streams in one goroutine.
	w := io.MultiWriter(out, tail)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", filepath.Base(o.AgentBinary), err, tail.String())
	}
	return nil
}

// get fetches u into w, at most limit bytes; any status but 200 is an error.
func get(ctx context.Context, client *http.Client, u string, w io.Writer, limit int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", req.URL.Path, resp.StatusCode)
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("GET %s: over %d bytes", req.URL.Path, limit)
	}
	return err
}

// script is what Boot takes from an iPXE script.
type script struct {
	kernel  string
	initrds []string
	params  []string
}

// parseScript reads the kernel and initrd lines of an iPXE script (URLs resolved against base).
func parseScript(text string, base *url.URL) (script, error) {
	var s script
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		cmd, rest := fields[0], withoutOptions(fields[1:])
		if (cmd != "kernel" && cmd != "initrd") || len(rest) == 0 {
			continue
		}
		ref, err := base.Parse(rest[0])
		if err != nil {
			return s, fmt.Errorf("a %s line with a bad URL: %w", cmd, err)
		}
		if cmd == "kernel" {
			s.kernel, s.params = ref.String(), rest[1:]
		} else {
			s.initrds = append(s.initrds, ref.String())
		}
	}
	return s, sc.Err()
}

// withoutOptions drops the leading options of an iPXE kernel or initrd command (--name x,
// --timeout 5000, --autofree, ...).
func withoutOptions(args []string) []string {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "--name", "-n", "--timeout", "-t":
			args = args[min(1, len(args)-1):]
		}
		args = args[1:]
	}
	return args
}

func parseParams(params []string) map[string]string {
	m := map[string]string{}
	for _, p := range params {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return m
}

func writeCmdline(root string, params []string) error {
	dir := filepath.Join(root, "proc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "cmdline"), []byte(strings.Join(params, " ")+"\n"), 0o600)
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	limit int
	buf   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.limit; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.buf)) }
