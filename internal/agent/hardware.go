package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jaypipes/ghw"
	"github.com/jaypipes/ghw/pkg/block"
	"github.com/jaypipes/ghw/pkg/util"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// ghwOptions points ghw at root, silences its warnings (they go to stderr otherwise) and
// keeps it from running tools such as ethtool.
func ghwOptions(root string) []any {
	return []any{ghw.WithChroot(root), ghw.WithDisableWarnings(), ghw.WithDisableTools(), ghw.WithDisableTopology()}
}

func dmiPath(root, name string) string {
	return filepath.Join(root, "sys", "class", "dmi", "id", name)
}

// identity reads the DMI system identity. The product UUID is what the report is matched by;
// without it the error says why, and the other fields are still read.
func identity(root string) (uuid, vendor, product, serial string, err error) {
	vendor, product, serial = attr(dmiPath(root, "sys_vendor")), attr(dmiPath(root, "product_name")), attr(dmiPath(root, "product_serial"))
	raw, err := readFile(dmiPath(root, "product_uuid"))
	if err != nil {
		return "", vendor, product, serial, fmt.Errorf("reading the DMI product UUID: %w", err)
	}
	if uuid = strings.ToLower(clean(raw)); uuid == "" {
		return "", vendor, product, serial, errors.New("the DMI product UUID is empty")
	}
	return uuid, vendor, product, serial, nil
}

func cpus(root string) ([]report.CPU, error) {
	info, err := ghw.CPU(ghwOptions(root)...)
	if err != nil {
		return nil, err
	}
	var out []report.CPU
	for _, p := range info.Processors {
		if len(out) == report.MaxCPUs {
			break
		}
		out = append(out, report.CPU{
			ID:      p.ID,
			Vendor:  clean(p.Vendor),
			Model:   clean(p.Model),
			Cores:   int32(min(p.TotalCores, 1<<20)),
			Threads: int32(min(p.TotalHardwareThreads, 1<<20)),
		})
	}
	if len(out) == 0 {
		return nil, errors.New("no processor found")
	}
	return out, nil
}

// memory is the physical memory of the machine (the usable memory where the physical memory
// cannot be told).
func memory(root string) (int64, error) {
	info, err := ghw.Memory(ghwOptions(root)...)
	if err != nil {
		return 0, err
	}
	if info.TotalPhysicalBytes > 0 {
		return info.TotalPhysicalBytes, nil
	}
	return info.TotalUsableBytes, nil
}

// notDisks are the block device name prefixes that are no physical disk.
var notDisks = []string{"loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd"}

func blockDevices(root string) ([]report.BlockDevice, error) {
	info, err := ghw.Block(ghwOptions(root)...)
	if err != nil {
		return nil, err
	}
	var out []report.BlockDevice
	for _, d := range info.Disks {
		if len(out) == report.MaxBlockDevices {
			break
		}
		if hasAnyPrefix(d.Name, notDisks) {
			continue
		}
		sys := filepath.Join(root, "sys", "block", d.Name)
		out = append(out, report.BlockDevice{
			Path:       "/dev/" + clean(d.Name),
			Model:      known(d.Model, filepath.Join(sys, "device", "model"), true),
			Serial:     known(d.SerialNumber, filepath.Join(sys, "device", "serial"), false),
			SizeBytes:  int64(min(d.SizeBytes, 1<<62)),
			Rotational: d.DriveType == block.DriveTypeHDD,
			Transport:  transport(sys, d.StorageController),
		})
	}
	return out, nil
}

// known is what ghw found (from udev's database, which writes a model's spaces as
// underscores), or else the sysfs attribute at fallback: a minimal boot image may run without
// udev.
func known(ghwValue, fallback string, spaced bool) string {
	if ghwValue != util.UNKNOWN {
		if spaced {
			ghwValue = strings.ReplaceAll(ghwValue, "_", " ")
		}
		if v := clean(ghwValue); v != "" {
			return v
		}
	}
	return attr(fallback)
}

// transport tells how a disk is attached from the sysfs path of its device (the way lsblk
// does), or else from the controller ghw derived from its name.
func transport(sysBlock string, controller block.StorageController) string {
	if link, err := os.Readlink(sysBlock); err == nil {
		for _, t := range []struct{ marker, transport string }{
			{"/nvme", "nvme"},
			{"/usb", "usb"},
			{"/end_device-", "sas"},
			{"/ata", "sata"},
			{"/virtio", "virtio"},
			{"/mmc", "mmc"},
		} {
			if strings.Contains(link, t.marker) {
				return t.transport
			}
		}
	}
	switch controller {
	case block.StorageControllerNVMe:
		return "nvme"
	case block.StorageControllerVirtIO:
		return "virtio"
	case block.StorageControllerSCSI:
		return "scsi"
	case block.StorageControllerIDE:
		return "ata"
	case block.StorageControllerMMC:
		return "mmc"
	}
	return ""
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// SystemUUID is the DMI product UUID of the machine at root, in lower case.
func SystemUUID(root string) (string, error) {
	uuid, _, _, _, err := identity(root)
	return uuid, err
}
