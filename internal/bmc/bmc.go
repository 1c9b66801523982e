// Package bmc defines how the operator talks to a baseboard management controller.
//
// The interface is split by capability (power, boot, inventory, indicator LED) so that a
// controller can depend on exactly what it uses and tests can substitute small fakes.
// Implementations live in sub-packages (internal/bmc/redfish); internal/bmc/emulator is a
// stateful Redfish BMC used by tests and the development environment.
//
// Every error returned by an implementation wraps one of the sentinel errors below when the
// failure falls into one of their classes, so callers decide with errors.Is and turn an error
// into a condition reason with Reason. Error messages never contain credentials.
package bmc

import (
	"context"
)

// PowerState is the power state of a system as reported by the BMC (Redfish PowerState).
type PowerState string

// Power states. The empty PowerState means the BMC did not report one.
const (
	PowerStateOn          PowerState = "On"
	PowerStateOff         PowerState = "Off"
	PowerStatePoweringOn  PowerState = "PoweringOn"
	PowerStatePoweringOff PowerState = "PoweringOff"
	PowerStatePaused      PowerState = "Paused"
	PowerStateUnknown     PowerState = ""
)

// ResetType is a Redfish ComputerSystem.Reset type.
type ResetType string

// Reset types.
const (
	ResetOn               ResetType = "On"
	ResetForceOff         ResetType = "ForceOff"
	ResetGracefulShutdown ResetType = "GracefulShutdown"
	ResetGracefulRestart  ResetType = "GracefulRestart"
	ResetForceRestart     ResetType = "ForceRestart"
	ResetForceOn          ResetType = "ForceOn"
	ResetPowerCycle       ResetType = "PowerCycle"
	ResetNmi              ResetType = "Nmi"
	ResetPushPowerButton  ResetType = "PushPowerButton"
)

// ResetTypes lists every ResetType in a stable order.
var ResetTypes = []ResetType{
	ResetOn, ResetForceOff, ResetGracefulShutdown, ResetGracefulRestart, ResetForceRestart,
	ResetForceOn, ResetPowerCycle, ResetNmi, ResetPushPowerButton,
}

// Valid reports whether t is one of the known reset types.
func (t ResetType) Valid() bool {
	for _, k := range ResetTypes {
		if t == k {
			return true
		}
	}
	return false
}

// BootTarget is a boot source override target (Redfish BootSourceOverrideTarget).
type BootTarget string

// Boot targets.
const (
	BootTargetPxe      BootTarget = "Pxe"
	BootTargetUefiHttp BootTarget = "UefiHttp"
	BootTargetHdd      BootTarget = "Hdd"
	BootTargetNone     BootTarget = "None"
)

// BootMode is the firmware boot mode used for an override (Redfish BootSourceOverrideMode).
// The empty BootMode leaves the mode as the BMC has it.
type BootMode string

// Boot modes.
const (
	BootModeUEFI   BootMode = "UEFI"
	BootModeLegacy BootMode = "Legacy"
)

// IndicatorLED is the state of a system's identification LED.
type IndicatorLED string

// Indicator LED states. IndicatorLEDUnknown is reported, never set.
const (
	IndicatorLEDLit      IndicatorLED = "Lit"
	IndicatorLEDBlinking IndicatorLED = "Blinking"
	IndicatorLEDOff      IndicatorLED = "Off"
	IndicatorLEDUnknown  IndicatorLED = "Unknown"
)

// System identifies one computer system managed by a BMC.
type System struct {
	// UUID as the BMC reports it (case preserved; compare case-insensitively).
	UUID string
	// URI is the Redfish path of the system, e.g. /redfish/v1/Systems/1.
	URI string
}

// BootOverride is a boot source override. Target None (or empty) with Once false means no
// override; Once false with another target means a continuous override.
type BootOverride struct {
	Target BootTarget
	Mode   BootMode
	Once   bool
}

// Disabled reports whether o means "no override".
func (o BootOverride) Disabled() bool {
	return o.Target == "" || o.Target == BootTargetNone
}

// SystemInfo is what one GET of a system resource yields: identity, power, LED, the current
// boot override and boot order. It is cheap and meant to be read on every resync.
type SystemInfo struct {
	UUID             string
	URI              string
	Manufacturer     string
	Model            string
	SKU              string
	SerialNumber     string
	BIOSVersion      string
	PowerState       PowerState
	IndicatorLED     IndicatorLED
	TotalMemoryBytes int64
	BootOverride     BootOverride
	// BootOrder is the persistent boot order (Redfish Boot.BootOrder): boot option
	// references such as "Boot0001", tried first to last. Empty if the BMC reports none.
	BootOrder []string
}

