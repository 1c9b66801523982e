package redfish

import (
	"context"
	"fmt"
	"net/http"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

var _ bmc.DriveEraser = (*Client)(nil)

// eraseDrive is the part of a Drive resource a wipe reads.
type eraseDrive struct {
	ODataID       string `json:"@odata.id"`
	Name          string `json:"Name"`
	Model         string `json:"Model"`
	SerialNumber  string `json:"SerialNumber"`
	CapacityBytes number `json:"CapacityBytes"`
	Actions       struct {
		SecureErase *struct {
			Target string `json:"target"`
		} `json:"#Drive.SecureErase"`
	} `json:"Actions"`
}

// Drives lists the drives of every storage subsystem of a system. The drives of all
// subsystems together are bounded like the members of one collection.
func (c *Client) Drives(ctx context.Context, systemURI string) ([]bmc.DriveInfo, error) {
	subsystems, err := listAndGet[storage](ctx, c, systemURI, 1, func(l systemLinks) link { return l.storage })
	if err != nil {
		return nil, err
	}
	var uris []string
	for _, s := range subsystems {
		for _, d := range s.Drives {
			if d.id == "" {
				continue
			}
			if len(uris) == c.maxMembers {
				return nil, fmt.Errorf("redfish: drives of %s: %w: more than %d", pathOf(systemURI), ErrResponseTooLarge, c.maxMembers)
			}
			uris = append(uris, d.id)
		}
	}
	drives, found, err := getAll[eraseDrive](ctx, c, uris)
	if err != nil {
		return nil, err
	}
	out := make([]bmc.DriveInfo, 0, len(drives))
	for i, d := range drives {
		if !found[i] {
			continue
		}
		out = append(out, bmc.DriveInfo{
			URI:                  pathOf(uris[i]),
			Name:                 d.Name,
			Model:                d.Model,
			Serial:               d.SerialNumber,
			CapacityBytes:        d.CapacityBytes.int64(),
			SecureEraseSupported: d.Actions.SecureErase != nil,
		})
	}
	return out, nil
}

// SecureErase reads the drive for its Drive.SecureErase action and POSTs it. The task is
// the response's task monitor (Location, else the TaskMonitor or @odata.id of a Task body);
// a BMC that answers 200 or 204 without one finished the erase at once (zero TaskRef).
func (c *Client) SecureErase(ctx context.Context, driveURI string) (bmc.TaskRef, error) {
	if driveURI == "" {
		return bmc.TaskRef{}, fmt.Errorf("redfish: empty drive URI")
	}
	var d eraseDrive
	if _, err := c.getJSON(ctx, driveURI, &d); err != nil {
		return bmc.TaskRef{}, err
	}
	if d.Actions.SecureErase == nil {
		return bmc.TaskRef{}, fmt.Errorf("redfish: drive %s: %w: it offers no Drive.SecureErase action", pathOf(driveURI), bmc.ErrNotSupported)
	}
	target := d.Actions.SecureErase.Target
	if target == "" {
		target = pathOf(driveURI) + "/Actions/Drive.SecureErase"
	}
	resp, err := c.do(ctx, http.MethodPost, target, struct{}{}, nil)
	if err != nil {
		return bmc.TaskRef{}, err
	}
	return c.taskRefOf(resp)
}
