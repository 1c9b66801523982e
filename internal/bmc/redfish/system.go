package redfish

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

// Redfish BootSourceOverrideEnabled values.
const (
	overrideOnce       = "Once"
	overrideContinuous = "Continuous"
	overrideDisabled   = "Disabled"
)

// getSystem GETs a system and returns it with its ETag.
func (c *Client) getSystem(ctx context.Context, systemURI string) (*computerSystem, string, error) {
	if systemURI == "" {
		return nil, "", errors.New("redfish: empty system URI")
	}
	var sys computerSystem
	etag, err := c.getJSON(ctx, systemURI, &sys)
	if err != nil {
		return nil, "", err
	}
	c.rememberLinks(systemURI, &sys)
	return &sys, etag, nil
}

// systemLinks are the collections a system links to. A system's links do not change, so the
// client keeps those of the systems it read (a client lives for one reconcile) and reads a
// system's collections without reading the system again.
type systemLinks struct {
	processors, memory, ethernetInterfaces, storage link
}

func (c *Client) rememberLinks(systemURI string, sys *computerSystem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.links == nil {
		c.links = map[string]systemLinks{}
	}
	if _, ok := c.links[systemURI]; !ok && len(c.links) >= c.maxMembers {
		return
	}
	c.links[systemURI] = systemLinks{processors: sys.Processors, memory: sys.Memory,
		ethernetInterfaces: sys.EthernetInterfaces, storage: sys.Storage}
}

