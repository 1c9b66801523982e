package redfish

import (
	"net/http"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

func TestSystemsFollowsNextLinkAndSkipsVanishedMembers(t *testing.T) {
	g := NewWithT(t)
	page1 := members("/redfish/v1/Systems/a", "/redfish/v1/Systems/gone")
	page1["Members@odata.nextLink"] = "/redfish/v1/Systems?$skip=2"
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET /redfish/v1/Systems": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("$skip") == "2" {
				writeTestJSON(w, http.StatusOK, nil, members("http://ignored-host.invalid/redfish/v1/Systems/b"))
				return
			}
			writeTestJSON(w, http.StatusOK, nil, page1)
		},
		"GET /redfish/v1/Systems/a": reply(http.StatusOK, nil, map[string]any{"UUID": "AAAA"}),
		"GET /redfish/v1/Systems/b": reply(http.StatusOK, nil, map[string]any{"UUID": "bbbb"}),
	})
	// An absolute member URL on another host is refused rather than followed with credentials.
	_, err := f.client(t).Systems(t.Context())
	g.Expect(err).To(MatchError(ContainSubstring("not on the BMC's host")))

	f.route("GET /redfish/v1/Systems", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("$skip") == "2" {
			writeTestJSON(w, http.StatusOK, nil, members(f.srv.URL+"/redfish/v1/Systems/b"))
			return
		}
		writeTestJSON(w, http.StatusOK, nil, page1)
	})
	systems, err := f.client(t).Systems(t.Context())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(systems).To(Equal([]bmc.System{
		{UUID: "AAAA", URI: "/redfish/v1/Systems/a"},
		{UUID: "bbbb", URI: "/redfish/v1/Systems/b"},
	}))
}

func TestSystemsPropagatesMemberErrors(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET /redfish/v1/Systems":   reply(http.StatusOK, nil, members("/redfish/v1/Systems/a")),
		"GET /redfish/v1/Systems/a": reply(http.StatusUnauthorized, nil, nil),
	})
	_, err := f.client(t).Systems(t.Context())
	g.Expect(err).To(MatchError(bmc.ErrUnauthorized))
}

