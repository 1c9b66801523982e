// Package emulator is a stateful, in-process Redfish BMC for tests and the development
// environment.
//
// It serves the subset of Redfish the operator uses (service root, systems with reset action
// and boot/LED PATCH, processors, memory, Ethernet interfaces, storage, one manager, sessions)
// for any number of systems, and lets a test inject faults: an unavailable or slow BMC, changed
// credentials, an operating system that ignores graceful shutdown, power changed out of band,
// systems that appear and disappear.
//
// Power transitions are evaluated lazily: a system holds its current state plus the scheduled
// steps of a running transition, and every read first applies the steps whose time has come.
// No timers or goroutines run per system, so there is nothing to leak and nothing to race.
package emulator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

// Defaults for Options.
const (
	DefaultUsername     = "admin"
	DefaultPassword     = "password"
	DefaultManufacturer = "Metalfleet"
	DefaultModel        = "EMU-1000"
)

// maxBootHistory bounds the boot records kept per system.
const maxBootHistory = 256

// Redfish BootSourceOverrideEnabled values.
const (
	overrideOnce       = "Once"
	overrideContinuous = "Continuous"
	overrideDisabled   = "Disabled"
)

// Options configures an Emulator.
type Options struct {
	// Systems is the number of systems at start; 0 means 1, a negative number means none.
	Systems int
	// UUIDSeed makes system and manager UUIDs, serial numbers and MAC addresses deterministic:
	// equal seeds give equal identities. Empty means a random seed.
	UUIDSeed string
	// Username and Password are the accepted credentials (default admin/password).
	Username string
	Password string
	// PowerDelay is how long a power transition takes; 0 makes transitions immediate.
	PowerDelay time.Duration
	// InitialPower is the power state of new systems (default Off).
	InitialPower bmc.PowerState
	// Manufacturer and Model of the systems (defaults Metalfleet, EMU-1000).
	Manufacturer string
	Model        string
}

// BootRecord is one boot of a system: what it booted from and when.
type BootRecord struct {
	// Target is the boot source actually used: the override target when a boot override was
	// active, else Hdd.
	Target bmc.BootTarget
	At     time.Time
}

// Emulator is a Redfish BMC. All methods are safe for concurrent use.
type Emulator struct {
	opts        Options
	seedHash    [sha256.Size]byte
	serviceUUID string
	managerUUID string
	managerMAC  string

	unavailable atomic.Bool
	latency     atomic.Int64
	requests    atomic.Int64

	// mu guards the maps, the listing order, the credentials and the sessions. A system's own
	// state is guarded by system.mu; take mu first if both are needed.
	mu         sync.RWMutex
	username   string
	password   string
	systems    map[string]*system // by Id
	byUUID     map[string]*system // by lower-case UUID
	order      []*system
	nextIndex  int
	sessions   map[string]*session // by token
	sessionIDs map[string]string   // session Id -> token
	sessionSeq int

	done      chan struct{}
	closeOnce sync.Once
	srvMu     sync.Mutex
	srv       *http.Server
	url       string
	serveDone chan struct{}
}

type session struct {
	id       string
	token    string
	username string
}

// New builds an Emulator; serve it with Handler, Start or ListenAndServe.
func New(opts Options) *Emulator {
	if opts.Systems == 0 {
		opts.Systems = 1
	}
	if opts.UUIDSeed == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		opts.UUIDSeed = hex.EncodeToString(b[:])
	}
	if opts.Username == "" {
		opts.Username = DefaultUsername
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if opts.InitialPower == "" {
		opts.InitialPower = bmc.PowerStateOff
	}
	if opts.Manufacturer == "" {
		opts.Manufacturer = DefaultManufacturer
	}
	if opts.Model == "" {
		opts.Model = DefaultModel
	}
	if opts.PowerDelay < 0 {
		opts.PowerDelay = 0
	}
	e := &Emulator{
		opts:       opts,
		seedHash:   sha256.Sum256([]byte(opts.UUIDSeed)),
		username:   opts.Username,
		password:   opts.Password,
		systems:    map[string]*system{},
		byUUID:     map[string]*system{},
		sessions:   map[string]*session{},
		sessionIDs: map[string]string{},
		done:       make(chan struct{}),
	}
	e.serviceUUID = deriveUUID(opts.UUIDSeed, "service", 0)
	e.managerUUID = deriveUUID(opts.UUIDSeed, "manager", 0)
	e.managerMAC = fmt.Sprintf("06:%02x:00:00:00:01", e.seedHash[0])
	for i := 0; i < opts.Systems; i++ {
		e.addSystemLocked()
	}
	return e
}

