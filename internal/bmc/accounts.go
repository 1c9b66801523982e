package bmc

import (
	"context"
	"fmt"
	"time"
)

// ErrNoFreeAccountSlot: the BMC has no room for another account. It wraps ErrConflict.
var ErrNoFreeAccountSlot = fmt.Errorf("%w: no free account slot", ErrConflict)

// AccountService is what a BMC says about its accounts in general.
type AccountService struct {
	// MinPasswordLength and MaxPasswordLength bound a password's length; 0 means the BMC does
	// not say.
	MinPasswordLength int
	MaxPasswordLength int
	// Roles are the RoleIds the BMC offers; nil when it does not list them.
	Roles []string
}

// Account is one user account of a BMC. Passwords are never read back.
type Account struct {
	// ID is the Redfish Id of the account; URI its path.
	ID  string
	URI string
	// UserName is empty for a free account slot.
	UserName string
	RoleID   string
	Enabled  bool
	// PasswordExpiration is when the password expires; zero when the BMC does not say.
	PasswordExpiration time.Time
}

// AccountSettings is what SetAccount makes of an account.
type AccountSettings struct {
	UserName string
	Password string
	RoleID   string
}

// Accounts manages the user accounts of a BMC (Redfish AccountService). Errors never contain
// a password, nor what the BMC answered to a request carrying one.
type Accounts interface {
	// AccountService reads the password rules and the roles.
	AccountService(ctx context.Context) (AccountService, error)
	// ListAccounts reads every account, free slots included.
	ListAccounts(ctx context.Context) ([]Account, error)
	// SetAccount creates the account with s.UserName, or updates the one that exists, so that
	// it is enabled with s.RoleID and s.Password. A BMC that has no room for another account
	// yields an error wrapping ErrNoFreeAccountSlot.
	SetAccount(ctx context.Context, s AccountSettings) (Account, error)
	// RemoveAccount deletes the account with userName or, on a BMC that does not delete
	// accounts, disables it and frees its slot. It reports whether there was such an account.
	RemoveAccount(ctx context.Context, userName string) (bool, error)
	// CheckLogin reports whether the BMC accepts the credentials: nil if it does, an error
	// wrapping ErrUnauthorized if it rejects them.
	CheckLogin(ctx context.Context, userName, password string) error
}
