package emulator

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

// Fixed hardware of every emulated system.
var emulatedCPUs = []string{"CPU1", "CPU2"}

const (
	emulatedCPUModel = "Emulated Xeon 6338 @ 2.00GHz"
	emulatedDIMMs    = 4
	emulatedDIMMMiB  = 32768
	emulatedDiskSize = 960197124096
)

// bootOption is one of the boot options every emulated system has.
type bootOption struct {
	ref     string // BootOptionReference, also its Id
	alias   bmc.BootTarget
	display string
}

var emulatedBootOptions = []bootOption{
	{ref: "Boot0000", alias: bmc.BootTargetPxe, display: "UEFI PXE IPv4: eth0"},
	{ref: "Boot0001", alias: bmc.BootTargetHdd, display: "UEFI Drive 0: EMU-SSD-960"},
	{ref: "Boot0002", alias: "Cd", display: "UEFI Virtual CD/DVD"},
	{ref: "Boot0003", alias: "Usb", display: "UEFI Virtual USB"},
}

// defaultBootOrder is the boot order of a new system: from disk first.
var defaultBootOrder = []string{"Boot0001", "Boot0000", "Boot0002", "Boot0003"}

func bootOptionByRef(ref string) (bootOption, bool) {
	i := slices.IndexFunc(emulatedBootOptions, func(o bootOption) bool { return o.ref == ref })
	if i < 0 {
		return bootOption{}, false
	}
	return emulatedBootOptions[i], true
}

// bootOrderError returns the message id and message refusing order as a system's boot
// order, or "" if the order is acceptable: at least one entry, every entry a boot option of
// the system, none twice.
func bootOrderError(order []string) (string, string) {
	if len(order) == 0 {
		return "PropertyValueError", "The value provided for the property BootOrder is not valid: it names no boot option."
	}
	for i, ref := range order {
		if _, ok := bootOptionByRef(ref); !ok {
			return "PropertyValueNotInList",
				fmt.Sprintf("The value %q for the property BootOrder is not in the list of acceptable values.", ref)
		}
		if slices.Contains(order[:i], ref) {
			return "PropertyValueError",
				fmt.Sprintf("The value provided for the property BootOrder is not valid: %q appears more than once.", ref)
		}
	}
	return "", ""
}

// systemSubresource renders a resource below a system, or returns nil if there is none.
func (e *Emulator) systemSubresource(s *system, sub []string) obj {
	base := s.uri + "/" + sub[0]
	switch sub[0] {
	case "Processors":
		if len(sub) == 1 {
			members := make([]obj, 0, len(emulatedCPUs))
			for _, id := range emulatedCPUs {
				members = append(members, ref(base+"/"+id))
			}
			return collectionOf("#ProcessorCollection.ProcessorCollection", base, "Processors Collection", members)
		}
		if len(sub) == 2 && slices.Contains(emulatedCPUs, sub[1]) {
			return obj{
				"@odata.type": "#Processor.v1_18_0.Processor", "@odata.id": base + "/" + sub[1],
				"Id": sub[1], "Name": "Processor " + sub[1], "Socket": sub[1],
				"ProcessorType": "CPU", "ProcessorArchitecture": "x86", "InstructionSet": "x86-64",
				"Manufacturer": "Intel(R) Corporation", "Model": emulatedCPUModel,
				"MaxSpeedMHz": 3200, "TotalCores": 32, "TotalThreads": 64,
				"Status": obj{"State": "Enabled", "Health": "OK"},
			}
		}
	case "Memory":
		// DIMM slots 1..emulatedDIMMs are populated, one more slot is empty.
		if len(sub) == 1 {
			members := make([]obj, 0, emulatedDIMMs+1)
			for i := 1; i <= emulatedDIMMs+1; i++ {
				members = append(members, ref(base+"/DIMM"+strconv.Itoa(i)))
			}
			return collectionOf("#MemoryCollection.MemoryCollection", base, "Memory Module Collection", members)
		}
		n, ok := strings.CutPrefix(sub[1], "DIMM")
		i, err := strconv.Atoi(n)
		if len(sub) == 2 && ok && err == nil && i >= 1 && i <= emulatedDIMMs+1 {
			m := obj{
				"@odata.type": "#Memory.v1_17_0.Memory", "@odata.id": base + "/" + sub[1],
				"Id": sub[1], "Name": "DIMM " + n, "DeviceLocator": "DIMM" + n,
			}
			if i > emulatedDIMMs {
				m["Status"] = obj{"State": "Absent"}
				m["CapacityMiB"] = nil
				return m
			}
			m["Manufacturer"] = "Samsung"
			m["PartNumber"] = "M393A4K40DB3-CWE"
			m["SerialNumber"] = fmt.Sprintf("%s-%d", s.serial, i)
			m["MemoryDeviceType"] = "DDR4"
			m["CapacityMiB"] = emulatedDIMMMiB
			m["OperatingSpeedMhz"] = 3200
			m["Status"] = obj{"State": "Enabled", "Health": "OK"}
			return m
		}
	case "EthernetInterfaces":
		if len(sub) == 1 {
			return collectionOf("#EthernetInterfaceCollection.EthernetInterfaceCollection", base,
				"Ethernet Interface Collection", []obj{ref(base + "/1")})
		}
		if len(sub) == 2 && sub[1] == "1" {
			s.mu.Lock()
			s.advance(time.Now())
			link := "LinkDown"
			if s.power == bmc.PowerStateOn {
				link = "LinkUp"
			}
			s.mu.Unlock()
			return obj{
				"@odata.type": "#EthernetInterface.v1_9_0.EthernetInterface", "@odata.id": base + "/1",
				"Id": "1", "Name": "eth0", "MACAddress": s.mac, "PermanentMACAddress": s.mac,
				"SpeedMbps": 25000, "LinkStatus": link, "InterfaceEnabled": true,
				"IPv4Addresses": []obj{{"Address": s.ipv4, "SubnetMask": "255.0.0.0", "AddressOrigin": "DHCP"}},
				"Status":        obj{"State": "Enabled", "Health": "OK"},
			}
		}
	case "BootOptions":
		return bootOptionResource(base, sub[1:])
	}
	return nil
}

// bootOptionResource renders .../BootOptions and its members.
func bootOptionResource(base string, sub []string) obj {
	if len(sub) == 0 {
		members := make([]obj, 0, len(emulatedBootOptions))
		for _, o := range emulatedBootOptions {
			members = append(members, ref(base+"/"+o.ref))
		}
		return collectionOf("#BootOptionCollection.BootOptionCollection", base, "Boot Option Collection", members)
	}
	o, ok := bootOptionByRef(sub[0])
	if len(sub) != 1 || !ok {
		return nil
	}
	return obj{
		"@odata.type": "#BootOption.v1_0_4.BootOption", "@odata.id": base + "/" + o.ref,
		"Id": o.ref, "Name": "Boot Option " + o.ref, "BootOptionReference": o.ref,
		"DisplayName": o.display, "Alias": string(o.alias), "BootOptionEnabled": true,
	}
}
