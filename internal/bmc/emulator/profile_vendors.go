package emulator

import (
	"net/http"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

// The vendors' documented differences, one variable each; docs/vendors.md lists them with
// what the client does about each.

// dellVendor is an iDRAC 9: Dell's resource ids, the reset types iDRAC advertises (no
// ForceOn; only a graceful restart of the iDRAC itself) and its boot targets (no Usb, no
// UefiShell). A reset is answered 202 Accepted with
// a job (Location) that the service completes when the power transition ends: the emulator's
// stand-in for iDRAC's job-backed actions.
var dellVendor = vendor{
	manufacturer:   "Dell Inc.",
	model:          "PowerEdge R650",
	systemIDPrefix: "System.Embedded.",
	managerID:      "iDRAC.Embedded.1",
	resetTypes: []bmc.ResetType{
		bmc.ResetOn, bmc.ResetForceOff, bmc.ResetForceRestart, bmc.ResetGracefulRestart,
		bmc.ResetGracefulShutdown, bmc.ResetPushPowerButton, bmc.ResetNmi, bmc.ResetPowerCycle,
	},
	managerResetTypes: []string{string(bmc.ResetGracefulRestart)},
	bootTargets:       []string{"None", "Pxe", "Floppy", "Cd", "Hdd", "BiosSetup", "Utilities", "UefiTarget", "SDCard", "UefiHttp"},
	resetAnswer:       answerWithJob,
}

// hpeVendor is an iLO: systems and manager numbered from 1, weak ETags (W/"...") that every
// PATCH must quote in If-Match, no BootSourceOverrideMode (iLO 4), iLO 4's reset types (no
// GracefulShutdown: a short PushPowerButton is the graceful shutdown), a manager without
// PowerState (the reference's #601), and iLO's answer to an action: 200 with an "error" body
// whose message is Success.
var hpeVendor = vendor{
	manufacturer: "HPE",
	model:        "ProLiant DL360 Gen10",
	managerID:    "1",
	resetTypes: []bmc.ResetType{
		bmc.ResetOn, bmc.ResetForceOff, bmc.ResetForceRestart, bmc.ResetNmi, bmc.ResetPushPowerButton,
	},
	managerResetTypes:   managerResetTypes,
	bootTargets:         []string{"None", "Cd", "Hdd", "Usb", "Utilities", "Diags", "BiosSetup", "Pxe", "UefiShell", "UefiHttp", "UefiTarget"},
	requireIfMatch:      true,
	weakETags:           true,
	noManagerPowerState: true,
	noOverrideMode:      true,
	resetAnswer:         answerILOSuccess,
}

// lenovoVendor is an XCC: systems and manager numbered from 1, and a service that powers on
// with ForceOn only (no On among its reset types): the case of a client that must pick a
// reset type from what the service advertises.
var lenovoVendor = vendor{
	manufacturer: "Lenovo",
	model:        "ThinkSystem SR650 V2",
	managerID:    "1",
	resetTypes: []bmc.ResetType{
		bmc.ResetForceOn, bmc.ResetForceOff, bmc.ResetForceRestart, bmc.ResetGracefulRestart,
		bmc.ResetGracefulShutdown, bmc.ResetNmi,
	},
	managerResetTypes: managerResetTypes,
	bootTargets:       []string{"None", "Pxe", "Cd", "Usb", "Hdd", "BiosSetup", "Diags", "UefiTarget", "UefiHttp"},
	resetAnswer:       answerNoContent,
}

// supermicroVendor is an X11/X12 BMC: systems and manager numbered from 1, its reset types
// (no PushPowerButton, no PowerCycle), and a boot override that falls back to Legacy mode
// unless the PATCH carries BootSourceOverrideMode (DMTF Redfishtool #106; the reference's
// #607).
var supermicroVendor = vendor{
	manufacturer: "Supermicro",
	model:        "SYS-1029U-TRT",
	managerID:    "1",
	resetTypes: []bmc.ResetType{
		bmc.ResetOn, bmc.ResetForceOff, bmc.ResetGracefulShutdown, bmc.ResetGracefulRestart,
		bmc.ResetForceRestart, bmc.ResetNmi, bmc.ResetForceOn,
	},
	managerResetTypes:   managerResetTypes,
	bootTargets:         []string{"None", "Pxe", "Hdd", "Cd", "Usb", "BiosSetup", "UefiShell", "UefiHttp"},
	forgetsOverrideMode: true,
	resetAnswer:         answerNoContent,
}

// answerILOSuccess is iLO's answer to an accepted action: 200 with an error object whose
// extended message is Success.
func answerILOSuccess(_ *Emulator, w http.ResponseWriter, _ *system) {
	writeJSON(w, http.StatusOK, obj{"error": obj{
		"code":    "iLO.0.10.ExtendedInfo",
		"message": "See @Message.ExtendedInfo for more information.",
		"@Message.ExtendedInfo": []obj{{
			"MessageId": "Base.1.4.Success",
		}},
	}})
}
