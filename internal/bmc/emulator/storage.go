package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DriveSpec describes one emulated drive.
type DriveSpec struct {
	Model         string
	MediaType     string // SSD or HDD
	Protocol      string // SATA, SAS, NVMe
	CapacityBytes int64
}

// defaultDrives are the drives of a system when Options.Drives is nil.
var defaultDrives = []DriveSpec{
	{Model: "EMU-SSD-960", MediaType: "SSD", Protocol: "SATA", CapacityBytes: emulatedDiskSize},
	{Model: "EMU-NVME-1920", MediaType: "SSD", Protocol: "NVMe", CapacityBytes: 2 * emulatedDiskSize},
}

// driveState is one drive of one system. Its Id is its position, counted from 0.
type driveState struct {
	spec DriveSpec
	// noErase omits the Drive.SecureErase action; eraseFault makes every erase end in
	// Exception with this message (see FailErase).
	noErase    bool
	eraseFault string
	// erases counts the erases accepted; task is the Id of the running or last erase task.
	erases int
	task   string
}

// diskStore holds the drives of every system, created on first use. Its zero value is
// ready to use.
type diskStore struct {
	mu       sync.Mutex
	bySystem map[string][]*driveState // by system Id
}

// drivesLocked returns the drives of a system, creating them from opts. Callers hold d.mu.
func (d *diskStore) drivesLocked(systemID string, opts Options) []*driveState {
	if d.bySystem == nil {
		d.bySystem = map[string][]*driveState{}
	}
	drives, ok := d.bySystem[systemID]
	if !ok {
		specs := opts.Drives
		if specs == nil {
			specs = defaultDrives
		}
		drives = make([]*driveState, 0, len(specs))
		for _, sp := range specs {
			drives = append(drives, &driveState{spec: sp})
		}
		d.bySystem[systemID] = drives
	}
	return drives
}

// withDrive runs f on a drive of the system with the given UUID under the store's lock; it
// reports false if there is no such system or drive.
func (e *Emulator) withDrive(uuid, driveID string, f func(*driveState)) bool {
	s := e.lookup(uuid)
	if s == nil {
		return false
	}
	e.disks.mu.Lock()
	defer e.disks.mu.Unlock()
	drives := e.disks.drivesLocked(s.id, e.opts)
	i, err := strconv.Atoi(driveID)
	if err != nil || i < 0 || i >= len(drives) || strconv.Itoa(i) != driveID {
		return false
	}
	f(drives[i])
	return true
}

// SetDrives replaces the drives of a system. It reports whether the system exists.
func (e *Emulator) SetDrives(uuid string, drives []DriveSpec) bool {
	s := e.lookup(uuid)
	if s == nil {
		return false
	}
	e.disks.mu.Lock()
	defer e.disks.mu.Unlock()
	e.disks.drivesLocked(s.id, e.opts)
	states := make([]*driveState, 0, len(drives))
	for _, sp := range drives {
		states = append(states, &driveState{spec: sp})
	}
	e.disks.bySystem[s.id] = states
	return true
}

// FailErase makes every later secure erase of a drive (by its Id, "0", "1", ...) of a
// system end in Exception with a message naming the drive; an empty message stops it.
// It reports whether the drive exists.
func (e *Emulator) FailErase(uuid, driveID string) bool {
	return e.withDrive(uuid, driveID, func(d *driveState) {
		d.eraseFault = "Secure erase of drive " + driveID + " failed: the drive reported a media error."
	})
}

// SetSecureEraseSupported makes a drive offer the Drive.SecureErase action or not (a drive
// without it omits the action, and a POST to it is refused). It reports whether the drive
// exists.
func (e *Emulator) SetSecureEraseSupported(uuid, driveID string, supported bool) bool {
	return e.withDrive(uuid, driveID, func(d *driveState) { d.noErase = !supported })
}

// EraseCount returns how many secure erases of a drive the BMC accepted.
func (e *Emulator) EraseCount(uuid, driveID string) int {
	n := 0
	e.withDrive(uuid, driveID, func(d *driveState) { n = d.erases })
	return n
}

