// Package report is the wire format between the in-band agent (cmd/metal-agent) and the boot
// server: what a machine booted over the network reports about itself (Discovery) and about
// the wipe of its disks (Wipe). Both sides import it; nothing here talks to the network.
//
// The agent is a peer the operator does not trust: a report is decoded from at most
// MaxBytes and rejected by Validate when any list or string is over its bound, before the
// operator looks at its content.
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Paths on the boot server. Both take the boot credential as "Authorization: Bearer <credential>"
// from the address the credential is pinned to, and a JSON body of at most MaxBytes.
const (
	DiscoveryPath = "/agent/v1/discovery"
	WipePath      = "/agent/v1/wipe"
)

// Kernel command line parameters the boot server's iPXE script sets and the agent reads
// (from <root>/proc/cmdline) when its flags do not say otherwise.
const (
	CmdlineCredential = "metal.boot_credential"
	CmdlineServer     = "metal.boot_server"
	// CmdlineMode is the agent's mode: discover or wipe.
	CmdlineMode = "metal.agent_mode"
	// CmdlineWipePolicy is the policy of a wipe: Quick or Secure.
	CmdlineWipePolicy = "metal.wipe_policy"
)

// Agent modes (the values of CmdlineMode); without CmdlineMode a boot is an ordinary OS boot.
const (
	ModeDiscover = "discover"
	ModeWipe     = "wipe"
)

// Bounds of a report. A report over any of them is refused whole.
const (
	// MaxBytes leaves room under the 1 MiB of the ConfigMap the boot server stores it in.
	MaxBytes        = 768 << 10
	MaxString       = 256
	MaxCPUs         = 1024
	MaxBlockDevices = 256
	MaxNICs         = 256
	MaxIPsPerNIC    = 64
	MaxNeighbors    = 16
	MaxPCIDevices   = 2048
)

// Discovery is what the agent found on the machine it runs on.
type Discovery struct {
	// SystemUUID is the DMI product UUID; it must be the server's spec.systemUUID.
	SystemUUID   string        `json:"systemUUID"`
	Vendor       string        `json:"vendor,omitempty"`
	Product      string        `json:"product,omitempty"`
	Serial       string        `json:"serial,omitempty"`
	CPUs         []CPU         `json:"cpus,omitempty"`
	MemoryBytes  int64         `json:"memoryBytes,omitempty"`
	BlockDevices []BlockDevice `json:"blockDevices,omitempty"`
	NICs         []NIC         `json:"nics,omitempty"`
	PCIDevices   []PCIDevice   `json:"pciDevices,omitempty"`
	// AgentVersion is the agent's build version, for the record.
	AgentVersion string `json:"agentVersion,omitempty"`
}

// CPU is one physical processor package.
type CPU struct {
	ID      int    `json:"id"`
	Vendor  string `json:"vendor,omitempty"`
	Model   string `json:"model,omitempty"`
	Cores   int32  `json:"cores,omitempty"`
	Threads int32  `json:"threads,omitempty"`
}

// BlockDevice is one disk as the OS sees it.
type BlockDevice struct {
	// Path is the device path, e.g. /dev/nvme0n1.
	Path       string `json:"path"`
	Model      string `json:"model,omitempty"`
	Serial     string `json:"serial,omitempty"`
	SizeBytes  int64  `json:"sizeBytes,omitempty"`
	Rotational bool   `json:"rotational,omitempty"`
	// Transport is how the disk is attached: nvme, sata, sas, usb, virtio, ...
	Transport string `json:"transport,omitempty"`
}

// NIC is one network interface with the LLDP neighbours heard on it.
type NIC struct {
	Name      string     `json:"name"`
	MAC       string     `json:"mac"`
	Driver    string     `json:"driver,omitempty"`
	SpeedMbps int64      `json:"speedMbps,omitempty"`
	LinkUp    bool       `json:"linkUp,omitempty"`
	IPs       []string   `json:"ips,omitempty"`
	Neighbors []Neighbor `json:"neighbors,omitempty"`
}

// Neighbor is what one LLDP frame received on a NIC said about the switch port.
type Neighbor struct {
	ChassisID         string `json:"chassisID,omitempty"`
	PortID            string `json:"portID,omitempty"`
	SystemName        string `json:"systemName,omitempty"`
	SystemDescription string `json:"systemDescription,omitempty"`
	PortDescription   string `json:"portDescription,omitempty"`
}

// PCIDevice is one PCI function.
type PCIDevice struct {
	Address   string `json:"address"`
	VendorID  string `json:"vendorID,omitempty"`
	Vendor    string `json:"vendor,omitempty"`
	ProductID string `json:"productID,omitempty"`
	Product   string `json:"product,omitempty"`
	// Class is the PCI class name, e.g. "Display controller" (how GPUs are counted).
	Class string `json:"class,omitempty"`
}

// Wipe policies and per-disk results.
const (
	PolicyQuick  = "Quick"
	PolicySecure = "Secure"

	ResultSucceeded = "Succeeded"
	ResultFailed    = "Failed"
)

// Wipe is the agent's account of wiping every disk of the machine.
type Wipe struct {
	SystemUUID string     `json:"systemUUID"`
	Policy     string     `json:"policy"`
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt time.Time  `json:"finishedAt"`
	Disks      []DiskWipe `json:"disks"`
}

