package emulator

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

// system is the state of one emulated computer system.
type system struct {
	// Immutable after creation.
	id     string
	index  int
	uri    string
	uuid   string
	serial string
	mac    string
	onBoot func(uuid, mac string, rec BootRecord)
	ipv4   string

	mu sync.Mutex
	// power is the current state; steps are the scheduled changes of a running transition.
	power bmc.PowerState
	steps []powerStep
	// version is bumped on every change of the system resource; it is the ETag.
	version     uint64
	led         bmc.IndicatorLED
	bootEnabled string
	bootTarget  string
	bootMode    string
	bootOrder   []string
	// bootOrderWrites counts the PATCHes that tried to set the boot order, refused or not.
	bootOrderWrites int
	// reads counts the GETs of the system resource.
	reads          int
	ignoreGraceful bool
	history        []BootRecord
	resets         map[bmc.ResetType]int
	// onPower is told of every change of the power state (under mu; it must not block).
	onPower func(uri string, state bmc.PowerState)
}

// powerStep changes the power state to next at time at.
type powerStep struct {
	next bmc.PowerState
	at   time.Time
}

func (s *system) etag() string { return `"` + strconv.FormatUint(s.version, 10) + `"` }

// advance applies the steps that are due at now. Callers hold s.mu.
func (s *system) advance(now time.Time) {
	for len(s.steps) > 0 && !s.steps[0].at.After(now) {
		st := s.steps[0]
		s.steps = s.steps[1:]
		s.setPower(st.next, st.at)
	}
	if len(s.steps) == 0 {
		s.steps = nil
	}
}

// transitioning reports whether a power transition is running. Callers hold s.mu and have
// called advance.
func (s *system) transitioning() bool { return len(s.steps) > 0 }

// setPower changes the power state; entering On is a boot. Callers hold s.mu.
func (s *system) setPower(state bmc.PowerState, at time.Time) {
	if s.power == state {
		return
	}
	prev := s.power
	s.power = state
	s.version++
	if s.onPower != nil {
		s.onPower(s.uri, state)
	}
	if state == bmc.PowerStateOn && prev != bmc.PowerStateOn {
		s.boot(at)
	}
}

// boot records a boot and consumes a one-time override. Callers hold s.mu.
func (s *system) boot(at time.Time) {
	target := bmc.BootTargetHdd
	if len(s.bootOrder) > 0 {
		if o, ok := bootOptionByRef(s.bootOrder[0]); ok {
			target = o.alias
		}
	}
	if s.bootEnabled != overrideDisabled && s.bootTarget != "" && s.bootTarget != string(bmc.BootTargetNone) {
		target = bmc.BootTarget(s.bootTarget)
	}
	if s.bootEnabled == overrideOnce {
		s.bootEnabled = overrideDisabled
		s.bootTarget = string(bmc.BootTargetNone)
	}
	rec := BootRecord{Target: target, Mode: bmc.BootMode(s.bootMode), At: at}
	s.history = append(s.history, rec)
	if s.onBoot != nil {
		go s.onBoot(s.uuid, s.mac, rec)
	}
	if n := len(s.history); n > maxBootHistory {
		s.history = append([]BootRecord(nil), s.history[n-maxBootHistory:]...)
	}
}

// errTransition is returned by reset while a power transition is running.
var errTransition = fmt.Errorf("a power transition is in progress")

// reset applies a ComputerSystem.Reset. Callers hold s.mu.
//
// Transitions (d = PowerDelay):
//
//	On, ForceOn              Off       -> PoweringOn, On after d
//	ForceOff                 On        -> PoweringOff, Off after d
//	GracefulShutdown         On        -> PoweringOff, Off after d (nothing if ignoring graceful)
//	PushPowerButton          On / Off  -> like GracefulShutdown / like On
//	ForceRestart, PowerCycle On        -> Off, On after d; from Off like On
//	GracefulRestart          On        -> like ForceRestart (nothing if ignoring graceful)
//	Nmi                      any       -> no change
//
// A reset that asks for the state the system is already in changes nothing; any reset while
// a transition runs fails with errTransition.
func (s *system) reset(t bmc.ResetType, now time.Time, delay time.Duration) error {
	s.advance(now)
	if s.transitioning() {
		return errTransition
	}
	on := s.power == bmc.PowerStateOn
	off := s.power == bmc.PowerStateOff
	switch t {
	case bmc.ResetOn, bmc.ResetForceOn:
		if !on {
			s.start(bmc.PowerStatePoweringOn, bmc.PowerStateOn, now, delay)
		}
	case bmc.ResetForceOff:
		if !off {
			s.start(bmc.PowerStatePoweringOff, bmc.PowerStateOff, now, delay)
		}
	case bmc.ResetGracefulShutdown:
		if !off && !(on && s.ignoreGraceful) {
			s.start(bmc.PowerStatePoweringOff, bmc.PowerStateOff, now, delay)
		}
	case bmc.ResetPushPowerButton:
		switch {
		case off:
			s.start(bmc.PowerStatePoweringOn, bmc.PowerStateOn, now, delay)
		case !(on && s.ignoreGraceful):
			s.start(bmc.PowerStatePoweringOff, bmc.PowerStateOff, now, delay)
		}
	case bmc.ResetGracefulRestart, bmc.ResetForceRestart, bmc.ResetPowerCycle:
		switch {
		case t == bmc.ResetGracefulRestart && on && s.ignoreGraceful:
		case off:
			s.start(bmc.PowerStatePoweringOn, bmc.PowerStateOn, now, delay)
		default:
			s.start(bmc.PowerStateOff, bmc.PowerStateOn, now, delay)
		}
	case bmc.ResetNmi:
	default:
		return fmt.Errorf("unknown reset type %q", t)
	}
	if s.resets == nil {
		s.resets = map[bmc.ResetType]int{}
	}
	s.resets[t]++
	s.advance(now)
	return nil
}

// start enters state now and schedules final after delay. Callers hold s.mu.
func (s *system) start(state, final bmc.PowerState, now time.Time, delay time.Duration) {
	s.setPower(state, now)
	s.steps = []powerStep{{next: final, at: now.Add(delay)}}
}
