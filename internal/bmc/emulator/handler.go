package emulator

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

// obj is a JSON object in a response.
type obj = map[string]any

func ref(path string) obj { return obj{"@odata.id": path} }

const (
	rootPath     = "/redfish/v1"
	systemsPath  = "/redfish/v1/Systems"
	managersPath = "/redfish/v1/Managers"
	managerPath  = "/redfish/v1/Managers/BMC"
	sessSvcPath  = "/redfish/v1/SessionService"
	sessionsPath = "/redfish/v1/SessionService/Sessions"

	// maxRequestBody bounds the body of a PATCH or POST.
	maxRequestBody = 1 << 20
	// registry prefixes Base message ids.
	registry = "Base.1.15."
)

// Boot targets the emulated systems accept.
var allowableBootTargets = []string{"None", "Pxe", "Hdd", "Cd", "Usb", "BiosSetup", "UefiHttp", "UefiShell"}

// Handler returns the HTTP handler serving the Redfish API.
func (e *Emulator) Handler() http.Handler { return http.HandlerFunc(e.serveHTTP) }

func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	if d := time.Duration(e.latency.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-e.done:
			t.Stop()
			return
		}
	}
	w.Header().Set("OData-Version", "4.0")
	if e.unavailable.Load() {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "ServiceTemporarilyUnavailable", "The service is temporarily unavailable.")
		return
	}

	path := strings.TrimRight(r.URL.Path, "/")
	if path == "/redfish" {
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, obj{"v1": rootPath + "/"})
		}
		return
	}
	if path != rootPath && !strings.HasPrefix(path, rootPath+"/") {
		writeError(w, http.StatusNotFound, "ResourceNotFound", "The resource "+r.URL.Path+" was not found.")
		return
	}
	segs := strings.Split(strings.TrimPrefix(strings.TrimPrefix(path, rootPath), "/"), "/")
	if len(segs) == 1 && segs[0] == "" {
		segs = nil
	}

	public := len(segs) == 0 || // the service root needs no authentication
		(path == sessionsPath && r.Method == http.MethodPost) // neither does logging in
	if !public && !e.authenticate(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Redfish"`)
		writeError(w, http.StatusUnauthorized, "InsufficientPrivilege", "Authentication is required.")
		return
	}

	switch {
	case len(segs) == 0:
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, e.serviceRoot())
		}
	case segs[0] == "Systems":
		e.serveSystems(w, r, segs[1:])
	case segs[0] == "Managers":
		e.serveManagers(w, r, segs[1:])
	case segs[0] == "SessionService":
		e.serveSessions(w, r, segs[1:])
	case segs[0] == "AccountService":
		e.serveAccounts(w, r, segs[1:])
	default:
		notFound(w, r)
	}
}

// authenticate accepts a valid X-Auth-Token or matching basic auth credentials.
func (e *Emulator) authenticate(r *http.Request) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if token := r.Header.Get("X-Auth-Token"); token != "" {
		_, ok := e.sessions[token]
		return ok
	}
	user, pass, ok := r.BasicAuth()
	return ok && (e.credentialsMatch(user, pass) || e.accountMatchLocked(user, pass))
}

// credentialsMatch compares in constant time. Callers hold mu.
func (e *Emulator) credentialsMatch(user, pass string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(e.username))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(e.password))
	return u&p == 1
}

func (e *Emulator) serviceRoot() obj {
	return obj{
		"@odata.type":    "#ServiceRoot.v1_15_0.ServiceRoot",
		"@odata.id":      rootPath,
		"Id":             "RootService",
		"Name":           "Root Service",
		"RedfishVersion": "1.17.0",
		"UUID":           e.serviceUUID,
		"Vendor":         e.opts.Manufacturer,
		"Product":        "Metalfleet Redfish Emulator",
		"Systems":        ref(systemsPath),
		"Managers":       ref(managersPath),
		"SessionService": ref(sessSvcPath),
		"AccountService": ref(accountSvcPath),
		"Links":          obj{"Sessions": ref(sessionsPath)},
	}
}

