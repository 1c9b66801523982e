package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
)

// readInventory reads the server's hardware from its BMC into status: identity and BIOS
// version (from the SystemInfo read by connect), memory, processors, network interfaces and
// storage.
//
// The inventory rests on a read of the system made in this reconcile: an observation reused
// from the last one is read again, and the collections then follow the system's links
// without another read of it.
func (r *ServerReconciler) readInventory(ctx context.Context, sc *serverScope) error {
	if sc.reused {
		if err := r.observeSystem(ctx, sc); err != nil {
			return err
		}
	}
	uri := sc.obj.Spec.SystemURI
	procs, err := sc.bmc.Processors(ctx, uri)
	if err != nil {
		return fmt.Errorf("reading processors: %w", err)
	}
	mems, err := sc.bmc.Memory(ctx, uri)
	if err != nil {
		return fmt.Errorf("reading memory: %w", err)
	}
	nics, err := sc.bmc.NICs(ctx, uri)
	if err != nil {
		return fmt.Errorf("reading network interfaces: %w", err)
	}
	storages, err := sc.bmc.Storage(ctx, uri)
	if err != nil {
		return fmt.Errorf("reading storage: %w", err)
	}
	applyInventory(&sc.obj.Status, sc.info, procs, mems, nics, storages)
	return nil
}

// applyInventory writes an inventory into a server status.
func applyInventory(st *metalv1alpha1.ServerStatus, info bmc.SystemInfo, procs []bmc.Processor, mems []bmc.Memory,
	nics []bmc.NIC, storages []bmc.Storage) {
	st.Manufacturer = info.Manufacturer
	st.Model = info.Model
	st.SKU = info.SKU
	st.SerialNumber = info.SerialNumber
	st.BIOSVersion = info.BIOSVersion

	var memBytes int64
	for _, m := range mems {
		memBytes += m.CapacityMiB << 20
	}
	if memBytes == 0 {
		memBytes = info.TotalMemoryBytes
	}
	st.TotalSystemMemory = nil
	if memBytes > 0 {
		st.TotalSystemMemory = resource.NewQuantity(memBytes, resource.BinarySI)
	}

	st.Processors = nil
	for _, p := range procs {
		st.Processors = append(st.Processors, metalv1alpha1.Processor{
			ID:             p.ID,
			Type:           p.Type,
			Architecture:   p.Architecture,
			InstructionSet: p.InstructionSet,
			Manufacturer:   p.Manufacturer,
			Model:          p.Model,
			MaxSpeedMHz:    p.MaxSpeedMHz,
			TotalCores:     p.TotalCores,
			TotalThreads:   p.TotalThreads,
		})
	}

	st.NetworkInterfaces = nil
	for _, n := range nics {
		name := n.Name
		if name == "" {
			name = n.ID
		}
		st.NetworkInterfaces = append(st.NetworkInterfaces, metalv1alpha1.NetworkInterface{
			Name:          name,
			MACAddress:    n.MACAddress,
			IPs:           n.IPv4,
			CarrierStatus: n.LinkStatus,
		})
	}

	st.Storages = nil
	for _, s := range storages {
		out := metalv1alpha1.Storage{Name: s.Name, State: storageState(s.State)}
		for _, d := range s.Drives {
			out.Drives = append(out.Drives, metalv1alpha1.StorageDrive{
				Name:      d.Name,
				MediaType: d.MediaType,
				Type:      d.Type,
				Capacity:  bytesQuantity(d.CapacityBytes),
				Vendor:    d.Vendor,
				Model:     d.Model,
				State:     storageState(d.State),
			})
		}
		for _, v := range s.Volumes {
			out.Volumes = append(out.Volumes, metalv1alpha1.StorageVolume{
				Name:        v.Name,
				Capacity:    bytesQuantity(v.CapacityBytes),
				State:       storageState(v.State),
				RAIDType:    v.RAIDType,
				VolumeUsage: v.VolumeUsage,
			})
		}
		st.Storages = append(st.Storages, out)
	}
}

// storageState maps a Redfish Status.State to the API's storage states; states the API does
// not know are left out.
func storageState(s string) metalv1alpha1.StorageState {
	switch metalv1alpha1.StorageState(s) {
	case metalv1alpha1.StorageStateEnabled, metalv1alpha1.StorageStateDisabled, metalv1alpha1.StorageStateAbsent:
		return metalv1alpha1.StorageState(s)
	}
	return ""
}

func bytesQuantity(b int64) *resource.Quantity {
	if b <= 0 {
		return nil
	}
	return resource.NewQuantity(b, resource.BinarySI)
}