// DiskWipe is the wipe of one disk.
type DiskWipe struct {
	Path      string `json:"path"`
	Model     string `json:"model,omitempty"`
	Serial    string `json:"serial,omitempty"`
	SizeBytes int64  `json:"sizeBytes,omitempty"`
	// Method is what was done: e.g. "signatures+ends+discard", "nvme-sanitize-crypto",
	// "ata-secure-erase", "overwrite".
	Method string `json:"method"`
	// Result is ResultSucceeded or ResultFailed.
	Result string `json:"result"`
	// Error says why a failed wipe failed.
	Error        string       `json:"error,omitempty"`
	Verification Verification `json:"verification"`
}

// Verification is the read-back after a wipe: sampled blocks that must read as zero.
type Verification struct {
	SampledBlocks int  `json:"sampledBlocks"`
	Mismatches    int  `json:"mismatches"`
	Passed        bool `json:"passed"`
}

// Succeeded reports whether every disk was wiped and verified. A wipe of no disk succeeded.
func (w *Wipe) Succeeded() bool {
	for _, d := range w.Disks {
		if d.Result != ResultSucceeded || !d.Verification.Passed {
			return false
		}
	}
	return true
}

// FirstFailure returns the first disk whose wipe failed or was not verified, if any.
func (w *Wipe) FirstFailure() (DiskWipe, bool) {
	for _, d := range w.Disks {
		if d.Result != ResultSucceeded || !d.Verification.Passed {
			return d, true
		}
	}
	return DiskWipe{}, false
}

var errEmptyUUID = errors.New("systemUUID is required")

// DecodeStrict decodes exactly one JSON value with the report's known fields only into out:
// what the boot server stores is what the operator decodes again, field for field. Check
// the bounds with out's Validate afterwards.
func DecodeStrict(data []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return errors.New("a JSON object with the report's fields only")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the report")
	}
	return nil
}

// Validate checks the bounds of a discovery report.
func (d *Discovery) Validate() error {
	if d.SystemUUID == "" {
		return errEmptyUUID
	}
	if err := strings(d.SystemUUID, d.Vendor, d.Product, d.Serial, d.AgentVersion); err != nil {
		return err
	}
	if err := count("cpus", len(d.CPUs), MaxCPUs); err != nil {
		return err
	}
	for _, c := range d.CPUs {
		if err := strings(c.Vendor, c.Model); err != nil {
			return fmt.Errorf("cpu %d: %w", c.ID, err)
		}
	}
	if err := count("blockDevices", len(d.BlockDevices), MaxBlockDevices); err != nil {
		return err
	}
	for _, b := range d.BlockDevices {
		if err := strings(b.Path, b.Model, b.Serial, b.Transport); err != nil {
			return fmt.Errorf("block device: %w", err)
		}
	}
	if err := count("nics", len(d.NICs), MaxNICs); err != nil {
		return err
	}
	for _, n := range d.NICs {
		if err := strings(n.Name, n.MAC, n.Driver); err != nil {
			return fmt.Errorf("nic: %w", err)
		}
		if err := count("ips of a nic", len(n.IPs), MaxIPsPerNIC); err != nil {
			return err
		}
		if err := strings(n.IPs...); err != nil {
			return fmt.Errorf("nic %.32q: %w", n.Name, err)
		}
		if err := count("neighbors of a nic", len(n.Neighbors), MaxNeighbors); err != nil {
			return err
		}
		for _, nb := range n.Neighbors {
			if err := strings(nb.ChassisID, nb.PortID, nb.SystemName, nb.SystemDescription, nb.PortDescription); err != nil {
				return fmt.Errorf("neighbor of nic %.32q: %w", n.Name, err)
			}
		}
	}
	if err := count("pciDevices", len(d.PCIDevices), MaxPCIDevices); err != nil {
		return err
	}
	for _, p := range d.PCIDevices {
		if err := strings(p.Address, p.VendorID, p.Vendor, p.ProductID, p.Product, p.Class); err != nil {
			return fmt.Errorf("pci device: %w", err)
		}
	}
	return nil
}

// Validate checks the bounds of a wipe report and that every disk has a known result.
func (w *Wipe) Validate() error {
	if w.SystemUUID == "" {
		return errEmptyUUID
	}
	if w.Policy != PolicyQuick && w.Policy != PolicySecure {
		return fmt.Errorf("policy must be %s or %s", PolicyQuick, PolicySecure)
	}
	if err := count("disks", len(w.Disks), MaxBlockDevices); err != nil {
		return err
	}
	for _, d := range w.Disks {
		if err := strings(d.Path, d.Model, d.Serial, d.Method, d.Error); err != nil {
			return fmt.Errorf("disk: %w", err)
		}
		if d.Result != ResultSucceeded && d.Result != ResultFailed {
			return fmt.Errorf("disk %.64q: result must be %s or %s", d.Path, ResultSucceeded, ResultFailed)
		}
	}
	return nil
}

func count(what string, n, limit int) error {
	if n > limit {
		return fmt.Errorf("%s: %d entries, at most %d allowed", what, n, limit)
	}
	return nil
}

func strings(ss ...string) error {
	for _, s := range ss {
		if len(s) > MaxString {
			return fmt.Errorf("a string of %d bytes, at most %d allowed", len(s), MaxString)
		}
	}
	return nil
}