// serveSystems routes /redfish/v1/Systems/...
func (e *Emulator) serveSystems(w http.ResponseWriter, r *http.Request, segs []string) {
	if len(segs) == 0 {
		if allow(w, r, http.MethodGet) {
			e.mu.RLock()
			members := make([]obj, 0, len(e.order))
			for _, s := range e.order {
				members = append(members, ref(s.uri))
			}
			e.mu.RUnlock()
			writeJSON(w, http.StatusOK, collectionOf("#ComputerSystemCollection.ComputerSystemCollection",
				systemsPath, "Computer System Collection", members))
		}
		return
	}
	s := e.lookupID(segs[0])
	if s == nil {
		notFound(w, r)
		return
	}
	sub := segs[1:]
	switch {
	case len(sub) == 0:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			s.mu.Lock()
			s.advance(time.Now())
			body, etag := e.systemJSON(s), s.etag()
			s.mu.Unlock()
			w.Header().Set("ETag", etag)
			writeJSON(w, http.StatusOK, body)
		case http.MethodPatch:
			e.patchSystem(w, r, s)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPatch)
		}
	case len(sub) == 2 && sub[0] == "Actions" && sub[1] == "ComputerSystem.Reset":
		if allow(w, r, http.MethodPost) {
			e.resetSystem(w, r, s)
		}
	default:
		if !allow(w, r, http.MethodGet) {
			return
		}
		body := e.systemSubresource(s, sub)
		if body == nil {
			notFound(w, r)
			return
		}
		writeJSON(w, http.StatusOK, body)
	}
}

// systemJSON renders a system. Callers hold s.mu.
func (e *Emulator) systemJSON(s *system) obj {
	return obj{
		"@odata.type":  "#ComputerSystem.v1_20_0.ComputerSystem",
		"@odata.id":    s.uri,
		"@odata.etag":  s.etag(),
		"Id":           s.id,
		"Name":         "System " + s.id,
		"SystemType":   "Physical",
		"UUID":         s.uuid,
		"Manufacturer": e.opts.Manufacturer,
		"Model":        e.opts.Model,
		"SKU":          e.opts.Model + "-SKU",
		"SerialNumber": s.serial,
		"BiosVersion":  "EMU-BIOS-2.1.0",
		"PowerState":   string(s.power),
		"IndicatorLED": string(s.led),
		"Status":       obj{"State": "Enabled", "Health": "OK"},
		"ProcessorSummary": obj{
			"Count": len(emulatedCPUs), "Model": emulatedCPUModel,
			"Status": obj{"State": "Enabled", "Health": "OK"},
		},
		"MemorySummary": obj{
			"TotalSystemMemoryGiB": emulatedDIMMs * emulatedDIMMMiB / 1024,
			"Status":               obj{"State": "Enabled", "Health": "OK"},
		},
		"Boot": obj{
			"BootSourceOverrideEnabled":                        s.bootEnabled,
			"BootSourceOverrideTarget":                         s.bootTarget,
			"BootSourceOverrideMode":                           s.bootMode,
			"BootSourceOverrideTarget@Redfish.AllowableValues": allowableBootTargets,
			"BootOrder":   slices.Clone(s.bootOrder),
			"BootOptions": ref(s.uri + "/BootOptions"),
		},
		"Processors":         ref(s.uri + "/Processors"),
		"Memory":             ref(s.uri + "/Memory"),
		"EthernetInterfaces": ref(s.uri + "/EthernetInterfaces"),
		"Storage":            ref(s.uri + "/Storage"),
		"Links":              obj{"ManagedBy": []obj{ref(managerPath)}},
		"Actions": obj{
			"#ComputerSystem.Reset": obj{
				"target":                            s.uri + "/Actions/ComputerSystem.Reset",
				"ResetType@Redfish.AllowableValues": bmc.ResetTypes,
			},
		},
	}
}