// Processor is one processor of a system.
type Processor struct {
	ID             string
	Type           string
	Architecture   string
	InstructionSet string
	Manufacturer   string
	Model          string
	MaxSpeedMHz    int32
	TotalCores     int32
	TotalThreads   int32
}

// Memory is one populated memory module of a system.
type Memory struct {
	ID               string
	Manufacturer     string
	PartNumber       string
	MemoryDeviceType string
	CapacityMiB      int64
}

// NIC is one network interface of a system.
type NIC struct {
	ID         string
	Name       string
	MACAddress string
	IPv4       []string
	LinkStatus string
}

// Drive is a physical drive of a storage subsystem.
type Drive struct {
	Name      string
	MediaType string
	// Type is the drive's protocol (SATA, SAS, NVMe, ...).
	Type          string
	Vendor        string
	Model         string
	State         string
	CapacityBytes int64
}

// Volume is a logical volume of a storage subsystem.
type Volume struct {
	Name          string
	State         string
	RAIDType      string
	VolumeUsage   string
	CapacityBytes int64
}

// Storage is one storage subsystem of a system with its drives and volumes.
type Storage struct {
	Name    string
	State   string
	Drives  []Drive
	Volumes []Volume
}

// ManagerInfo describes the BMC itself.
type ManagerInfo struct {
	UUID            string
	Manufacturer    string
	Model           string
	SKU             string
	SerialNumber    string
	FirmwareVersion string
	MACAddress      string
	PowerState      PowerState
}

// PowerController changes the power state of a system. Every method issues the request and
// returns; none waits for the transition to finish – observe it with InventoryReader.SystemInfo.
type PowerController interface {
	// PowerOn powers the system on; it does nothing if the system is On or PoweringOn.
	PowerOn(ctx context.Context, systemURI string) error
	// PowerOff shuts the system down gracefully (Reset GracefulShutdown); it does nothing if
	// the system is Off or PoweringOff. The operating system may ignore the request.
	PowerOff(ctx context.Context, systemURI string) error
	// ForcePowerOff cuts power immediately (Reset ForceOff).
	ForcePowerOff(ctx context.Context, systemURI string) error
	// Reset issues a reset of the given type.
	Reset(ctx context.Context, systemURI string, t ResetType) error
}

// BootController sets how a system boots: a boot source override, and the persistent boot
// order (read it with InventoryReader.SystemInfo).
type BootController interface {
	// SetBootOverride sets the boot source override; it does nothing if the system already
	// has it.
	SetBootOverride(ctx context.Context, systemURI string, o BootOverride) error
	// SetBootOrder replaces the persistent boot order with order, boot option references
	// tried first to last; it does nothing if the system already has that order. An empty
	// order is refused without a request. A BMC that refuses the order (a reference the
	// system does not have) yields an error wrapping ErrBadRequest.
	SetBootOrder(ctx context.Context, systemURI string, order []string) error
}

// InventoryReader reads systems, their hardware and the manager.
type InventoryReader interface {
	// Systems lists the systems the BMC manages.
	Systems(ctx context.Context) ([]System, error)
	// SystemInfo reads one system with a single request.
	SystemInfo(ctx context.Context, systemURI string) (SystemInfo, error)
	Processors(ctx context.Context, systemURI string) ([]Processor, error)
	Memory(ctx context.Context, systemURI string) ([]Memory, error)
	NICs(ctx context.Context, systemURI string) ([]NIC, error)
	Storage(ctx context.Context, systemURI string) ([]Storage, error)
	// Manager reads the first manager of the service.
	Manager(ctx context.Context) (ManagerInfo, error)
}

// IndicatorController sets the identification LED of a system.
type IndicatorController interface {
	SetIndicatorLED(ctx context.Context, systemURI string, led IndicatorLED) error
}

// ManagerController resets the BMC itself (the Redfish Manager), not a system it manages.
type ManagerController interface {
	// ResetManager issues a reset of type t (ResetGracefulRestart or ResetForceRestart) to
	// the first manager of the service and returns without waiting for the BMC to come back.
	// A type outside the manager's advertised allowable values yields ErrNotSupported
	// without a request.
	ResetManager(ctx context.Context, t ResetType) error
}

// Session ends what a client opened on a BMC.
type Session interface {
	// Logout ends the session, if the implementation opened one.
	Logout(ctx context.Context) error
}

// Inventory is what enrolling a BMC's systems needs: reading, and ending the session.
type Inventory interface {
	InventoryReader
	Session
}

// BMC is everything the operator does with a BMC: what the server controller drives.
type BMC interface {
	PowerController
	BootController
	InventoryReader
	IndicatorController
	ManagerController
	Session
}
