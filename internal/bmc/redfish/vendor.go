package redfish

import (
	"slices"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

// Vendor differences the client handles (docs/vendors.md). The client decides from what a
// service advertises first (reset types it allows, whether it reports a boot override mode,
// the ETag it sends) so that an unknown vendor with a known behaviour works too; the
// Manufacturer is consulted only for what a service does not advertise.

// Manufacturers as systems report them, matched exactly as the reference operator does.
const (
	ManufacturerDell       = "Dell Inc."
	ManufacturerHPE        = "HPE"
	ManufacturerLenovo     = "Lenovo"
	ManufacturerSupermicro = "Supermicro"
)

// quirks are the differences a service does not advertise.
type quirks struct {
	// modeWithTarget: the service forgets the boot override mode unless the PATCH that sets
	// the target carries it (Supermicro; DMTF Redfishtool #106, the reference's #607). A
	// service with the same habit but another name is caught by reading the override back.
	modeWithTarget bool
}

// quirksOf returns the quirks of the vendor whose systems report manufacturer.
func quirksOf(manufacturer string) quirks {
	switch manufacturer {
	case ManufacturerSupermicro:
		return quirks{modeWithTarget: true}
	}
	return quirks{}
}

// overrideMode returns the BootSourceOverrideMode a PATCH setting override o on sys carries,
// or "" to leave it out: never where the system reports no mode (iLO 4, Supermicro X10
// reject the property) or advertises modes without o.Mode; with the target where the vendor
// forgets it otherwise; else only when it differs from the current mode (some services
// refuse a rewrite of the mode).
func overrideMode(sys *computerSystem, o bmc.BootOverride) bmc.BootMode {
	cur := bmc.BootMode(sys.Boot.BootSourceOverrideMode)
	switch {
	case o.Mode == "" || cur == "":
		return ""
	case len(sys.Boot.AllowableModes) > 0 && !slices.Contains(sys.Boot.AllowableModes, string(o.Mode)):
		return ""
	case !o.Disabled() && quirksOf(sys.Manufacturer).modeWithTarget:
		return o.Mode
	case cur != o.Mode:
		return o.Mode
	}
	return ""
}

// resetAlternatives are, for a reset type, the types that do the same from the given power
// state, best first, for a service that does not allow the type itself.
var resetAlternatives = map[bmc.ResetType][]struct {
	t    bmc.ResetType
	from bmc.PowerState // "" for any state
}{
	bmc.ResetOn:               {{bmc.ResetForceOn, ""}, {bmc.ResetPushPowerButton, bmc.PowerStateOff}},
	bmc.ResetForceOn:          {{bmc.ResetOn, ""}, {bmc.ResetPushPowerButton, bmc.PowerStateOff}},
	bmc.ResetGracefulShutdown: {{bmc.ResetPushPowerButton, bmc.PowerStateOn}},
}

// chooseReset returns the reset type to send for want on a system in state power whose
// service allows the given types (none advertised: any): want itself if allowed, else the
// first alternative that is allowed and fits the power state, else want (which the caller
// refuses).
func chooseReset(want bmc.ResetType, power bmc.PowerState, allowed []string) bmc.ResetType {
	if len(allowed) == 0 || slices.Contains(allowed, string(want)) {
		return want
	}
	for _, alt := range resetAlternatives[want] {
		if (alt.from == "" || alt.from == power) && slices.Contains(allowed, string(alt.t)) {
			return alt.t
		}
	}
	return want
}