func TestInventoryMapping(t *testing.T) {
	g := NewWithT(t)
	s := testSystem
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + s: reply(http.StatusOK, nil, systemBody("On", "Disabled", "None")),

		"GET " + s + "/Processors": reply(http.StatusOK, nil, members(s+"/Processors/CPU1", s+"/Processors/CPU2")),
		"GET " + s + "/Processors/CPU1": reply(http.StatusOK, nil, map[string]any{
			"Id": "CPU1", "ProcessorType": "CPU", "ProcessorArchitecture": "x86", "InstructionSet": "x86-64",
			"Manufacturer": "Intel", "Model": "Xeon", "MaxSpeedMHz": 3500.0, "TotalCores": "16", "TotalThreads": 32,
		}),
		"GET " + s + "/Processors/CPU2": reply(http.StatusOK, nil, map[string]any{
			"Id": "CPU2", "Status": map[string]any{"State": "Absent"}, "MaxSpeedMHz": nil,
		}),

		"GET " + s + "/Memory": reply(http.StatusOK, nil, members(s+"/Memory/A1", s+"/Memory/A2")),
		"GET " + s + "/Memory/A1": reply(http.StatusOK, nil, map[string]any{
			"Id": "A1", "Manufacturer": "Hynix", "PartNumber": "HMA84GR7  ", "MemoryDeviceType": "DDR4", "CapacityMiB": 32768,
		}),
		"GET " + s + "/Memory/A2": reply(http.StatusOK, nil, map[string]any{
			"Id": "A2", "CapacityMiB": nil, "Status": map[string]any{"State": "Absent"},
		}),

		"GET " + s + "/EthernetInterfaces": reply(http.StatusOK, nil, members(s+"/EthernetInterfaces/NIC.1")),
		"GET " + s + "/EthernetInterfaces/NIC.1": reply(http.StatusOK, nil, map[string]any{
			"Id": "NIC.1", "Name": "eth0", "PermanentMACAddress": "AA:BB:CC:DD:EE:FF", "LinkStatus": "LinkUp",
			"IPv4Addresses": []any{map[string]any{"Address": "10.1.2.3"}, map[string]any{"Address": ""}},
		}),

		"GET " + s + "/Storage": reply(http.StatusOK, nil, members(s+"/Storage/RAID")),
		"GET " + s + "/Storage/RAID": reply(http.StatusOK, nil, map[string]any{
			"Id": "RAID", "Name": "PERC", "Status": map[string]any{"State": "Enabled"},
			"Drives":  []any{map[string]any{"@odata.id": s + "/Storage/RAID/Drives/0"}},
			"Volumes": map[string]any{"@odata.id": s + "/Storage/RAID/Volumes"},
		}),
		"GET " + s + "/Storage/RAID/Drives/0": reply(http.StatusOK, nil, map[string]any{
			"Name": "Disk 0", "MediaType": "HDD", "Protocol": "SAS", "Manufacturer": "Seagate", "Model": "ST4000",
			"CapacityBytes": 4000787030016, "Status": map[string]any{"State": "Enabled"},
		}),
		"GET " + s + "/Storage/RAID/Volumes": reply(http.StatusOK, nil, members(s+"/Storage/RAID/Volumes/1")),
		"GET " + s + "/Storage/RAID/Volumes/1": reply(http.StatusOK, nil, map[string]any{
			"Name": "VD0", "RAIDType": "RAID1", "VolumeUsage": "Data", "CapacityBytes": 4000787030016,
			"Status": map[string]any{"State": "Enabled"},
		}),

		"GET /redfish/v1/Managers": reply(http.StatusOK, nil, members("/redfish/v1/Managers/iDRAC.Embedded.1")),
		"GET /redfish/v1/Managers/iDRAC.Embedded.1": reply(http.StatusOK, nil, map[string]any{
			"UUID": "3132334f", "Manufacturer": "Dell Inc.", "Model": "14G Monolithic", "FirmwareVersion": "7.00",
			"PowerState": "On", "EthernetInterfaces": map[string]any{"@odata.id": "/redfish/v1/Managers/iDRAC.Embedded.1/EthernetInterfaces"},
		}),
		"GET /redfish/v1/Managers/iDRAC.Embedded.1/EthernetInterfaces": reply(http.StatusOK, nil,
			members("/redfish/v1/Managers/iDRAC.Embedded.1/EthernetInterfaces/NIC.1")),
		"GET /redfish/v1/Managers/iDRAC.Embedded.1/EthernetInterfaces/NIC.1": reply(http.StatusOK, nil,
			map[string]any{"MACAddress": "11:22:33:44:55:66"}),
	})
	c := f.client(t)
	ctx := t.Context()

	procs, err := c.Processors(ctx, s)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(procs).To(Equal([]bmc.Processor{{
		ID: "CPU1", Type: "CPU", Architecture: "x86", InstructionSet: "x86-64", Manufacturer: "Intel", Model: "Xeon",
		MaxSpeedMHz: 3500, TotalCores: 16, TotalThreads: 32,
	}}))

	mem, err := c.Memory(ctx, s)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(mem).To(Equal([]bmc.Memory{{ID: "A1", Manufacturer: "Hynix", PartNumber: "HMA84GR7", MemoryDeviceType: "DDR4", CapacityMiB: 32768}}))

	nics, err := c.NICs(ctx, s)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(nics).To(Equal([]bmc.NIC{{ID: "NIC.1", Name: "eth0", MACAddress: "AA:BB:CC:DD:EE:FF", IPv4: []string{"10.1.2.3"}, LinkStatus: "LinkUp"}}))

	st, err := c.Storage(ctx, s)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(st).To(Equal([]bmc.Storage{{
		Name: "PERC", State: "Enabled",
		Drives: []bmc.Drive{{Name: "Disk 0", MediaType: "HDD", Type: "SAS", Vendor: "Seagate", Model: "ST4000",
			State: "Enabled", CapacityBytes: 4000787030016}},
		Volumes: []bmc.Volume{{Name: "VD0", State: "Enabled", RAIDType: "RAID1", VolumeUsage: "Data", CapacityBytes: 4000787030016}},
	}}))

	m, err := c.Manager(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(m).To(Equal(bmc.ManagerInfo{
		UUID: "3132334f", Manufacturer: "Dell Inc.", Model: "14G Monolithic", FirmwareVersion: "7.00",
		MACAddress: "11:22:33:44:55:66", PowerState: bmc.PowerStateOn,
	}))
}

func TestInventoryWithoutLinksIsEmpty(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem: reply(http.StatusOK, nil, map[string]any{"Id": "1", "PowerState": "Off"}),
	})
	c := f.client(t)
	st, err := c.Storage(t.Context(), testSystem)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(st).To(BeEmpty())
	procs, err := c.Processors(t.Context(), testSystem)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(procs).To(BeEmpty())
}

func TestNumberDecoding(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{`42`, 42}, {`41.6`, 42}, {`null`, 0}, {`"16"`, 16}, {`" 8 "`, 8}, {`"n/a"`, 0}, {`true`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			g := NewWithT(t)
			var n number
			g.Expect(n.UnmarshalJSON([]byte(tt.in))).To(Succeed())
			g.Expect(n.int64()).To(Equal(tt.want))
		})
	}
}
