package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

// managerResetTypes are the Manager.Reset types the emulated BMC accepts (generic profile).
var managerResetTypes = []string{string(bmc.ResetGracefulRestart), string(bmc.ResetForceRestart)}

// managerActions is the Actions property of the manager resource at uri.
func (e *Emulator) managerActions(uri string) obj {
	return obj{"#Manager.Reset": obj{
		"target":                            uri + "/Actions/Manager.Reset",
		"ResetType@Redfish.AllowableValues": e.vendor.managerResetTypes,
	}}
}

// resetManager handles POST <manager>/Actions/Manager.Reset: the BMC restarts,
// which cures a hung service (SetHung), and answers 503 for Options.ManagerResetDelay.
func (e *Emulator) resetManager(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ResetType *string `json:"ResetType"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	switch {
	case req.ResetType == nil:
		writeError(w, http.StatusBadRequest, "ActionParameterMissing", "The action requires the parameter ResetType.")
		return
	case !slices.Contains(e.vendor.managerResetTypes, *req.ResetType):
		writeError(w, http.StatusBadRequest, "ActionParameterValueNotInList",
			fmt.Sprintf("The value %q for the parameter ResetType is not in the list of acceptable values.", *req.ResetType))
		return
	}
	e.managerResets.Add(1)
	e.hung.Store(false)
	if d := e.opts.ManagerResetDelay; d > 0 {
		e.rebootUntil.Store(time.Now().Add(d).UnixNano())
	}
	w.WriteHeader(http.StatusNoContent)
}

// rebooting reports whether the BMC is restarting after a manager reset at now.
func (e *Emulator) rebooting(now time.Time) bool {
	return now.UnixNano() < e.rebootUntil.Load()
}

// SetHung makes the BMC's Redfish service hang (or stops it): every request answers 503
// Service Unavailable, except the service root, sessions and the manager, so that the BMC
// still takes a Manager.Reset, which cures the hang. This is the failure an automatic BMC
// reset is for; SetUnavailable is one no reset cures.
func (e *Emulator) SetHung(hung bool) { e.hung.Store(hung) }

// ManagerResetCount returns how many Manager.Reset requests the BMC accepted.
func (e *Emulator) ManagerResetCount() int { return int(e.managerResets.Load()) }