// serveStorage routes .../Systems/{id}/Storage/...: one controller with the system's
// drives and one volume.
func (e *Emulator) serveStorage(w http.ResponseWriter, r *http.Request, s *system, sub []string) {
	base := s.uri + "/Storage"
	if len(sub) == 5 && sub[0] == "1" && sub[1] == "Drives" && sub[3] == "Actions" && sub[4] == "Drive.SecureErase" {
		if allow(w, r, http.MethodPost) {
			e.secureErase(w, r, s, sub[2])
		}
		return
	}
	if !allow(w, r, http.MethodGet) {
		return
	}
	body := e.storageResource(s, base, sub)
	if body == nil {
		notFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// storageResource renders .../Storage and below, or returns nil if there is no such resource.
func (e *Emulator) storageResource(s *system, base string, sub []string) obj {
	if len(sub) == 0 {
		return collectionOf("#StorageCollection.StorageCollection", base, "Storage Collection", []obj{ref(base + "/1")})
	}
	if sub[0] != "1" {
		return nil
	}
	st := base + "/1"
	e.disks.mu.Lock()
	defer e.disks.mu.Unlock()
	drives := e.disks.drivesLocked(s.id, e.opts)
	switch {
	case len(sub) == 1:
		members := make([]obj, 0, len(drives))
		for i := range drives {
			members = append(members, ref(st+"/Drives/"+strconv.Itoa(i)))
		}
		return obj{
			"@odata.type": "#Storage.v1_15_0.Storage", "@odata.id": st, "Id": "1", "Name": "RAID Controller 1",
			"Status":  obj{"State": "Enabled", "Health": "OK"},
			"Drives":  members,
			"Volumes": ref(st + "/Volumes"),
		}
	case len(sub) == 3 && sub[1] == "Drives":
		i, err := strconv.Atoi(sub[2])
		if err != nil || i < 0 || i >= len(drives) || strconv.Itoa(i) != sub[2] {
			return nil
		}
		return driveJSON(s, st+"/Drives/"+sub[2], sub[2], drives[i])
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

// driveJSON renders a drive. Callers hold e.disks.mu.
func driveJSON(s *system, uri, id string, d *driveState) obj {
	body := obj{
		"@odata.type": "#Drive.v1_17_0.Drive", "@odata.id": uri, "Id": id, "Name": "Drive " + id,
		"MediaType": d.spec.MediaType, "Protocol": d.spec.Protocol, "Manufacturer": "Emulated", "Model": d.spec.Model,
		"SerialNumber": s.serial + "-D" + id, "CapacityBytes": d.spec.CapacityBytes,
		"Status":  obj{"State": "Enabled", "Health": "OK"},
		"Actions": obj{},
	}
	if !d.noErase {
		body["Actions"] = obj{"#Drive.SecureErase": obj{"target": uri + "/Actions/Drive.SecureErase"}}
	}
	return body
}

// secureErase handles POST .../Drives/{id}/Actions/Drive.SecureErase: 202 Accepted with a
// task monitor in Location; the task runs for Options.EraseDuration.
func (e *Emulator) secureErase(w http.ResponseWriter, r *http.Request, s *system, driveID string) {
	// The action's parameters are optional: an empty body or a JSON object.
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	var params map[string]any
	if err == nil && len(bytes.TrimSpace(data)) > 0 {
		err = json.Unmarshal(data, &params)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "MalformedJSON", "The request body could not be parsed.")
		return
	}
	var (
		found, supported, busy bool
		id                     string
	)
	now := time.Now()
	name := "Secure erase of " + strings.TrimPrefix(s.uri, rootPath+"/") + " drive " + driveID
	// Checked and started under the drives' lock: of two erases at once, one is refused.
	e.withDrive(s.uuid, driveID, func(d *driveState) {
		found, supported = true, !d.noErase
		busy = d.task != "" && e.tasks.running(d.task, now)
		if supported && !busy {
			id = e.tasks.start(name, now, e.opts.EraseDuration, d.eraseFault)
			d.erases++
			d.task = id
		}
	})
	switch {
	case !found:
		notFound(w, r)
		return
	case !supported:
		writeError(w, http.StatusBadRequest, "ActionNotSupported", "The action Drive.SecureErase is not supported by the resource.")
		return
	case busy:
		writeError(w, http.StatusConflict, "ResourceInUse", "The change could not be made because a secure erase of the drive is in progress.")
		return
	}
	e.writeTask(w, http.StatusAccepted, id, now)
}
