package redfish

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

func TestChooseReset(t *testing.T) {
	all := []string{"On", "ForceOff", "GracefulShutdown", "ForceOn", "PushPowerButton"}
	tests := []struct {
		name    string
		want    bmc.ResetType
		power   bmc.PowerState
		allowed []string
		chosen  bmc.ResetType
	}{
		{"nothing advertised", bmc.ResetOn, bmc.PowerStateOff, nil, bmc.ResetOn},
		{"allowed as asked", bmc.ResetOn, bmc.PowerStateOff, all, bmc.ResetOn},
		{"no On: ForceOn", bmc.ResetOn, bmc.PowerStateOff, []string{"ForceOn", "ForceOff"}, bmc.ResetForceOn},
		{"no On, no ForceOn: the button of a system that is off", bmc.ResetOn, bmc.PowerStateOff, []string{"ForceOff", "PushPowerButton"}, bmc.ResetPushPowerButton},
		{"the button is not pressed to power on a system that is not off", bmc.ResetOn, bmc.PowerStatePoweringOff, []string{"ForceOff", "PushPowerButton"}, bmc.ResetOn},
		{"no ForceOn: On", bmc.ResetForceOn, bmc.PowerStateOff, []string{"On"}, bmc.ResetOn},
		{"no GracefulShutdown: the button of a system that is on", bmc.ResetGracefulShutdown, bmc.PowerStateOn, []string{"On", "ForceOff", "PushPowerButton"}, bmc.ResetPushPowerButton},
		{"the button is not pressed to shut down a system that is not on", bmc.ResetGracefulShutdown, bmc.PowerStatePaused, []string{"On", "ForceOff", "PushPowerButton"}, bmc.ResetGracefulShutdown},
		{"no alternative: as asked (refused by the caller)", bmc.ResetForceOff, bmc.PowerStateOn, []string{"On"}, bmc.ResetForceOff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(chooseReset(tt.want, tt.power, tt.allowed)).To(Equal(tt.chosen))
		})
	}
}

func TestOverrideMode(t *testing.T) {
	sys := func(manufacturer, mode string, allowed ...string) *computerSystem {
		s := &computerSystem{Manufacturer: manufacturer}
		s.Boot.BootSourceOverrideMode = mode
		s.Boot.AllowableModes = allowed
		return s
	}
	pxeUEFI := bmc.BootOverride{Target: bmc.BootTargetPxe, Mode: bmc.BootModeUEFI, Once: true}
	tests := []struct {
		name string
		sys  *computerSystem
		o    bmc.BootOverride
		want bmc.BootMode
	}{
		{"no mode asked", sys("Acme", "Legacy"), bmc.BootOverride{Target: bmc.BootTargetPxe}, ""},
		{"differs: sent", sys("Acme", "Legacy"), pxeUEFI, bmc.BootModeUEFI},
		{"same: left out", sys("Acme", "UEFI"), pxeUEFI, ""},
		{"not reported: never sent", sys(ManufacturerHPE, ""), pxeUEFI, ""},
		{"not among the advertised modes: left out", sys("Acme", "Legacy", "Legacy"), pxeUEFI, ""},
		{"supermicro: always with the target", sys(ManufacturerSupermicro, "UEFI"), pxeUEFI, bmc.BootModeUEFI},
		{"supermicro, disabling: left out", sys(ManufacturerSupermicro, "UEFI"), bmc.BootOverride{Target: bmc.BootTargetNone, Mode: bmc.BootModeUEFI}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(overrideMode(tt.sys, tt.o)).To(Equal(tt.want))
		})
	}
}
