package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/metalfleet/metal-operator/internal/agent/fixture"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/testing/machine"
)

// AgentImage is the image the environment's agent boots use (discovery, wipe), published in
// the local registry like the demo OS image.
const AgentImage = "metal/agent:latest"

// machines plays the firmware and operating system of the emulated systems: a network boot
// fetches the system's iPXE script from the boot server, from the system's own loopback
// address, and runs what it says (internal/testing/machine): the in-band agent on the
// system's fixture tree (its NIC with an LLDP neighbour, small file-backed disks), or an
// ordinary OS that reports its boot and writes to its disks, so that a wipe has something to
// wipe.
type machines struct {
	ctx     context.Context
	bootURL string
	dir     string
	binary  string
	logf    func(string, ...any)

	mu      sync.Mutex
	index   map[string]int
	booting map[string]bool
}

func newMachines(ctx context.Context, bootURL, dir, binary string, logf func(string, ...any)) *machines {
	return &machines{ctx: ctx, bootURL: bootURL, dir: dir, binary: binary, logf: logf,
		index: map[string]int{}, booting: map[string]bool{}}
}

// onBoot is the emulator's boot hook.
func (m *machines) onBoot(uuid, mac string, rec emulator.BootRecord) {
	if rec.Target != bmc.BootTargetPxe && rec.Target != bmc.BootTargetUefiHttp {
		return
	}
	m.mu.Lock()
	i, known := m.index[uuid]
	if !known {
		i = len(m.index)
		m.index[uuid] = i
	}
	if m.booting[uuid] {
		m.mu.Unlock()
		return
	}
	m.booting[uuid] = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.booting, uuid)
		m.mu.Unlock()
	}()

	root := filepath.Join(m.dir, uuid)
	if !known {
		if err := fixture.Write(root, fixture.Sample(uuid, mac, i)); err != nil {
			m.logf("Machine %s: writing its fixture tree: %v", uuid, err)
			return
		}
	}
	o := machine.Options{BootURL: m.bootURL, SystemUUID: uuid, SourceIP: fmt.Sprintf("127.0.0.%d", 10+i%240),
		Root: root, AgentBinary: m.binary}
	// The boot server sees the boot window once its cache does; a machine asks again for a
	// few seconds, then boots from disk like real firmware would.
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = machine.Boot(m.ctx, o); !errors.Is(err, machine.ErrLocalBoot) {
			break
		}
		select {
		case <-m.ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	switch {
	case errors.Is(err, machine.ErrLocalBoot):
		m.logf("Machine %s booted from its disk (no network boot was expected)", uuid)
	case err != nil:
		m.logf("Machine %s: network boot failed: %v", uuid, err)
	default:
		m.install(root)
	}
}

// install writes an "operating system" to the first MiB of every disk of a machine that
// booted an ordinary OS; after an agent boot the agent has been there (a wipe zeroed them).
func (m *machines) install(root string) {
	cmdline, err := os.ReadFile(filepath.Join(root, "proc", "cmdline"))
	if err != nil || bytes.Contains(cmdline, []byte("metal.agent_mode=")) {
		return
	}
	disks, _ := filepath.Glob(filepath.Join(root, "dev", "*"))
	for _, d := range disks {
		f, err := os.OpenFile(d, os.O_WRONLY, 0)
		if err != nil {
			continue
		}
		_, _ = f.WriteAt(bytes.Repeat([]byte("a tenant's operating system and data "), 1<<15/37), 0)
		_ = f.Close()
	}
}
