package emulator

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
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
	// managerPath is the generic profile's manager; a profile may name it differently
	// (Emulator.managerURI).
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
	if e.unavailable.Load() || e.rebooting(time.Now()) {
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

	if e.hung.Load() && len(segs) > 0 && segs[0] != "Managers" && segs[0] != "SessionService" {
		writeError(w, http.StatusServiceUnavailable, "ServiceTemporarilyUnavailable", "The service is temporarily unavailable.")
		return
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
	case segs[0] == "TaskService":
		e.serveTasks(w, r, segs[1:])
	case segs[0] == "EventService":
		e.serveEvents(w, r, segs[1:])
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
	root := obj{
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
		"TaskService":    ref(taskSvcPath),
		"EventService":   ref(eventSvcPath),
		"Links":          obj{"Sessions": ref(sessionsPath)},
	}
	if e.opts.Expand != ExpandNone {
		root["ProtocolFeaturesSupported"] = obj{"ExpandQuery": obj{
			"ExpandAll": false, "Levels": true, "Links": false, "NoLinks": true, "MaxLevels": MaxExpandLevels,
		}}
	}
	return root
}

// serveSystems routes /redfish/v1/Systems/...
func (e *Emulator) serveSystems(w http.ResponseWriter, r *http.Request, segs []string) {
	if r.Method == http.MethodGet && r.URL.Query().Has("$expand") && e.opts.Expand != ExpandNone {
		e.serveExpanded(w, r, segs)
		return
	}
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
			s.reads++
			body, etag := e.systemJSON(s), e.etag(s)
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
	case sub[0] == "Storage":
		e.serveStorage(w, r, s, sub[1:])
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
	body := obj{
		"@odata.type":  "#ComputerSystem.v1_20_0.ComputerSystem",
		"@odata.id":    s.uri,
		"@odata.etag":  e.etag(s),
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
		"Links":              obj{"ManagedBy": []obj{ref(e.managerURI())}},
		"Actions": obj{
			"#ComputerSystem.Reset": obj{
				"target":                            s.uri + "/Actions/ComputerSystem.Reset",
				"ResetType@Redfish.AllowableValues": bmc.ResetTypes,
			},
		},
	}
	e.shapeSystem(body)
	return body
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
	if e.refuseReset(w, t) {
		return
	}
	s.mu.Lock()
	err := s.reset(t, time.Now(), e.opts.PowerDelay)
	s.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusConflict, "ResourceInUse", "The change could not be made because "+err.Error()+".")
		return
	}
	e.vendor.resetAnswer(e, w, s)
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
	if boot.Target != nil && !slices.Contains(e.vendor.bootTargets, *boot.Target) {
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

	if e.refusePatch(w, r, boot.Mode) {
		return
	}
	s.mu.Lock()
	s.advance(time.Now())
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && !etagListContains(m, e.etag(s)) {
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
	mode := e.patchedBootMode(s.bootMode, boot.Target, boot.Mode)
	set(&s.bootMode, &mode)
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
	body, etag := e.systemJSON(s), e.etag(s)
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

// serveManagers routes /redfish/v1/Managers/...
func (e *Emulator) serveManagers(w http.ResponseWriter, r *http.Request, segs []string) {
	mgr, mgrURI := e.vendor.managerID, e.managerURI()
	if len(segs) == 3 && segs[0] == mgr && segs[1] == "Actions" && segs[2] == "Manager.Reset" {
		if allow(w, r, http.MethodPost) {
			e.resetManager(w, r)
		}
		return
	}
	if len(segs) == 3 && segs[0] == mgr && segs[1] == "Jobs" {
		e.serveJob(w, r, segs[2])
		return
	}
	if !allow(w, r, http.MethodGet) {
		return
	}
	var body obj
	switch {
	case len(segs) == 0:
		body = collectionOf("#ManagerCollection.ManagerCollection", managersPath, "Manager Collection", []obj{ref(mgrURI)})
	case segs[0] != mgr:
	case len(segs) == 1:
		body = obj{
			"@odata.type": "#Manager.v1_19_0.Manager", "@odata.id": mgrURI, "Id": mgr, "Name": "Manager",
			"ManagerType": "BMC", "UUID": e.managerUUID, "Manufacturer": e.opts.Manufacturer,
			"Model": e.opts.Model + " BMC", "SerialNumber": fmt.Sprintf("EMUBMC%X", e.seedHash[:4]),
			"FirmwareVersion": "1.2.3-emu", "PowerState": "On",
			"Status":             obj{"State": "Enabled", "Health": "OK"},
			"EthernetInterfaces": ref(mgrURI + "/EthernetInterfaces"),
			"Actions":            e.managerActions(mgrURI),
		}
		e.shapeManager(body)
	case len(segs) == 2 && segs[1] == "EthernetInterfaces":
		body = collectionOf("#EthernetInterfaceCollection.EthernetInterfaceCollection", mgrURI+"/EthernetInterfaces",
			"Manager Ethernet Interface Collection", []obj{ref(mgrURI + "/EthernetInterfaces/1")})
	case len(segs) == 3 && segs[1] == "EthernetInterfaces" && segs[2] == "1":
		body = obj{
			"@odata.type": "#EthernetInterface.v1_9_0.EthernetInterface", "@odata.id": mgrURI + "/EthernetInterfaces/1",
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
