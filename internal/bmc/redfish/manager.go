package redfish

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

// managerActions is the part of a Manager resource a manager reset reads.
type managerActions struct {
	Actions struct {
		Reset struct {
			Target          string   `json:"target"`
			AllowableValues []string `json:"ResetType@Redfish.AllowableValues"`
		} `json:"#Manager.Reset"`
	} `json:"Actions"`
}

// ResetManager POSTs the Manager.Reset action of the first manager of the service (the
// advertised target, else the conventional <manager>/Actions/Manager.Reset) with ResetType t.
// A type outside the advertised allowable values is refused without a request.
func (c *Client) ResetManager(ctx context.Context, t bmc.ResetType) error {
	if !t.Valid() {
		return fmt.Errorf("redfish: manager reset: %w: unknown reset type %q", bmc.ErrNotSupported, t)
	}
	uris, err := c.listMembers(ctx, pathManagers)
	if err != nil {
		return err
	}
	if len(uris) == 0 {
		return fmt.Errorf("redfish: GET %s: %w: no managers", pathManagers, bmc.ErrNotFound)
	}
	var m managerActions
	if _, err := c.getJSON(ctx, uris[0], &m); err != nil {
		return err
	}
	target := m.Actions.Reset.Target
	if target == "" {
		target = strings.TrimSuffix(pathOf(uris[0]), "/") + "/Actions/Manager.Reset"
	}
	return c.postReset(ctx, target, m.Actions.Reset.AllowableValues, t)
}

// postReset POSTs a reset action (ComputerSystem.Reset or Manager.Reset) to target. A type
// outside allowed (when the BMC advertises any) is refused without a request.
func (c *Client) postReset(ctx context.Context, target string, allowed []string, t bmc.ResetType) error {
	if len(allowed) > 0 && !slices.Contains(allowed, string(t)) {
		return fmt.Errorf("redfish: POST %s: %w: reset type %s not in the allowable values %v",
			pathOf(target), bmc.ErrNotSupported, t, allowed)
	}
	_, err := c.do(ctx, http.MethodPost, target, map[string]string{"ResetType": string(t)}, nil)
	return err
}