// resetSystem handles POST .../Actions/ComputerSystem.Reset.
func (e *Emulator) resetSystem(w http.ResponseWriter, r *http.Request, s *system) {
	var req struct {
		ResetType *string `json:"ResetType"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.ResetType == nil {
		writeError(w, http.StatusBadRequest, "ActionParameterMissing", "The action requires the parameter ResetType.")
		return
	}
	t := bmc.ResetType(*req.ResetType)
	if !t.Valid() {
		writeError(w, http.StatusBadRequest, "ActionParameterValueNotInList",
			fmt.Sprintf("The value %q for the parameter ResetType is not in the list of acceptable values.", *req.ResetType))
		return
	}
	s.mu.Lock()
	err := s.reset(t, time.Now(), e.opts.PowerDelay)
	s.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusConflict, "ResourceInUse", "The change could not be made because "+err.Error()+".")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// patchSystem handles PATCH of a system: Boot override properties, Boot.BootOrder and
// IndicatorLED, with If-Match against the current ETag.
func (e *Emulator) patchSystem(w http.ResponseWriter, r *http.Request, s *system) {
	var req map[string]json.RawMessage
	if !decodeBody(w, r, &req) {
		return
	}
	var boot struct {
		Enabled *string `json:"BootSourceOverrideEnabled"`
		Target  *string `json:"BootSourceOverrideTarget"`
		Mode    *string `json:"BootSourceOverrideMode"`
		// Order is nil when the PATCH leaves the boot order alone.
		Order *[]string `json:"BootOrder"`
	}
	var led *string
	for k, v := range req {
		switch k {
		case "Boot":
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&boot); err != nil {
				writeError(w, http.StatusBadRequest, "PropertyValueFormatError", "The value of the property Boot is invalid: "+err.Error())
				return
			}
		case "IndicatorLED":
			if err := json.Unmarshal(v, &led); err != nil || led == nil {
				writeError(w, http.StatusBadRequest, "PropertyValueTypeError", "The property IndicatorLED must be a string.")
				return
			}
		default:
			writeError(w, http.StatusBadRequest, "PropertyNotWritable", "The property "+k+" is not writable or unknown.")
			return
		}
	}
	if boot.Enabled != nil && !slices.Contains([]string{overrideOnce, overrideContinuous, overrideDisabled}, *boot.Enabled) {
		notInList(w, "BootSourceOverrideEnabled", *boot.Enabled)
		return
	}
	if boot.Target != nil && !slices.Contains(allowableBootTargets, *boot.Target) {
		notInList(w, "BootSourceOverrideTarget", *boot.Target)
		return
	}
	if boot.Mode != nil && *boot.Mode != string(bmc.BootModeUEFI) && *boot.Mode != string(bmc.BootModeLegacy) {
		notInList(w, "BootSourceOverrideMode", *boot.Mode)
		return
	}
	if boot.Order != nil {
		s.mu.Lock()
		s.bootOrderWrites++
		s.mu.Unlock()
		if id, msg := bootOrderError(*boot.Order); id != "" {
			writeError(w, http.StatusBadRequest, id, msg)
			return
		}
	}
	if led != nil && *led != string(bmc.IndicatorLEDLit) && *led != string(bmc.IndicatorLEDBlinking) && *led != string(bmc.IndicatorLEDOff) {
		notInList(w, "IndicatorLED", *led)
		return
	}

	s.mu.Lock()
	s.advance(time.Now())
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && !etagListContains(m, s.etag()) {
		s.mu.Unlock()
		writeError(w, http.StatusPreconditionFailed, "PreconditionFailed",
			"The ETag supplied did not match the ETag of the resource.")
		return
	}
	changed := false
	set := func(dst *string, v *string) {
		if v != nil && *dst != *v {
			*dst = *v
			changed = true
		}
	}
	set(&s.bootEnabled, boot.Enabled)
	set(&s.bootTarget, boot.Target)
	set(&s.bootMode, boot.Mode)
	if boot.Order != nil && !slices.Equal(s.bootOrder, *boot.Order) {
		s.bootOrder = slices.Clone(*boot.Order)
		changed = true
	}
	if led != nil && string(s.led) != *led {
		s.led = bmc.IndicatorLED(*led)
		changed = true
	}
	if changed {
		s.version++
	}
	body, etag := e.systemJSON(s), s.etag()
	s.mu.Unlock()
	w.Header().Set("ETag", etag)
	writeJSON(w, http.StatusOK, body)
}

func etagListContains(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		if strings.TrimSpace(t) == etag {
			return true
		}
	}
	return false
}

// Fixed hardware of every emulated system.
var emulatedCPUs = []string{"CPU1", "CPU2"}

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

const (
	emulatedCPUModel = "Emulated Xeon 6338 @ 2.00GHz"
	emulatedDIMMs    = 4
	emulatedDIMMMiB  = 32768
	emulatedDiskSize = 960197124096
)

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
	case "Storage":
		return e.storageResource(s, base, sub[1:])
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

// storageResource renders .../Storage and below: one controller with one drive and one volume.
func (e *Emulator) storageResource(s *system, base string, sub []string) obj {
	if len(sub) == 0 {
		return collectionOf("#StorageCollection.StorageCollection", base, "Storage Collection", []obj{ref(base + "/1")})
	}
	if sub[0] != "1" {
		return nil
	}
	st := base + "/1"
	switch {
	case len(sub) == 1:
		return obj{
			"@odata.type": "#Storage.v1_15_0.Storage", "@odata.id": st, "Id": "1", "Name": "RAID Controller 1",
			"Status":  obj{"State": "Enabled", "Health": "OK"},
			"Drives":  []obj{ref(st + "/Drives/0")},
			"Volumes": ref(st + "/Volumes"),
		}
	case len(sub) == 3 && sub[1] == "Drives" && sub[2] == "0":
		return obj{
			"@odata.type": "#Drive.v1_17_0.Drive", "@odata.id": st + "/Drives/0", "Id": "0", "Name": "Drive 0",
			"MediaType": "SSD", "Protocol": "SATA", "Manufacturer": "Emulated", "Model": "EMU-SSD-960",
			"SerialNumber": s.serial + "-D0", "CapacityBytes": emulatedDiskSize,
			"Status": obj{"State": "Enabled", "Health": "OK"},
		}
	case len(sub) == 2 && sub[1] == "Volumes":
		return collectionOf("#VolumeCollection.VolumeCollection", st+"/Volumes", "Volume Collection", []obj{ref(st + "/Volumes/1")})
	case len(sub) == 3 && sub[1] == "Volumes" && sub[2] == "1":
		return obj{
			"@odata.type": "#Volume.v1_9_0.Volume", "@odata.id": st + "/Volumes/1", "Id": "1", "Name": "Volume 1",
			"RAIDType": "RAID0", "VolumeUsage": "Data", "CapacityBytes": emulatedDiskSize,
			"Status": obj{"State": "Enabled", "Health": "OK"},
		}
	}
	return nil
}

// serveManagers routes /redfish/v1/Managers/...
func (e *Emulator) serveManagers(w http.ResponseWriter, r *http.Request, segs []string) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	var body obj
	switch {
	case len(segs) == 0:
		body = collectionOf("#ManagerCollection.ManagerCollection", managersPath, "Manager Collection", []obj{ref(managerPath)})
	case segs[0] != "BMC":
	case len(segs) == 1:
		body = obj{
			"@odata.type": "#Manager.v1_19_0.Manager", "@odata.id": managerPath, "Id": "BMC", "Name": "Manager",
			"ManagerType": "BMC", "UUID": e.managerUUID, "Manufacturer": e.opts.Manufacturer,
			"Model": e.opts.Model + " BMC", "SerialNumber": fmt.Sprintf("EMUBMC%X", e.seedHash[:4]),
			"FirmwareVersion": "1.2.3-emu", "PowerState": "On",
			"Status":             obj{"State": "Enabled", "Health": "OK"},
			"EthernetInterfaces": ref(managerPath + "/EthernetInterfaces"),
		}
	case len(segs) == 2 && segs[1] == "EthernetInterfaces":
		body = collectionOf("#EthernetInterfaceCollection.EthernetInterfaceCollection", managerPath+"/EthernetInterfaces",
			"Manager Ethernet Interface Collection", []obj{ref(managerPath + "/EthernetInterfaces/1")})
	case len(segs) == 3 && segs[1] == "EthernetInterfaces" && segs[2] == "1":
		body = obj{
			"@odata.type": "#EthernetInterface.v1_9_0.EthernetInterface", "@odata.id": managerPath + "/EthernetInterfaces/1",
			"Id": "1", "Name": "Manager Ethernet Interface", "MACAddress": e.managerMAC, "PermanentMACAddress": e.managerMAC,
			"LinkStatus": "LinkUp", "IPv4Addresses": []obj{{"Address": "127.0.0.1", "AddressOrigin": "Static"}},
			"Status": obj{"State": "Enabled", "Health": "OK"},
		}
	}
	if body == nil {
		notFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// serveSessions routes /redfish/v1/SessionService/...
func (e *Emulator) serveSessions(w http.ResponseWriter, r *http.Request, segs []string) {
	switch {
	case len(segs) == 0:
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, obj{
				"@odata.type": "#SessionService.v1_1_9.SessionService", "@odata.id": sessSvcPath,
				"Id": "SessionService", "Name": "Session Service", "ServiceEnabled": true,
				"SessionTimeout": 1800, "Sessions": ref(sessionsPath),
			})
		}
	case segs[0] != "Sessions":
		notFound(w, r)
	case len(segs) == 1:
		switch r.Method {
		case http.MethodGet:
			e.mu.RLock()
			ids := make([]int, 0, len(e.sessionIDs))
			for id := range e.sessionIDs {
				n, _ := strconv.Atoi(id)
				ids = append(ids, n)
			}
			e.mu.RUnlock()
			slices.Sort(ids)
			members := make([]obj, 0, len(ids))
			for _, id := range ids {
				members = append(members, ref(sessionsPath+"/"+strconv.Itoa(id)))
			}
			writeJSON(w, http.StatusOK, collectionOf("#SessionCollection.SessionCollection", sessionsPath, "Session Collection", members))
		case http.MethodPost:
			e.createSession(w, r)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPost)
		}
	case len(segs) == 2:
		id := segs[1]
		e.mu.Lock()
		token, ok := e.sessionIDs[id]
		var sess *session
		if ok {
			sess = e.sessions[token]
		}
		if ok && r.Method == http.MethodDelete {
			delete(e.sessionIDs, id)
			delete(e.sessions, token)
		}
		e.mu.Unlock()
		if !ok {
			notFound(w, r)
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, sessionJSON(sess))
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodDelete)
		}
	default:
		notFound(w, r)
	}
}

func sessionJSON(s *session) obj {
	return obj{
		"@odata.type": "#Session.v1_7_0.Session", "@odata.id": sessionsPath + "/" + s.id,
		"Id": s.id, "Name": "User Session", "UserName": s.username,
	}
}

// createSession handles POST .../Sessions with {"UserName","Password"}.
func (e *Emulator) createSession(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserName string `json:"UserName"`
		Password string `json:"Password"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])

	e.mu.Lock()
	if !e.credentialsMatch(req.UserName, req.Password) && !e.accountMatchLocked(req.UserName, req.Password) {
		e.mu.Unlock()
		writeError(w, http.StatusUnauthorized, "InsufficientPrivilege", "Invalid user name or password.")
		return
	}
	e.sessionSeq++
	sess := &session{id: strconv.Itoa(e.sessionSeq), token: token, username: req.UserName}
	e.sessions[token] = sess
	e.sessionIDs[sess.id] = token
	e.mu.Unlock()

	w.Header().Set("X-Auth-Token", token)
	w.Header().Set("Location", sessionsPath+"/"+sess.id)
	writeJSON(w, http.StatusCreated, sessionJSON(sess))
}

