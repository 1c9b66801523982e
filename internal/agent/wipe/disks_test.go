package wipe

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

func TestDisksFromSysfs(t *testing.T) {
	g := NewWithT(t)
	root := machine(t,
		fakeDisk{name: "sda", size: 2 * mib, model: "ST4000NM0035", serial: "ZC1"},
		fakeDisk{name: "nvme0n1", size: 2 * mib, model: "SAMSUNG MZQL2", serial: "S64"},
		fakeDisk{name: "vda", size: 2 * mib},
		fakeDisk{name: "sdb", size: 0, noDev: true}, // an empty card reader
		fakeDisk{name: "loop0", size: 2 * mib},
		fakeDisk{name: "ram0", size: 2 * mib, noDev: true},
		fakeDisk{name: "zram0", size: 2 * mib, noDev: true},
		fakeDisk{name: "dm-0", size: 2 * mib, noDev: true},
		fakeDisk{name: "md127", size: 2 * mib, noDev: true},
		fakeDisk{name: "sr0", size: 2 * mib, noDev: true},
		fakeDisk{name: "fd0", size: 2 * mib, noDev: true},
	)
	// virtio disks have their serial beside the size, not below device/.
	write(t, filepath.Join(root, "sys/block/vda/serial"), "vd-serial\n")
	// An ATA disk: /sys/block/sdc links to its place below an ata port.
	ata := filepath.Join(root, "sys/devices/pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0/block/sdc")
	write(t, filepath.Join(ata, "size"), "4096\n")
	write(t, filepath.Join(ata, "device/model"), "INTEL SSDSC2KB96\n")
	must(t, os.Symlink("../devices/pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0/block/sdc",
		filepath.Join(root, "sys/block/sdc")))

	ds, err := disks(root, nil)
	g.Expect(err).NotTo(HaveOccurred())
	dev := func(n string) string { return filepath.Join(root, "dev", n) }
	g.Expect(ds).To(Equal([]disk{
		{open: dev("nvme0n1"), path: "/dev/nvme0n1", model: "SAMSUNG MZQL2", serial: "S64", transport: "nvme"},
		{open: dev("sda"), path: "/dev/sda", model: "ST4000NM0035", serial: "ZC1"},
		{open: dev("sdc"), path: "/dev/sdc", model: "INTEL SSDSC2KB96", transport: "ata"},
		{open: dev("vda"), path: "/dev/vda", serial: "vd-serial"},
	}))

	// Listed by the caller: a loop device is wiped when named, and a path is taken as written.
	ds, err = disks(root, []string{"loop0", "/tmp/../tmp/disk.img"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ds).To(Equal([]disk{
		{open: dev("loop0"), path: "/dev/loop0"},
		{open: "/tmp/disk.img", path: "/tmp/disk.img"},
	}))

	// A long sysfs attribute is cut to the report's bound.
	write(t, filepath.Join(root, "sys/block/sda/device/model"), string(make([]byte, 10000)))
	ds, err = disks(root, []string{"sda"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(len(ds[0].model)).To(BeNumerically("<=", 256))
}
