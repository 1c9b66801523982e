package redfish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"time"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

const (
	pathAccountService = "/redfish/v1/AccountService"
	pathAccounts       = pathAccountService + "/Accounts"

	// maxAccounts bounds the accounts read from one BMC; real BMCs have 10 to 16 slots.
	maxAccounts = 256
	// maxRoles bounds the roles read from one BMC.
	maxRoles = 64
	// maxPasswordRule bounds the password lengths a BMC may announce.
	maxPasswordRule = 1024
	// reservedAccountID is the slot BMCs keep for their built-in administrator; it is never
	// taken as a free slot.
	reservedAccountID = "1"
)

var _ bmc.Accounts = (*Client)(nil)

type accountService struct {
	MinPasswordLength number `json:"MinPasswordLength"`
	MaxPasswordLength number `json:"MaxPasswordLength"`
	Accounts          link   `json:"Accounts"`
	Roles             link   `json:"Roles"`
}

type managerAccount struct {
	ODataID            string `json:"@odata.id"`
	ID                 string `json:"Id"`
	UserName           string `json:"UserName"`
	RoleID             string `json:"RoleId"`
	Enabled            bool   `json:"Enabled"`
	PasswordExpiration string `json:"PasswordExpiration"`
}

// accountWrite is the body of an account POST or PATCH. Enabled is left out of a POST, as
// BMCs enable new accounts and some refuse the property there.
type accountWrite struct {
	UserName *string `json:"UserName,omitempty"`
	Password string  `json:"Password,omitempty"`
	RoleID   string  `json:"RoleId,omitempty"`
	Enabled  *bool   `json:"Enabled,omitempty"`
}

// withoutAnswer drops the message a BMC sent with an error status: an answer to a request
// that carried a password may quote it, and nothing a BMC says reaches a condition.
func withoutAnswer(err error) error {
	var herr *HTTPError
	if !errors.As(err, &herr) || herr.Message == "" {
		return err
	}
	quiet := *herr
	quiet.Message = ""
	return &quiet
}

func (c *Client) accountService(ctx context.Context) (*accountService, error) {
	var svc accountService
	if _, err := c.getJSON(ctx, pathAccountService, &svc); err != nil {
		return nil, withoutAnswer(err)
	}
	return &svc, nil
}

// passwordRule turns an announced password length into a sane one (0: not announced).
func passwordRule(n number) int {
	return int(min(max(n.int64(), 0), maxPasswordRule))
}

// AccountService reads the AccountService and the Ids of its roles (the last segment of each
// role's path, as Redfish names them).
func (c *Client) AccountService(ctx context.Context) (bmc.AccountService, error) {
	svc, err := c.accountService(ctx)
	if err != nil {
		return bmc.AccountService{}, err
	}
	out := bmc.AccountService{
		MinPasswordLength: passwordRule(svc.MinPasswordLength),
		MaxPasswordLength: passwordRule(svc.MaxPasswordLength),
	}
	if svc.Roles.ODataID == "" {
		return out, nil
	}
	uris, err := c.listMembers(ctx, svc.Roles.ODataID)
	if err != nil {
		return bmc.AccountService{}, withoutAnswer(err)
	}
	if len(uris) > maxRoles {
		return bmc.AccountService{}, fmt.Errorf("redfish: GET %s: %d roles, more than the %d read", pathOf(svc.Roles.ODataID), len(uris), maxRoles)
	}
	out.Roles = make([]string, 0, len(uris))
	for _, uri := range uris {
		id, err := url.PathUnescape(path.Base(pathOf(uri)))
		if err != nil {
			id = path.Base(pathOf(uri))
		}
		out.Roles = append(out.Roles, id)
	}
	return out, nil
}

// ListAccounts reads every member of the Accounts collection.
func (c *Client) ListAccounts(ctx context.Context) ([]bmc.Account, error) {
	accounts, _, err := c.listAccounts(ctx)
	return accounts, err
}

// listAccounts returns the accounts and the path of their collection.
func (c *Client) listAccounts(ctx context.Context) ([]bmc.Account, string, error) {
	svc, err := c.accountService(ctx)
	if err != nil {
		return nil, "", err
	}
	col := svc.Accounts.ODataID
	if col == "" {
		col = pathAccounts
	}
	uris, err := c.listMembers(ctx, col)
	if err != nil {
		return nil, "", withoutAnswer(err)
	}
	if len(uris) > maxAccounts {
		return nil, "", fmt.Errorf("redfish: GET %s: %d accounts, more than the %d read", pathOf(col), len(uris), maxAccounts)
	}
	items, found, err := getAll[managerAccount](ctx, c, uris)
	if err != nil {
		return nil, "", withoutAnswer(err)
	}
	out := make([]bmc.Account, 0, len(items))
	for i, a := range items {
		if !found[i] {
			continue
		}
		out = append(out, accountOf(a, uris[i]))
	}
	return out, pathOf(col), nil
}

