package agent

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/jaypipes/ghw"

	"github.com/metalfleet/metal-operator/internal/agent/lldp"
	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// virtualNICs are the name prefixes of interfaces that are no physical port.
var virtualNICs = []string{"lo", "veth", "docker", "tun", "virbr"}

// nics lists the physical NICs with their addresses and the LLDP neighbours heard on the
// links that are up: on this machine from the network (all links at once, each for at most
// o.LLDPTimeout), in a fixture tree from the frames in <root>/agent/lldp/<nic>/*.bin.
func nics(ctx context.Context, o Options) ([]report.NIC, []error, error) {
	info, err := ghw.Network(ghwOptions(o.Root)...)
	if err != nil {
		return nil, nil, err
	}
	var (
		out      []report.NIC
		warnings []error
	)
	for _, n := range info.NICs {
		if len(out) == report.MaxNICs {
			break
		}
		if n.IsVirtual || hasAnyPrefix(n.Name, virtualNICs) {
			continue
		}
		sys := filepath.Join(o.Root, "sys", "class", "net", n.Name)
		nic := report.NIC{
			Name:   clean(n.Name),
			MAC:    clean(strings.ToLower(n.MACAddress)),
			Driver: driver(sys),
			LinkUp: attr(filepath.Join(sys, "operstate")) == "up",
		}
		if nic.MAC == "" {
			nic.MAC = strings.ToLower(attr(filepath.Join(sys, "address")))
		}
		if speed, err := strconv.ParseInt(attr(filepath.Join(sys, "speed")), 10, 64); err == nil && speed > 0 {
			nic.SpeedMbps = speed
		}
		ips, err := addresses(o, n.Name)
		if err != nil {
			warnings = append(warnings, fmt.Errorf("addresses of nic %s: %w", nic.Name, err))
		}
		nic.IPs = ips
		out = append(out, nic)
	}
	warnings = append(warnings, neighbours(ctx, o, out)...)
	return out, warnings, nil
}

// driver is the name of the kernel driver bound to the NIC's device.
func driver(sysNIC string) string {
	link, err := os.Readlink(filepath.Join(sysNIC, "device", "driver"))
	if err != nil {
		return ""
	}
	return clean(filepath.Base(link))
}

// addresses are the NIC's IP addresses: from the kernel on this machine (link-local ones left
// out), from <root>/agent/ips/<nic> (one a line) in a fixture tree. At most
// report.MaxIPsPerNIC.
func addresses(o Options, name string) ([]string, error) {
	var ips []string
	add := func(ip netip.Addr) {
		if len(ips) < report.MaxIPsPerNIC && ip.IsValid() && !ip.IsLinkLocalUnicast() {
			ips = append(ips, ip.String())
		}
	}
	if o.live() {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, err
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				add(p.Addr())
			}
		}
		return ips, nil
	}
	content, err := readFile(filepath.Join(o.Root, "agent", "ips", name))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s := bufio.NewScanner(strings.NewReader(content))
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" {
			continue
		}
		ip, err := netip.ParseAddr(line)
		if err != nil {
			return ips, fmt.Errorf("not an IP address: %.64q", line)
		}
		add(ip)
	}
	return ips, nil
}

// neighbours fills in the LLDP neighbours of the NICs whose link is up. On this machine it
// listens on all of them at once, with at most MaxListeners goroutines, all within one deadline.
func neighbours(ctx context.Context, o Options, nics []report.NIC) []error {
	if !o.live() {
		var warnings []error
		for i := range nics {
			if !nics[i].LinkUp {
				continue
			}
			ns, errs := lldp.FromFiles(filepath.Join(o.Root, "agent", "lldp", nics[i].Name))
			nics[i].Neighbors = ns
			for _, err := range errs {
				warnings = append(warnings, fmt.Errorf("lldp fixture of nic %s: %w", nics[i].Name, err))
			}
		}
		return warnings
	}
	ctx, cancel := context.WithTimeout(ctx, o.LLDPTimeout)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		warnings []error
		slots    = make(chan struct{}, MaxListeners)
	)
	for i := range nics {
		if !nics[i].LinkUp {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			ns, err := lldp.Listen(ctx, nics[i].Name, o.LLDPTimeout)
			mu.Lock()
			defer mu.Unlock()
			nics[i].Neighbors = ns
			if err != nil {
				warnings = append(warnings, fmt.Errorf("lldp on nic %s: %w", nics[i].Name, err))
			}
		})
	}
	wg.Wait()
	return warnings
}