// systemLinksOf returns the links of the system, from the client's last read of it or else
// from a new one.
func (c *Client) systemLinksOf(ctx context.Context, systemURI string) (systemLinks, error) {
	c.mu.Lock()
	l, ok := c.links[systemURI]
	c.mu.Unlock()
	if ok {
		return l, nil
	}
	if _, _, err := c.getSystem(ctx, systemURI); err != nil {
		return systemLinks{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.links[systemURI], nil
}

// Systems lists the members of /redfish/v1/Systems and reads each for its UUID. A member
// that disappears between listing and reading is left out.
//
// A service that expands collections answers with the systems in place: one request.
func (c *Client) Systems(ctx context.Context) ([]bmc.System, error) {
	members, err := readMembers[computerSystem](ctx, c, pathSystems, 1)
	if err != nil {
		return nil, err
	}
	filled, err := fill(ctx, c, members)
	if err != nil {
		return nil, err
	}
	out := make([]bmc.System, 0, len(filled))
	for _, m := range filled {
		if m.id == "" {
			continue
		}
		if m.expanded {
			c.rememberLinks(pathOf(m.id), &m.val)
		}
		out = append(out, bmc.System{UUID: m.val.UUID, URI: pathOf(m.id)})
	}
	return out, nil
}

// SystemInfo reads a system with one GET.
func (c *Client) SystemInfo(ctx context.Context, systemURI string) (bmc.SystemInfo, error) {
	sys, _, err := c.getSystem(ctx, systemURI)
	if err != nil {
		return bmc.SystemInfo{}, err
	}
	return bmc.SystemInfo{
		UUID:             sys.UUID,
		URI:              systemURI,
		Manufacturer:     sys.Manufacturer,
		Model:            sys.Model,
		SKU:              sys.SKU,
		SerialNumber:     sys.SerialNumber,
		BIOSVersion:      sys.BiosVersion,
		PowerState:       bmc.PowerState(sys.PowerState),
		IndicatorLED:     bmc.IndicatorLED(sys.IndicatorLED),
		TotalMemoryBytes: gibToBytes(float64(sys.MemorySummary.TotalSystemMemoryGiB)),
		BootOverride:     bootOverrideOf(sys),
		BootOrder:        sys.Boot.BootOrder,
	}, nil
}

func gibToBytes(gib float64) int64 {
	b := math.Round(gib * (1 << 30))
	if b >= math.MaxInt64 || b < 0 {
		return 0
	}
	return int64(b)
}

func bootOverrideOf(sys *computerSystem) bmc.BootOverride {
	o := bmc.BootOverride{Mode: bmc.BootMode(sys.Boot.BootSourceOverrideMode), Target: bmc.BootTargetNone}
	switch sys.Boot.BootSourceOverrideEnabled {
	case overrideOnce:
		o.Once = true
		o.Target = bmc.BootTarget(sys.Boot.BootSourceOverrideTarget)
	case overrideContinuous:
		o.Target = bmc.BootTarget(sys.Boot.BootSourceOverrideTarget)
	}
	if o.Target == "" {
		o.Target = bmc.BootTargetNone
	}
	if o.Target == bmc.BootTargetNone {
		o.Once = false
	}
	return o
}

// PowerOn resets the system with ResetType On unless it is On or PoweringOn. A service that
// does not allow On gets ForceOn, or a press of the power button of a system that is off.
func (c *Client) PowerOn(ctx context.Context, systemURI string) error {
	sys, _, err := c.getSystem(ctx, systemURI)
	if err != nil {
		return err
	}
	power := bmc.PowerState(sys.PowerState)
	switch power {
	case bmc.PowerStateOn, bmc.PowerStatePoweringOn:
		return nil
	}
	return c.reset(ctx, systemURI, sys, chooseReset(bmc.ResetOn, power, sys.Actions.Reset.AllowableValues))
}

// PowerOff resets the system with ResetType GracefulShutdown unless it is Off or PoweringOff.
// A service that does not allow GracefulShutdown gets a press of the power button of a
// system that is on.
func (c *Client) PowerOff(ctx context.Context, systemURI string) error {
	sys, _, err := c.getSystem(ctx, systemURI)
	if err != nil {
		return err
	}
	power := bmc.PowerState(sys.PowerState)
	switch power {
	case bmc.PowerStateOff, bmc.PowerStatePoweringOff:
		return nil
	}
	return c.reset(ctx, systemURI, sys, chooseReset(bmc.ResetGracefulShutdown, power, sys.Actions.Reset.AllowableValues))
}

// ForcePowerOff resets the system with ResetType ForceOff unless it is already Off. Unlike
// PowerOff it acts on a system that is PoweringOff: that is how a stuck graceful shutdown is
// ended.
func (c *Client) ForcePowerOff(ctx context.Context, systemURI string) error {
	sys, _, err := c.getSystem(ctx, systemURI)
	if err != nil {
		return err
	}
	if bmc.PowerState(sys.PowerState) == bmc.PowerStateOff {
		return nil
	}
	return c.reset(ctx, systemURI, sys, bmc.ResetForceOff)
}

// Reset issues a reset of type t, whatever the current power state; a service that does not
// allow t gets the type that does the same from the system's state (chooseReset), if any.
func (c *Client) Reset(ctx context.Context, systemURI string, t bmc.ResetType) error {
	if !t.Valid() {
		return fmt.Errorf("redfish: reset %s: %w: unknown reset type %q", systemURI, bmc.ErrNotSupported, t)
	}
	sys, _, err := c.getSystem(ctx, systemURI)
	if err != nil {
		return err
	}
	return c.reset(ctx, systemURI, sys, chooseReset(t, bmc.PowerState(sys.PowerState), sys.Actions.Reset.AllowableValues))
}

// reset POSTs the ComputerSystem.Reset action advertised by sys (or the conventional target).
// A reset type outside the advertised allowable values is refused without a request.
func (c *Client) reset(ctx context.Context, systemURI string, sys *computerSystem, t bmc.ResetType) error {
	target := sys.Actions.Reset.Target
	if target == "" {
		target = strings.TrimSuffix(systemURI, "/") + "/Actions/ComputerSystem.Reset"
	}
	return c.postReset(ctx, target, sys.Actions.Reset.AllowableValues, t)
}

// SetBootOverride sets the boot source override of a system. It does nothing if the system
// already has the requested override. BootSourceOverrideMode is sent as overrideMode decides
// (vendor.go): never to a system that reports no mode. The PATCH carries If-Match when the
// BMC returned an ETag; on 412 Precondition Failed (or 428 Precondition Required) the system
// is read again and the PATCH sent once more. A PATCH that left the requested mode out (the
// system had it) is read back: a service that shows the new target with another mode forgot
// the mode, and gets it once more, explicitly.
func (c *Client) SetBootOverride(ctx context.Context, systemURI string, o bmc.BootOverride) error {
	patched, sentMode := false, false
	err := c.patchSystem(ctx, systemURI, func(sys *computerSystem) (any, error) {
		body, mode, err := bootOverridePatch(systemURI, sys, o)
		patched, sentMode = body != nil, mode != ""
		return body, err
	})
	if err != nil || !patched || sentMode || o.Mode == "" || o.Disabled() {
		return err
	}
	return c.patchSystem(ctx, systemURI, func(sys *computerSystem) (any, error) {
		cur := bootOverrideOf(sys)
		if cur.Target != o.Target || cur.Once != o.Once || cur.Mode == "" || cur.Mode == o.Mode {
			return nil, nil
		}
		body, _, err := bootOverridePatch(systemURI, sys, o)
		return body, err
	})
}

// bootOverridePatch returns the PATCH body that gives sys the override o (nil if it has it)
// and the mode the body carries ("" if none).
func bootOverridePatch(systemURI string, sys *computerSystem, o bmc.BootOverride) (any, bmc.BootMode, error) {
	if allowed := sys.Boot.AllowableTargets; !o.Disabled() && len(allowed) > 0 &&
		!slices.Contains(allowed, string(o.Target)) {
		return nil, "", fmt.Errorf("redfish: PATCH %s: %w: boot target %s not in the allowable values %v",
			pathOf(systemURI), bmc.ErrNotSupported, o.Target, allowed)
	}
	cur := bootOverrideOf(sys)
	sameOverride := cur.Disabled() && o.Disabled() || cur.Target == o.Target && cur.Once == o.Once
	mode := overrideMode(sys, o)
	sameMode := mode == "" || mode == cur.Mode
	if sameOverride && sameMode {
		return nil, "", nil
	}
	boot := map[string]string{}
	if o.Disabled() {
		boot["BootSourceOverrideEnabled"] = overrideDisabled
		boot["BootSourceOverrideTarget"] = string(bmc.BootTargetNone)
	} else {
		boot["BootSourceOverrideTarget"] = string(o.Target)
		boot["BootSourceOverrideEnabled"] = overrideContinuous
		if o.Once {
			boot["BootSourceOverrideEnabled"] = overrideOnce
		}
	}
	if mode != "" {
		boot["BootSourceOverrideMode"] = string(mode)
	}
	return map[string]any{"Boot": boot}, mode, nil
}

// SetBootOrder replaces the system's Boot.BootOrder with order. It does nothing if the
// system already reports that order. The PATCH carries only Boot.BootOrder, with If-Match
// like SetBootOverride.
func (c *Client) SetBootOrder(ctx context.Context, systemURI string, order []string) error {
	if len(order) == 0 {
		return fmt.Errorf("redfish: PATCH %s: empty boot order", pathOf(systemURI))
	}
	return c.patchSystem(ctx, systemURI, func(sys *computerSystem) (any, error) {
		if slices.Equal(sys.Boot.BootOrder, order) {
			return nil, nil
		}
		return bootOrderPatch{Boot: bootOrderBody{BootOrder: order}}, nil
	})
}

// SetIndicatorLED sets the indicator LED of a system (Lit, Blinking or Off). It does nothing if
// the LED already has that state.
func (c *Client) SetIndicatorLED(ctx context.Context, systemURI string, led bmc.IndicatorLED) error {
	switch led {
	case bmc.IndicatorLEDLit, bmc.IndicatorLEDBlinking, bmc.IndicatorLEDOff:
	default:
		return fmt.Errorf("redfish: invalid indicator LED state %q", led)
	}
	return c.patchSystem(ctx, systemURI, func(sys *computerSystem) (any, error) {
		if bmc.IndicatorLED(sys.IndicatorLED) == led {
			return nil, nil
		}
		return map[string]any{"IndicatorLED": string(led)}, nil
	})
}

// patchSystem GETs the system, asks build for the PATCH body (nil: nothing to change) and
// PATCHes it with If-Match. On 412 Precondition Failed or 428 Precondition Required it starts
// over once: the ETag was stale, or the service sent it only now.
func (c *Client) patchSystem(ctx context.Context, systemURI string, build func(*computerSystem) (any, error)) error {
	for attempt := 1; ; attempt++ {
		sys, etag, err := c.getSystem(ctx, systemURI)
		if err != nil {
			return err
		}
		body, err := build(sys)
		if err != nil || body == nil {
			return err
		}
		var header http.Header
		if etag != "" {
			header = http.Header{"If-Match": []string{etag}}
		}
		_, err = c.do(ctx, http.MethodPatch, systemURI, body, header)
		var herr *HTTPError
		if attempt == 1 && errors.As(err, &herr) &&
			(herr.StatusCode == http.StatusPreconditionFailed || herr.StatusCode == http.StatusPreconditionRequired) {
			continue
		}
		return err
	}
}

// Processors reads the processors of a system.
func (c *Client) Processors(ctx context.Context, systemURI string) ([]bmc.Processor, error) {
	items, err := listAndGet[processor](ctx, c, systemURI, 1, func(l systemLinks) link { return l.processors })
	if err != nil {
		return nil, err
	}
	out := make([]bmc.Processor, 0, len(items))
	for _, p := range items {
		if p.Status.State == "Absent" {
			continue
		}
		out = append(out, bmc.Processor{
			ID:             p.ID,
			Type:           p.ProcessorType,
			Architecture:   p.ProcessorArchitecture,
			InstructionSet: p.InstructionSet,
			Manufacturer:   p.Manufacturer,
			Model:          p.Model,
			MaxSpeedMHz:    p.MaxSpeedMHz.int32(),
			TotalCores:     p.TotalCores.int32(),
			TotalThreads:   p.TotalThreads.int32(),
		})
	}
	return out, nil
}

// Memory reads the populated memory modules of a system (empty slots are left out).
func (c *Client) Memory(ctx context.Context, systemURI string) ([]bmc.Memory, error) {
	items, err := listAndGet[memory](ctx, c, systemURI, 1, func(l systemLinks) link { return l.memory })
	if err != nil {
		return nil, err
	}
	out := make([]bmc.Memory, 0, len(items))
	for _, m := range items {
		if m.Status.State == "Absent" {
			continue
		}
		out = append(out, bmc.Memory{
			ID:               m.ID,
			Manufacturer:     m.Manufacturer,
			PartNumber:       strings.TrimSpace(m.PartNumber),
			MemoryDeviceType: m.MemoryDeviceType,
			CapacityMiB:      m.CapacityMiB.int64(),
		})
	}
	return out, nil
}

// NICs reads the Ethernet interfaces of a system.
func (c *Client) NICs(ctx context.Context, systemURI string) ([]bmc.NIC, error) {
	items, err := listAndGet[ethernetInterface](ctx, c, systemURI, 1, func(l systemLinks) link { return l.ethernetInterfaces })
	if err != nil {
		return nil, err
	}
	out := make([]bmc.NIC, 0, len(items))
	for _, n := range items {
		nic := bmc.NIC{ID: n.ID, Name: n.Name, MACAddress: n.MACAddress, LinkStatus: n.LinkStatus}
		if nic.MACAddress == "" {
			nic.MACAddress = n.PermanentMACAddress
		}
		for _, a := range n.IPv4Addresses {
			if a.Address != "" {
				nic.IPv4 = append(nic.IPv4, a.Address)
			}
		}
		out = append(out, nic)
	}
	return out, nil
}

// Storage reads the storage subsystems of a system with their drives and volumes. A service
// that expands collections answers with all of it in one request (maxExpandLevels), or in as
// few as the levels it allows; what comes back as a link is read on its own.
func (c *Client) Storage(ctx context.Context, systemURI string) ([]bmc.Storage, error) {
	items, err := listAndGet[storage](ctx, c, systemURI, maxExpandLevels, func(l systemLinks) link { return l.storage })
	if err != nil {
		return nil, err
	}
	out := make([]bmc.Storage, 0, len(items))
	drivesLeft := c.maxMembers // over all storage subsystems: each drive may cost a request
	for i, s := range items {
		st := bmc.Storage{Name: s.Name, State: s.Status.State}
		if drivesLeft -= len(s.Drives); drivesLeft < 0 {
			return nil, fmt.Errorf("redfish: drives of storage %d of %s: %w: more than %d in all", i, c.errPath(systemURI), ErrResponseTooLarge, c.maxMembers)
		}
		drives, err := resolve(ctx, c, s.Drives)
		if err != nil {
			return nil, err
		}
		for _, d := range drives {
			st.Drives = append(st.Drives, bmc.Drive{
				Name:          d.Name,
				MediaType:     d.MediaType,
				Type:          d.Protocol,
				Vendor:        d.Manufacturer,
				Model:         d.Model,
				State:         d.Status.State,
				CapacityBytes: d.CapacityBytes.int64(),
			})
		}
		volumes, err := c.volumes(ctx, s.Volumes)
		if err != nil {
			return nil, err
		}
		for _, v := range volumes {
			st.Volumes = append(st.Volumes, bmc.Volume{
				Name:          v.Name,
				State:         v.Status.State,
				RAIDType:      v.RAIDType,
				VolumeUsage:   v.VolumeUsage,
				CapacityBytes: v.CapacityBytes.int64(),
			})
		}
		out = append(out, st)
	}
	return out, nil
}

// Manager reads the first member of /redfish/v1/Managers. The MAC address is that of the
// manager's first Ethernet interface, if it lists any.
func (c *Client) Manager(ctx context.Context) (bmc.ManagerInfo, error) {
	uris, err := c.listMembers(ctx, pathManagers)
	if err != nil {
		return bmc.ManagerInfo{}, err
	}
	if len(uris) == 0 {
		return bmc.ManagerInfo{}, fmt.Errorf("redfish: GET %s: %w: no managers", pathManagers, bmc.ErrNotFound)
	}
	var m manager
	if _, err := c.getJSON(ctx, uris[0], &m); err != nil {
		return bmc.ManagerInfo{}, err
	}
	info := bmc.ManagerInfo{
		UUID:            m.UUID,
		Manufacturer:    m.Manufacturer,
		Model:           m.Model,
		SKU:             m.SKU,
		SerialNumber:    m.SerialNumber,
		FirmwareVersion: m.FirmwareVersion,
		PowerState:      bmc.PowerState(m.PowerState),
	}
	if m.EthernetInterfaces.ODataID != "" {
		mac, err := c.firstMAC(ctx, m.EthernetInterfaces.ODataID)
		if err != nil && !errors.Is(err, bmc.ErrNotFound) && !errors.Is(err, bmc.ErrNotSupported) {
			return bmc.ManagerInfo{}, err
		}
		info.MACAddress = mac
	}
	return info, nil
}

func (c *Client) firstMAC(ctx context.Context, collectionURI string) (string, error) {
	uris, err := c.listMembers(ctx, collectionURI)
	if err != nil || len(uris) == 0 {
		return "", err
	}
	var n ethernetInterface
	if _, err := c.getJSON(ctx, uris[0], &n); err != nil {
		return "", err
	}
	if n.MACAddress != "" {
		return n.MACAddress, nil
	}
	return n.PermanentMACAddress, nil
}

// listMembers returns the member URIs of a collection, following Members@odata.nextLink
// (readPages, with its bounds; what a member holds besides its link is not kept).
func (c *Client) listMembers(ctx context.Context, collectionURI string) ([]string, error) {
	members, err := readPages[struct{}](ctx, c, collectionURI, collectionURI, c.maxBody)
	if err != nil {
		return nil, err
	}
	uris := make([]string, 0, len(members))
	for _, m := range members {
		if m.id != "" {
			uris = append(uris, m.id)
		}
	}
	return uris, nil
}

// listAndGet reads the collection a system links to (via which) and every member of it. A
// system without that link has none.
//
// The collection is asked for expanded levels deep where the service allows it (readMembers).
func listAndGet[T any](ctx context.Context, c *Client, systemURI string, levels int, which func(systemLinks) link) ([]T, error) {
	links, err := c.systemLinksOf(ctx, systemURI)
	if err != nil {
		return nil, err
	}
	col := which(links).ODataID
	if col == "" {
		return nil, nil
	}
	members, err := readMembers[T](ctx, c, col, levels)
	if err != nil {
		return nil, err
	}
	return resolve(ctx, c, members)
}

// volumes reads a volume collection that may have come expanded; a collection the service
// does not have (404) has no volumes.
func (c *Client) volumes(ctx context.Context, col member[memberCollection[volume]]) ([]volume, error) {
	members := col.val.Members
	if !col.expanded || col.val.NextLink != "" {
		if col.id == "" {
			return nil, nil
		}
		var err error
		if members, err = readMembers[volume](ctx, c, col.id, 1); err != nil {
			if errors.Is(err, bmc.ErrNotFound) {
				return nil, nil
			}
			return nil, err
		}
	}
	if len(members) > c.maxMembers {
		return nil, fmt.Errorf("redfish: volumes %s: %w: more than %d members", c.errPath(col.id), ErrResponseTooLarge, c.maxMembers)
	}
	return resolve(ctx, c, members)
}

// getAll GETs every URI with bounded concurrency, preserving order. found[i] is false for a
// resource that answered 404 (it vanished after it was listed); any other error fails all.
func getAll[T any](ctx context.Context, c *Client, uris []string) ([]T, []bool, error) {
	items := make([]T, len(uris))
	found := make([]bool, len(uris))
	if len(uris) == 0 {
		return items, found, nil
	}
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		sem      = make(chan struct{}, fetchConcurrency)
	)
	fail := func(err error) {
		errOnce.Do(func() {
			firstErr = err
			cancel()
		})
	}
launch:
	for i, uri := range uris {
		select {
		case sem <- struct{}{}:
		case <-gctx.Done():
			break launch
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := c.getJSON(gctx, uri, &items[i])
			switch {
			case err == nil:
				found[i] = true
			case errors.Is(err, bmc.ErrNotFound):
			default:
				fail(err)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("redfish: read %d resources: %w", len(uris), context.Cause(ctx))
	}
	return items, found, nil
}

// pathOf returns the path of a reference for messages and results.
func pathOf(ref string) string {
	if i := strings.Index(ref, "://"); i >= 0 {
		rest := ref[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return rest[j:]
		}
		return "/"
	}
	return ref
}