// accountOf turns an account resource read from uri into a bmc.Account; an expiration that
// is not an RFC 3339 time is left out.
func accountOf(a managerAccount, uri string) bmc.Account {
	acc := bmc.Account{ID: a.ID, URI: pathOf(uri), UserName: a.UserName, RoleID: a.RoleID, Enabled: a.Enabled}
	if t, err := time.Parse(time.RFC3339, a.PasswordExpiration); err == nil {
		acc.PasswordExpiration = t
	}
	return acc
}

// findAccount returns the account with userName, or nil.
func findAccount(accounts []bmc.Account, userName string) *bmc.Account {
	for i := range accounts {
		if accounts[i].UserName == userName {
			return &accounts[i]
		}
	}
	return nil
}

// SetAccount updates the account with s.UserName with one PATCH of RoleId, Enabled and
// Password (some BMCs take no account PATCH without the password), or creates it with a POST
// of UserName, Password and RoleId to the Accounts collection. A BMC that refuses that POST
// (405) has a fixed set of slots: the first free one (empty UserName, not Id 1) is PATCHed
// with the account instead.
func (c *Client) SetAccount(ctx context.Context, s bmc.AccountSettings) (bmc.Account, error) {
	if s.UserName == "" || s.Password == "" || s.RoleID == "" {
		return bmc.Account{}, errors.New("redfish: an account needs a user name, a password and a role")
	}
	accounts, col, err := c.listAccounts(ctx)
	if err != nil {
		return bmc.Account{}, err
	}
	enabled := true
	if a := findAccount(accounts, s.UserName); a != nil {
		body := accountWrite{Password: s.Password, RoleID: s.RoleID, Enabled: &enabled}
		if _, err := c.do(ctx, http.MethodPatch, a.URI, body, nil); err != nil {
			return bmc.Account{}, withoutAnswer(err)
		}
		a.RoleID, a.Enabled = s.RoleID, true
		return *a, nil
	}

	resp, err := c.do(ctx, http.MethodPost, col, accountWrite{UserName: &s.UserName, Password: s.Password, RoleID: s.RoleID}, nil)
	switch {
	case err == nil:
		created := bmc.Account{UserName: s.UserName, RoleID: s.RoleID, Enabled: true, URI: resp.header.Get("Location")}
		var a managerAccount
		if json.Unmarshal(resp.body, &a) == nil && a.ODataID != "" {
			created.ID, created.URI = a.ID, a.ODataID
		}
		created.URI = pathOf(created.URI)
		if created.ID == "" && created.URI != "" {
			created.ID = path.Base(created.URI)
		}
		return created, nil
	case !errors.Is(err, bmc.ErrNotSupported):
		return bmc.Account{}, withoutAnswer(err)
	}

	for _, a := range accounts {
		if a.UserName != "" || a.ID == reservedAccountID {
			continue
		}
		body := accountWrite{UserName: &s.UserName, Password: s.Password, RoleID: s.RoleID, Enabled: &enabled}
		if _, err := c.do(ctx, http.MethodPatch, a.URI, body, nil); err != nil {
			return bmc.Account{}, withoutAnswer(err)
		}
		a.UserName, a.RoleID, a.Enabled = s.UserName, s.RoleID, true
		return a, nil
	}
	return bmc.Account{}, fmt.Errorf("redfish: POST %s: %w (%d accounts)", col, bmc.ErrNoFreeAccountSlot, len(accounts))
}

// RemoveAccount DELETEs the account with userName; on a BMC that refuses (405) it PATCHes
// the account's UserName to "" and Enabled to false, which frees the slot. An account that
// is gone by the time it is deleted counts as removed.
func (c *Client) RemoveAccount(ctx context.Context, userName string) (bool, error) {
	if userName == "" {
		return false, errors.New("redfish: removing an account needs its user name")
	}
	accounts, _, err := c.listAccounts(ctx)
	if err != nil {
		return false, err
	}
	a := findAccount(accounts, userName)
	if a == nil {
		return false, nil
	}
	_, err = c.do(ctx, http.MethodDelete, a.URI, nil, nil)
	if errors.Is(err, bmc.ErrNotSupported) {
		empty, disabled := "", false
		_, err = c.do(ctx, http.MethodPatch, a.URI, accountWrite{UserName: &empty, Enabled: &disabled}, nil)
	}
	if err != nil && !errors.Is(err, bmc.ErrNotFound) {
		return false, withoutAnswer(err)
	}
	return true, nil
}

// CheckLogin reads the AccountService, which every role that may log in can read, with the
// given credentials instead of the client's own.
func (c *Client) CheckLogin(ctx context.Context, userName, password string) error {
	probe := &Client{
		base:        c.base,
		username:    userName,
		password:    password,
		timeout:     c.timeout,
		useSessions: c.useSessions,
		hc:          c.hc,
		maxBody:     c.maxBody,
		maxMembers:  c.maxMembers,
	}
	defer func() { _ = probe.Logout(context.WithoutCancel(ctx)) }()
	_, err := probe.do(ctx, http.MethodGet, pathAccountService, nil, nil)
	return withoutAnswer(err)
}
