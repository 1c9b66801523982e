// Package inventory turns what the in-band agent reported (internal/agent/report) into a
// Server's status and labels. Pure functions, no client: the Server controller calls them
// when it accepts a discovery report.
package inventory

import (
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/agent/report"
	"github.com/metalfleet/metal-operator/internal/index"
)

// Merge adds what the agent saw to a status the BMC's inventory filled. The BMC's view is
// kept where it has one; the agent fills what only the machine sees:
//   - network interfaces, matched by MAC address: the agent's name, IPs, link state and LLDP
//     neighbours; interfaces only the agent sees are added, those only the BMC knows are kept;
//   - processors and total memory, when the BMC reported none;
//   - the disks as the OS sees them, as one storage named StorageName.
func Merge(st *metalv1alpha1.ServerStatus, d *report.Discovery) {
	mergeNICs(st, d.NICs)
	if len(st.Processors) == 0 {
		for _, c := range d.CPUs {
			st.Processors = append(st.Processors, metalv1alpha1.Processor{
				ID: "CPU" + strconv.Itoa(c.ID), Type: "CPU", Manufacturer: c.Vendor, Model: c.Model,
				TotalCores: c.Cores, TotalThreads: c.Threads,
			})
		}
	}
	if st.TotalSystemMemory == nil && d.MemoryBytes > 0 {
		st.TotalSystemMemory = resource.NewQuantity(d.MemoryBytes, resource.BinarySI)
	}
	st.Storages = slices.DeleteFunc(st.Storages, func(s metalv1alpha1.Storage) bool { return s.Name == StorageName })
	if len(d.BlockDevices) > 0 {
		out := metalv1alpha1.Storage{Name: StorageName}
		for _, b := range d.BlockDevices {
			media := "SSD"
			if b.Rotational {
				media = "HDD"
			}
			out.Drives = append(out.Drives, metalv1alpha1.StorageDrive{
				Name: b.Path, MediaType: media, Type: strings.ToUpper(b.Transport),
				Capacity: resource.NewQuantity(b.SizeBytes, resource.BinarySI), Model: b.Model,
			})
		}
		st.Storages = append(st.Storages, out)
	}
}

// StorageName names the storage that lists the disks the agent saw.
const StorageName = "Agent"

func mergeNICs(st *metalv1alpha1.ServerStatus, nics []report.NIC) {
	byMAC := map[string]int{}
	for i, n := range st.NetworkInterfaces {
		byMAC[index.NormalizeMAC(n.MACAddress)] = i
	}
	for _, n := range nics {
		carrier := "down"
		if n.LinkUp {
			carrier = "up"
		}
		out := metalv1alpha1.NetworkInterface{
			Name: n.Name, MACAddress: n.MAC, CarrierStatus: carrier, IPs: slices.Clone(n.IPs),
		}
		for _, nb := range n.Neighbors {
			out.Neighbors = append(out.Neighbors, metalv1alpha1.LLDPNeighbor{
				MACAddress: nb.ChassisID, PortID: nb.PortID, PortDescription: nb.PortDescription,
				SystemName: nb.SystemName, SystemDescription: nb.SystemDescription,
			})
		}
		if i, ok := byMAC[index.NormalizeMAC(n.MAC)]; ok && n.MAC != "" {
			// The BMC's MAC spelling is kept; everything else is what the machine sees.
			out.MACAddress = st.NetworkInterfaces[i].MACAddress
			st.NetworkInterfaces[i] = out
			continue
		}
		st.NetworkInterfaces = append(st.NetworkInterfaces, out)
	}
}
