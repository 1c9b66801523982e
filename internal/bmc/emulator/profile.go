package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

// Profile selects the vendor whose Redfish differences the emulator reproduces (see
// docs/vendors.md). The empty Profile is ProfileGeneric.
type Profile string

// Profiles.
const (
	// ProfileGeneric is a plain DMTF Redfish service: systems 1..n, manager BMC, every reset
	// type, If-Match optional, 204 for a reset.
	ProfileGeneric Profile = "generic"
	// ProfileDell is an iDRAC: systems System.Embedded.n, manager iDRAC.Embedded.1, no
	// ForceOn, a reset answered 202 Accepted with a job as its task monitor.
	ProfileDell Profile = "dell"
	// ProfileHPE is an iLO: If-Match required on PATCH (428 without, 412 on a stale ETag), no
	// BootSourceOverrideMode, no GracefulShutdown (PushPowerButton shuts down), a reset
	// answered 200 with a Success message in an error body.
	ProfileHPE Profile = "hpe"
	// ProfileLenovo is an XCC whose reset types lack On (ForceOn powers on).
	ProfileLenovo Profile = "lenovo"
	// ProfileSupermicro forgets the boot override mode: a PATCH of the override target
	// without BootSourceOverrideMode sets the mode back to Legacy.
	ProfileSupermicro Profile = "supermicro"
)

// Profiles lists every profile, generic first.
var Profiles = []Profile{ProfileGeneric, ProfileDell, ProfileHPE, ProfileLenovo, ProfileSupermicro}

// ParseProfile returns the profile named s ("" is generic).
func ParseProfile(s string) (Profile, error) {
	if s == "" {
		return ProfileGeneric, nil
	}
	p := Profile(strings.ToLower(s))
	if !slices.Contains(Profiles, p) {
		return "", fmt.Errorf("unknown profile %q (one of %v)", s, Profiles)
	}
	return p, nil
}

// String returns the profile's name.
func (p Profile) String() string { return string(p) }

// Manufacturer is the Manufacturer the profile's systems and manager report: the strings the
// reference operator matches its vendors by.
func (p Profile) Manufacturer() string { return vendorOf(p).manufacturer }

// vendor is everything a profile changes. The zero value of a field is the generic
// behaviour.
type vendor struct {
	manufacturer string
	model        string
	// systemIDPrefix is put before a system's index to form its Id.
	systemIDPrefix string
	// managerID is the Id of the one manager.
	managerID string
	// resetTypes are the ComputerSystem.Reset types accepted and advertised.
	resetTypes []bmc.ResetType
	// managerResetTypes are the Manager.Reset types accepted and advertised.
	managerResetTypes []string
	// bootTargets are the BootSourceOverrideTarget values accepted and advertised.
	bootTargets []string
	// requireIfMatch: a PATCH of a system without If-Match answers 428 Precondition Required.
	requireIfMatch bool
	// weakETags: ETags are weak (W/"..."), as iLO sends them; If-Match quotes them as sent.
	weakETags bool
	// noManagerPowerState: the manager does not report its PowerState.
	noManagerPowerState bool
	// noOverrideMode: systems neither report nor accept BootSourceOverrideMode.
	noOverrideMode bool
	// forgetsOverrideMode: a PATCH of BootSourceOverrideTarget without
	// BootSourceOverrideMode sets the mode to Legacy.
	forgetsOverrideMode bool
	// resetAnswer writes the success response of an accepted reset.
	resetAnswer func(e *Emulator, w http.ResponseWriter, s *system)
}

// vendorOf returns the behaviour of profile p (generic for an unknown one).
func vendorOf(p Profile) vendor {
	switch p {
	case ProfileDell:
		return dellVendor
	case ProfileHPE:
		return hpeVendor
	case ProfileLenovo:
		return lenovoVendor
	case ProfileSupermicro:
		return supermicroVendor
	}
	return genericVendor
}

// genericVendor is the behaviour without a profile.
var genericVendor = vendor{
	manufacturer:      DefaultManufacturer,
	model:             DefaultModel,
	systemIDPrefix:    "",
	managerID:         "BMC",
	resetTypes:        bmc.ResetTypes,
	managerResetTypes: managerResetTypes,
	bootTargets:       allowableBootTargets,
	resetAnswer:       answerNoContent,
}

// answerNoContent is the plain answer to an accepted action: 204 No Content.
func answerNoContent(_ *Emulator, w http.ResponseWriter, _ *system) {
	w.WriteHeader(http.StatusNoContent)
}

// systemID returns the Redfish Id of the system with the given index.
func (v *vendor) systemID(index int) string { return v.systemIDPrefix + strconv.Itoa(index) }

// managerURI returns the path of the emulated manager.
func (e *Emulator) managerURI() string { return managersPath + "/" + e.vendor.managerID }

// etag returns the ETag of system s as the profile's service writes it. Callers hold s.mu.
func (e *Emulator) etag(s *system) string {
	if e.vendor.weakETags {
		return "W/" + s.etag()
	}
	return s.etag()
}

// Profile returns the emulator's profile.
func (e *Emulator) Profile() Profile { return e.opts.Profile }

// shapeSystem changes a rendered system the way the profile's service renders it.
func (e *Emulator) shapeSystem(body obj) {
	boot := body["Boot"].(obj)
	boot["BootSourceOverrideTarget@Redfish.AllowableValues"] = e.vendor.bootTargets
	if e.vendor.noOverrideMode {
		delete(boot, "BootSourceOverrideMode")
	}
	body["Actions"].(obj)["#ComputerSystem.Reset"].(obj)["ResetType@Redfish.AllowableValues"] = e.vendor.resetTypes
}

// shapeManager changes the rendered manager the way the profile's service renders it.
func (e *Emulator) shapeManager(body obj) {
	if e.vendor.noManagerPowerState {
		delete(body, "PowerState")
	}
}

// refuseReset answers 400 and reports true if the profile does not accept reset type t.
func (e *Emulator) refuseReset(w http.ResponseWriter, t bmc.ResetType) bool {
	if slices.Contains(e.vendor.resetTypes, t) {
		return false
	}
	writeError(w, http.StatusBadRequest, "ActionParameterValueNotInList",
		fmt.Sprintf("The value %q for the parameter ResetType is not in the list of acceptable values.", t))
	return true
}

// refusePatch answers and reports true if the profile refuses a PATCH of a system before
// looking at its ETag: a missing If-Match where one is required, a boot override mode where
// there is none.
func (e *Emulator) refusePatch(w http.ResponseWriter, r *http.Request, mode *string) bool {
	if e.vendor.requireIfMatch && r.Header.Get("If-Match") == "" {
		writeError(w, http.StatusPreconditionRequired, "PreconditionRequired",
			"A precondition header (If-Match) is required for this request.")
		return true
	}
	if mode != nil && e.vendor.noOverrideMode {
		writeError(w, http.StatusBadRequest, "PropertyUnknown",
			"The property BootSourceOverrideMode is not in the list of valid properties for the resource.")
		return true
	}
	return false
}

// patchedBootMode returns the boot override mode after a PATCH that set target and mode
// (nil: not in the PATCH) on a system whose mode is cur.
func (e *Emulator) patchedBootMode(cur string, target, mode *string) string {
	switch {
	case mode != nil:
		return *mode
	case target != nil && e.vendor.forgetsOverrideMode:
		return string(bmc.BootModeLegacy)
	}
	return cur
}