func collectionOf(odataType, path, name string, members []obj) obj {
	return obj{
		"@odata.type":         odataType,
		"@odata.id":           path,
		"Name":                name,
		"Members":             members,
		"Members@odata.count": len(members),
	}
}

// decodeBody decodes a JSON request body into v, answering 400 if it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err == nil && len(bytes.TrimSpace(data)) == 0 {
		err = fmt.Errorf("empty body")
	}
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "MalformedJSON", "The request body could not be parsed: "+err.Error())
		return false
	}
	return true
}

// allow answers 405 unless the request uses one of methods (HEAD is allowed with GET).
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) || (r.Method == http.MethodHead && slices.Contains(methods, http.MethodGet)) {
		return true
	}
	methodNotAllowed(w, methods...)
	return false
}

func methodNotAllowed(w http.ResponseWriter, methods ...string) {
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, "OperationNotAllowed", "The HTTP method is not allowed on this resource.")
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "ResourceNotFound", "The resource "+r.URL.Path+" was not found.")
}

func notInList(w http.ResponseWriter, prop, value string) {
	writeError(w, http.StatusBadRequest, "PropertyValueNotInList",
		fmt.Sprintf("The value %q for the property %s is not in the list of acceptable values.", value, prop))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// writeError answers with a Redfish error body.
func writeError(w http.ResponseWriter, status int, messageID, message string) {
	writeJSON(w, status, obj{
		"error": obj{
			"code":    registry + "GeneralError",
			"message": "A general error has occurred. See ExtendedInfo for more information.",
			"@Message.ExtendedInfo": []obj{{
				"@odata.type": "#Message.v1_1_1.Message",
				"MessageId":   registry + messageID,
				"Message":     message,
				"Severity":    "Warning",
			}},
		},
	})
}