// deriveUUID derives a lower-case canonical UUID (name-based, version 5 layout) from the seed,
// a kind and an index.
func deriveUUID(seed, kind string, index int) string {
	h := sha256.Sum256([]byte(seed + "\x00" + kind + "\x00" + strconv.Itoa(index)))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// addSystemLocked creates the next system. Callers hold mu (or own e exclusively).
func (e *Emulator) addSystemLocked() *system {
	e.nextIndex++
	idx := e.nextIndex
	id := strconv.Itoa(idx)
	s := &system{
		id:          id,
		index:       idx,
		uri:         "/redfish/v1/Systems/" + id,
		uuid:        deriveUUID(e.opts.UUIDSeed, "system", idx),
		serial:      fmt.Sprintf("EMU%X%06d", e.seedHash[:2], idx),
		mac:         fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", e.seedHash[0], byte(idx>>24), byte(idx>>16), byte(idx>>8), byte(idx)),
		ipv4:        fmt.Sprintf("10.%d.%d.%d", byte(idx>>16), byte(idx>>8), byte(idx)),
		power:       e.opts.InitialPower,
		led:         bmc.IndicatorLEDOff,
		bootEnabled: overrideDisabled,
		bootTarget:  string(bmc.BootTargetNone),
		bootMode:    string(bmc.BootModeUEFI),
		version:     1,
	}
	e.systems[id] = s
	e.byUUID[s.uuid] = s
	e.order = append(e.order, s)
	return s
}

// lookup finds a system by UUID (case-insensitive).
func (e *Emulator) lookup(uuid string) *system {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.byUUID[strings.ToLower(uuid)]
}

// lookupID finds a system by its Redfish Id.
func (e *Emulator) lookupID(id string) *system {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.systems[id]
}

// Systems returns the current systems in listing order.
func (e *Emulator) Systems() []bmc.System {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]bmc.System, 0, len(e.order))
	for _, s := range e.order {
		out = append(out, bmc.System{UUID: s.uuid, URI: s.uri})
	}
	return out
}

// Username returns the user name currently accepted.
func (e *Emulator) Username() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.username
}

// ManagerUUID returns the UUID of the emulated manager.
func (e *Emulator) ManagerUUID() string { return e.managerUUID }

// AddSystem adds a system (a server that appears on the BMC) and returns it.
func (e *Emulator) AddSystem() bmc.System {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.addSystemLocked()
	return bmc.System{UUID: s.uuid, URI: s.uri}
}

// RemoveSystem removes a system; requests for it answer 404 from now on. It reports whether
// the system existed.
func (e *Emulator) RemoveSystem(uuid string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.byUUID[strings.ToLower(uuid)]
	if s == nil {
		return false
	}
	delete(e.byUUID, s.uuid)
	delete(e.systems, s.id)
	for i, o := range e.order {
		if o == s {
			e.order = append(e.order[:i:i], e.order[i+1:]...)
			break
		}
	}
	return true
}

// SetUnavailable makes every request answer 503 Service Unavailable (or stops doing so).
func (e *Emulator) SetUnavailable(unavailable bool) { e.unavailable.Store(unavailable) }

// SetLatency delays every response by d. A request whose context ends first gets no answer.
func (e *Emulator) SetLatency(d time.Duration) { e.latency.Store(int64(d)) }

