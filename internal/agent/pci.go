package agent

import (
	"os"
	"path/filepath"

	"github.com/jaypipes/ghw"
	"github.com/jaypipes/ghw/pkg/util"
	"github.com/jaypipes/pcidb"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// pciClasses are the PCI base class names (PCI Code and ID Assignment Specification), so that
// a machine without a pci.ids database still reports classes (GPUs are counted by
// "Display controller").
var pciClasses = map[string]string{
	"00": "Unclassified device",
	"01": "Mass storage controller",
	"02": "Network controller",
	"03": "Display controller",
	"04": "Multimedia controller",
	"05": "Memory controller",
	"06": "Bridge",
	"07": "Communication controller",
	"08": "Generic system peripheral",
	"09": "Input device controller",
	"0a": "Docking station",
	"0b": "Processor",
	"0c": "Serial bus controller",
	"0d": "Wireless controller",
	"0e": "Intelligent controller",
	"0f": "Satellite communications controller",
	"10": "Encryption controller",
	"11": "Signal processing controller",
	"12": "Processing accelerators",
	"13": "Non-Essential Instrumentation",
	"40": "Coprocessor",
	"ff": "Unassigned class",
}

// pciDatabase is the pci.ids database of root, or else one that knows only the class names.
// It never looks anywhere else (no home directory cache, no network).
func pciDatabase(root string) *pcidb.PCIDB {
	for _, p := range []string{"usr/share/hwdata/pci.ids", "usr/share/misc/pci.ids", "usr/share/hwdata/pci.ids.gz", "usr/share/misc/pci.ids.gz"} {
		path := filepath.Join(root, p)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		if db, err := pcidb.New(pcidb.WithPath(path)); err == nil {
			return db
		}
	}
	db := &pcidb.PCIDB{Classes: map[string]*pcidb.Class{}, Vendors: map[string]*pcidb.Vendor{}, Products: map[string]*pcidb.Product{}}
	for id, name := range pciClasses {
		db.Classes[id] = &pcidb.Class{ID: id, Name: name}
	}
	return db
}

func pciDevices(root string) ([]report.PCIDevice, error) {
	info, err := ghw.PCI(append(ghwOptions(root), ghw.WithPCIDB(pciDatabase(root)))...)
	if err != nil {
		return nil, err
	}
	var out []report.PCIDevice
	for _, d := range info.Devices {
		if len(out) == report.MaxPCIDevices {
			break
		}
		p := report.PCIDevice{Address: clean(d.Address)}
		if d.Vendor != nil {
			p.VendorID, p.Vendor = clean(d.Vendor.ID), name(d.Vendor.Name)
		}
		if d.Product != nil {
			p.ProductID, p.Product = clean(d.Product.ID), name(d.Product.Name)
		}
		if d.Class != nil {
			p.Class = name(d.Class.Name)
		}
		out = append(out, p)
	}
	return out, nil
}

// name is a database name, "" where the database did not know it.
func name(s string) string {
	if s == util.UNKNOWN {
		return ""
	}
	return clean(s)
}
