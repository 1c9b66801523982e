package redfish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

// ensureSession returns the current session token, logging in first if there is none.
func (c *Client) ensureSession(ctx context.Context) (string, error) {
	c.mu.Lock()
	token := c.token
	c.mu.Unlock()
	if token != "" {
		return token, nil
	}
	c.sessionMu.Lock()
	defer c.sessionMu.Unlock()
	c.mu.Lock()
	token = c.token
	c.mu.Unlock()
	if token != "" {
		return token, nil
	}
	return c.login(ctx)
}

// login creates a session at the well-known path, falling back to the path the service root
// advertises if the BMC keeps its sessions elsewhere. Callers hold sessionMu.
func (c *Client) login(ctx context.Context) (string, error) {
	creds := map[string]string{"UserName": c.username, "Password": c.password}
	resp, err := c.postSession(ctx, pathSessions, creds)
	if errors.Is(err, bmc.ErrNotFound) || errors.Is(err, bmc.ErrNotSupported) {
		var root ServiceRoot
		if _, rerr := c.getServiceRootNoAuth(ctx, &root); rerr == nil {
			if p := root.Links.Sessions.ODataID; p != "" && p != pathSessions {
				resp, err = c.postSession(ctx, p, creds)
			}
		}
	}
	if err != nil {
		return "", err
	}
	token := resp.header.Get("X-Auth-Token")
	if token == "" {
		return "", fmt.Errorf("redfish: POST %s: %w: no X-Auth-Token in the response", pathSessions, bmc.ErrUnauthorized)
	}
	uri := resp.header.Get("Location")
	if uri == "" {
		var s session
		if json.Unmarshal(resp.body, &s) == nil {
			uri = s.ODataID
		}
	}
	c.mu.Lock()
	c.token = token
	c.sessionURI = uri
	c.mu.Unlock()
	return token, nil
}

func (c *Client) postSession(ctx context.Context, ref string, creds map[string]string) (*response, error) {
	target, path, err := c.resolve(ref)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(creds)
	if err != nil {
		return nil, fmt.Errorf("redfish: encode POST %s: %w", path, err)
	}
	resp, err := c.exchange(ctx, http.MethodPost, target, path, body, nil, authNone, "", c.maxBody)
	if err != nil {
		return nil, c.redact(err)
	}
	if resp.status < 200 || resp.status >= 300 {
		return nil, c.redact(statusError(http.MethodPost, path, resp))
	}
	return resp, nil
}

func (c *Client) getServiceRootNoAuth(ctx context.Context, v *ServiceRoot) (*response, error) {
	target, path, err := c.resolve(pathServiceRoot)
	if err != nil {
		return nil, err
	}
	resp, err := c.exchange(ctx, http.MethodGet, target, path, nil, nil, authNone, "", c.maxBody)
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, statusError(http.MethodGet, path, resp)
	}
	if err := json.Unmarshal(resp.body, v); err != nil {
		return nil, fmt.Errorf("redfish: decode GET %s: %w: %w", path, errUndecodable, err)
	}
	return resp, nil
}

// dropSession forgets the session if it still uses token, so the next request logs in again.
func (c *Client) dropSession(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token = ""
		c.sessionURI = ""
	}
}

// Logout deletes the session, if one was created. It is a no-op for basic auth. A session the
// BMC no longer knows counts as logged out.
func (c *Client) Logout(ctx context.Context) error {
	if !c.useSessions {
		return nil
	}
	c.sessionMu.Lock()
	defer c.sessionMu.Unlock()
	c.mu.Lock()
	token, uri := c.token, c.sessionURI
	c.mu.Unlock()
	if token == "" {
		return nil
	}
	defer c.dropSession(token)
	if uri == "" {
		return nil
	}
	target, path, err := c.resolve(uri)
	if err != nil {
		return err
	}
	resp, err := c.exchange(ctx, http.MethodDelete, target, path, nil, nil, authToken, token, c.maxBody)
	if err != nil {
		return c.redact(err)
	}
	switch {
	case resp.status >= 200 && resp.status < 300,
		resp.status == http.StatusNotFound, resp.status == http.StatusUnauthorized:
		return nil
	}
	return c.redact(statusError(http.MethodDelete, path, resp))
}