// SetCredentials changes the accepted credentials and ends every session.
func (e *Emulator) SetCredentials(username, password string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.username, e.password = username, password
	clear(e.sessions)
	clear(e.sessionIDs)
}

// IgnoreGracefulShutdown makes a system's "operating system" ignore GracefulShutdown,
// GracefulRestart and a short PushPowerButton while it is On: the request is accepted
// (204) but nothing happens, so only ForceOff powers it off. It reports whether the system
// exists.
func (e *Emulator) IgnoreGracefulShutdown(uuid string, ignore bool) bool {
	s := e.lookup(uuid)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ignoreGraceful = ignore
	return true
}

// SetPowerState changes a system's power state out of band (someone pressed the button, a
// PDU cut power), ending any running transition. Entering On counts as a boot. It reports
// whether the system exists.
func (e *Emulator) SetPowerState(uuid string, state bmc.PowerState) bool {
	s := e.lookup(uuid)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.advance(now)
	s.steps = nil
	s.setPower(state, now)
	return true
}

// PowerState returns a system's current power state ("" for an unknown system).
func (e *Emulator) PowerState(uuid string) bmc.PowerState {
	s := e.lookup(uuid)
	if s == nil {
		return bmc.PowerStateUnknown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(time.Now())
	return s.power
}

// BootOverride returns a system's current boot source override.
func (e *Emulator) BootOverride(uuid string) bmc.BootOverride {
	s := e.lookup(uuid)
	if s == nil {
		return bmc.BootOverride{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(time.Now())
	o := bmc.BootOverride{Target: bmc.BootTargetNone, Mode: bmc.BootMode(s.bootMode)}
	if s.bootEnabled != overrideDisabled {
		o.Target = bmc.BootTarget(s.bootTarget)
		o.Once = s.bootEnabled == overrideOnce
	}
	return o
}

// BootHistory returns the boots of a system, oldest first (at most the last 256).
func (e *Emulator) BootHistory(uuid string) []BootRecord {
	s := e.lookup(uuid)
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(time.Now())
	return append([]BootRecord(nil), s.history...)
}

// ResetCount returns how many resets of type t a system accepted.
func (e *Emulator) ResetCount(uuid string, t bmc.ResetType) int {
	s := e.lookup(uuid)
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resets[t]
}

// IndicatorLED returns a system's indicator LED state.
func (e *Emulator) IndicatorLED(uuid string) bmc.IndicatorLED {
	s := e.lookup(uuid)
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.led
}

// RequestCount returns the number of HTTP requests received so far.
func (e *Emulator) RequestCount() int64 { return e.requests.Load() }

// SessionCount returns the number of open sessions.
func (e *Emulator) SessionCount() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.sessions)
}

// system is the state of one emulated computer system.
type system struct {
	// Immutable after creation.
	id     string
	index  int
	uri    string
	uuid   string
	serial string
	mac    string
	ipv4   string

	mu sync.Mutex
	// power is the current state; steps are the scheduled changes of a running transition.
	power bmc.PowerState
	steps []powerStep
	// version is bumped on every change of the system resource; it is the ETag.
	version        uint64
	led            bmc.IndicatorLED
	bootEnabled    string
	bootTarget     string
	bootMode       string
	ignoreGraceful bool
	history        []BootRecord
	resets         map[bmc.ResetType]int
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
	if state == bmc.PowerStateOn && prev != bmc.PowerStateOn {
		s.boot(at)
	}
}

// boot records a boot and consumes a one-time override. Callers hold s.mu.
func (s *system) boot(at time.Time) {
	target := bmc.BootTargetHdd
	if s.bootEnabled != overrideDisabled && s.bootTarget != "" && s.bootTarget != string(bmc.BootTargetNone) {
		target = bmc.BootTarget(s.bootTarget)
	}
	if s.bootEnabled == overrideOnce {
		s.bootEnabled = overrideDisabled
		s.bootTarget = string(bmc.BootTargetNone)
	}
	s.history = append(s.history, BootRecord{Target: target, At: at})
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
