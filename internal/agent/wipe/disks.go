package wipe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/metalfleet/metal-operator/internal/agent/report"
	"github.com/metalfleet/metal-operator/internal/message"
)

// disk is one disk to wipe.
type disk struct {
	// open is the path the engine opens; path is the one the record names (/dev/<name> for a
	// disk found under Root, whatever the caller wrote for a path it gave).
	open, path    string
	model, serial string
	// transport is "nvme", "ata" or "" (anything else): where a firmware erase might apply.
	transport string
}

// skipped are the prefixes of the names in /sys/block that are not disks of the machine: loop,
// RAM and compressed RAM disks, device-mapper and md devices (their member disks are wiped),
// optical and floppy drives.
var skipped = []string{"loop", "ram", "zram", "dm-", "md", "sr", "fd"}

// maxAttr bounds what is read from one sysfs attribute.
const maxAttr = 4 * kib

// disks returns the disks to wipe: those named in devices, in their order, or, when devices
// is empty, every whole disk under <root>/sys/block that is not skipped and does not report a
// size of zero (an empty card reader), in the order of their names. An entry of devices is a
// name ("sda": <root>/dev/sda) or an absolute path, taken as written (a loop device, a file).
func disks(root string, devices []string) ([]disk, error) {
	if len(devices) == 0 {
		var err error
		if devices, err = blockNames(root); err != nil {
			return nil, err
		}
	}
	if len(devices) > report.MaxBlockDevices {
		return nil, fmt.Errorf("%d disks, a report holds at most %d", len(devices), report.MaxBlockDevices)
	}
	out := make([]disk, 0, len(devices))
	seen := map[string]bool{}
	for _, e := range devices {
		var d disk
		switch {
		case filepath.IsAbs(e):
			d.open, d.path = filepath.Clean(e), filepath.Clean(e)
		case e != "" && !strings.ContainsRune(e, '/') && e != "." && e != "..":
			d.open, d.path = filepath.Join(root, "dev", e), "/dev/"+e
		default:
			return nil, fmt.Errorf("device %q: neither a name (sda) nor an absolute path", e)
		}
		if seen[d.open] {
			return nil, fmt.Errorf("device %q listed twice", e)
		}
		seen[d.open] = true
		sys := filepath.Join(root, "sys", "block", filepath.Base(d.open))
		d.model = attr(sys, "device/model")
		d.serial = attr(sys, "device/serial")
		if d.serial == "" {
			d.serial = attr(sys, "serial")
		}
		d.transport = transport(sys)
		out = append(out, d)
	}
	return out, nil
}

// blockNames lists the whole disks under <root>/sys/block.
func blockNames(root string) ([]string, error) {
	dir := filepath.Join(root, "sys", "block")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list disks: %w", err)
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if slices.ContainsFunc(skipped, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		if s := attr(filepath.Join(dir, name), "size"); s != "" {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil && n == 0 {
				continue
			}
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// transport tells NVMe and ATA disks from others by sysfs: an NVMe namespace by its name, an
// ATA disk by its place below an ata port (/sys/block/sda links into .../ata1/host0/...).
func transport(sys string) string {
	if strings.HasPrefix(filepath.Base(sys), "nvme") {
		return "nvme"
	}
	if target, err := os.Readlink(sys); err == nil { // the link only: Root may be any path
		for part := range strings.SplitSeq(filepath.ToSlash(target), "/") {
			if strings.HasPrefix(part, "ata") {
				return "ata"
			}
		}
	}
	return ""
}

// attr reads one sysfs attribute of a disk, trimmed and cut to a report's string bound; ""
// when it is missing.
func attr(sys, name string) string {
	f, err := os.Open(filepath.Join(sys, name))
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxAttr))
	if err != nil {
		return ""
	}
	return message.Truncate(strings.TrimSpace(string(b)), report.MaxString-len("..."))
}

// systemUUID reads the machine's DMI product UUID.
func systemUUID(root string) (string, error) {
	u := attr(filepath.Join(root, "sys", "class", "dmi", "id"), "product_uuid")
	if u == "" {
		return "", errors.New("no system UUID in /sys/class/dmi/id/product_uuid")
	}
	return u, nil
}
