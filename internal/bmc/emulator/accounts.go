package emulator

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

const (
	accountSvcPath = "/redfish/v1/AccountService"
	accountsPath   = accountSvcPath + "/Accounts"
	rolesPath      = accountSvcPath + "/Roles"

	// AccountSlots is the number of account slots; slot 1 is the administrator of
	// Options.Username and cannot be changed over Redfish.
	AccountSlots = 16
	// Default password rules.
	DefaultMinPasswordLength = 8
	DefaultMaxPasswordLength = 20

	roleAdministrator = "Administrator"
)

// Roles are the roles of the emulated BMC.
var Roles = []string{roleAdministrator, "Operator", "ReadOnly"}

// accountStore is the AccountService state. It is guarded by Emulator.mu.
type accountStore struct {
	// slots[0] is account Id 2; the administrator (Id 1) is Emulator.username/password.
	slots      [AccountSlots - 1]account
	minLength  int
	maxLength  int
	fixedSlots bool
	writes     int
}

// account is one account slot; an empty userName is a free slot.
type account struct {
	userName string
	password string
	roleID   string
	enabled  bool
	expires  time.Time
}

func newAccountStore() *accountStore {
	return &accountStore{minLength: DefaultMinPasswordLength, maxLength: DefaultMaxPasswordLength}
}

// SetFixedAccountSlots makes the BMC keep a fixed set of account slots, as some do: POST to
// the Accounts collection and DELETE of an account answer 405 Method Not Allowed, the
// collection lists the free slots too, and an account is made by PATCHing a free slot and
// removed by emptying its UserName.
func (e *Emulator) SetFixedAccountSlots(fixed bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.accounts.fixedSlots = fixed
}

// SetPasswordPolicy changes MinPasswordLength and MaxPasswordLength.
func (e *Emulator) SetPasswordPolicy(minLength, maxLength int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.accounts.minLength, e.accounts.maxLength = minLength, maxLength
}

// Account returns the account with userName (the administrator's included).
func (e *Emulator) Account(userName string) (bmc.Account, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if userName == e.username {
		return e.accountInfoLocked(1), true
	}
	if i := e.slotOfLocked(userName); i >= 0 {
		return e.accountInfoLocked(i + 2), true
	}
	return bmc.Account{}, false
}

// Authenticates reports whether the BMC accepts the credentials.
func (e *Emulator) Authenticates(userName, password string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.credentialsMatch(userName, password) || e.accountMatchLocked(userName, password)
}

// DeleteAccount removes an account out of band (someone deleted it on the BMC). It reports
// whether there was one.
func (e *Emulator) DeleteAccount(userName string) bool {
	return e.changeAccount(userName, func(a *account) { *a = account{} })
}

// SetAccountPassword changes an account's password out of band. It reports whether there is
// such an account.
func (e *Emulator) SetAccountPassword(userName, password string) bool {
	return e.changeAccount(userName, func(a *account) { a.password = password })
}

// SetPasswordExpiration sets when an account's password expires, as the BMC reports it. It
// reports whether there is such an account.
func (e *Emulator) SetPasswordExpiration(userName string, at time.Time) bool {
	return e.changeAccount(userName, func(a *account) { a.expires = at })
}

// changeAccount applies change to the account with userName (not the administrator) and
// reports whether there is one.
func (e *Emulator) changeAccount(userName string, change func(*account)) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := e.slotOfLocked(userName)
	if i < 0 {
		return false
	}
	change(&e.accounts.slots[i])
	return true
}

// AccountWrites returns how many POST, PATCH and DELETE requests for accounts the BMC
// accepted.
func (e *Emulator) AccountWrites() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.accounts.writes
}

// slotOfLocked returns the index in slots of the account with userName, or -1.
func (e *Emulator) slotOfLocked(userName string) int {
	if userName == "" {
		return -1
	}
	return slices.IndexFunc(e.accounts.slots[:], func(a account) bool { return a.userName == userName })
}

// accountMatchLocked reports whether an enabled account other than the administrator has
// these credentials.
func (e *Emulator) accountMatchLocked(userName, password string) bool {
	i := e.slotOfLocked(userName)
	if i < 0 {
		return false
	}
	a := e.accounts.slots[i]
	return a.enabled && a.password != "" && a.password == password
}

// roleOfLocked returns the role of the request's user ("" if unknown).
func (e *Emulator) roleOfLocked(r *http.Request) string {
	user, _, _ := r.BasicAuth()
	if token := r.Header.Get("X-Auth-Token"); token != "" {
		if s := e.sessions[token]; s != nil {
			user = s.username
		}
	}
	if user == e.username {
		return roleAdministrator
	}
	if i := e.slotOfLocked(user); i >= 0 {
		return e.accounts.slots[i].roleID
	}
	return ""
}

func (e *Emulator) accountInfoLocked(id int) bmc.Account {
	a := bmc.Account{ID: strconv.Itoa(id), URI: accountsPath + "/" + strconv.Itoa(id)}
	if id == 1 {
		a.UserName, a.RoleID, a.Enabled = e.username, roleAdministrator, true
		return a
	}
	s := e.accounts.slots[id-2]
	a.UserName, a.RoleID, a.Enabled, a.PasswordExpiration = s.userName, s.roleID, s.enabled, s.expires
	return a
}

func (e *Emulator) accountJSONLocked(id int) obj {
	a := e.accountInfoLocked(id)
	body := obj{
		"@odata.type": "#ManagerAccount.v1_10_0.ManagerAccount", "@odata.id": a.URI,
		"Id": a.ID, "Name": "User Account", "UserName": a.UserName, "RoleId": a.RoleID,
		"Enabled": a.Enabled, "Locked": false, "Password": nil,
	}
	if a.RoleID != "" {
		body["Links"] = obj{"Role": ref(rolesPath + "/" + a.RoleID)}
	}
	if !a.PasswordExpiration.IsZero() {
		body["PasswordExpiration"] = a.PasswordExpiration.UTC().Format(time.RFC3339)
	}
	return body
}

// serveAccounts routes /redfish/v1/AccountService/...
func (e *Emulator) serveAccounts(w http.ResponseWriter, r *http.Request, segs []string) {
	switch {
	case len(segs) == 0:
		if allow(w, r, http.MethodGet) {
			e.mu.RLock()
			body := obj{
				"@odata.type": "#AccountService.v1_12_0.AccountService", "@odata.id": accountSvcPath,
				"Id": "AccountService", "Name": "Account Service", "ServiceEnabled": true,
				"MinPasswordLength": e.accounts.minLength, "MaxPasswordLength": e.accounts.maxLength,
				"Accounts": ref(accountsPath), "Roles": ref(rolesPath),
			}
			e.mu.RUnlock()
			writeJSON(w, http.StatusOK, body)
		}
	case segs[0] == "Roles":
		serveRoles(w, r, segs[1:])
	case segs[0] != "Accounts":
		notFound(w, r)
	case len(segs) == 1:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			e.mu.RLock()
			members := []obj{ref(accountsPath + "/1")}
			for i, a := range e.accounts.slots {
				if a.userName != "" || e.accounts.fixedSlots {
					members = append(members, ref(accountsPath+"/"+strconv.Itoa(i+2)))
				}
			}
			e.mu.RUnlock()
			writeJSON(w, http.StatusOK, collectionOf("#ManagerAccountCollection.ManagerAccountCollection",
				accountsPath, "Accounts Collection", members))
		case http.MethodPost:
			e.createAccount(w, r)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPost)
		}
	case len(segs) == 2:
		e.serveAccount(w, r, segs[1])
	default:
		notFound(w, r)
	}
}

func serveRoles(w http.ResponseWriter, r *http.Request, segs []string) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	switch {
	case len(segs) == 0:
		members := make([]obj, 0, len(Roles))
		for _, role := range Roles {
			members = append(members, ref(rolesPath+"/"+role))
		}
		writeJSON(w, http.StatusOK, collectionOf("#RoleCollection.RoleCollection", rolesPath, "Roles Collection", members))
	case len(segs) == 1 && slices.Contains(Roles, segs[0]):
		writeJSON(w, http.StatusOK, obj{
			"@odata.type": "#Role.v1_3_1.Role", "@odata.id": rolesPath + "/" + segs[0],
			"Id": segs[0], "RoleId": segs[0], "Name": segs[0] + " Role", "IsPredefined": true,
		})
	default:
		notFound(w, r)
	}
}

// accountRequest is the body of an account POST or PATCH.
type accountRequest struct {
	UserName *string `json:"UserName"`
	Password *string `json:"Password"`
	RoleID   *string `json:"RoleId"`
	Enabled  *bool   `json:"Enabled"`
}

// decodeAccount decodes an account body, answering 400 for anything but the four properties
// an account write may carry.
func decodeAccount(w http.ResponseWriter, r *http.Request) (accountRequest, bool) {
	var raw map[string]json.RawMessage
	if !decodeBody(w, r, &raw) {
		return accountRequest{}, false
	}
	for k := range raw {
		if !slices.Contains([]string{"UserName", "Password", "RoleId", "Enabled"}, k) {
			writeError(w, http.StatusBadRequest, "PropertyNotWritable", "The property "+k+" is not writable or unknown.")
			return accountRequest{}, false
		}
	}
	var req accountRequest
	data, _ := json.Marshal(raw)
	if err := json.Unmarshal(data, &req); err != nil {
		writeError(w, http.StatusBadRequest, "PropertyValueTypeError", "A property of the account has the wrong type.")
		return accountRequest{}, false
	}
	return req, true
}

// accountWriteAllowedLocked answers 403 unless the request's user is an Administrator.
func (e *Emulator) accountWriteAllowedLocked(w http.ResponseWriter, r *http.Request) bool {
	if e.roleOfLocked(r) == roleAdministrator {
		return true
	}
	writeError(w, http.StatusForbidden, "InsufficientPrivilege", "There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.")
	return false
}

// validateLocked checks what req would make of slot i (-1: a new account) and answers 400
// if the BMC would refuse it. Passwords are never quoted.
func (e *Emulator) validateLocked(w http.ResponseWriter, req accountRequest, i int) bool {
	if req.UserName != nil && *req.UserName != "" {
		if j := e.slotOfLocked(*req.UserName); (j >= 0 && j != i) || *req.UserName == e.username {
			writeError(w, http.StatusBadRequest, "ResourceAlreadyExists", "An account with the user name "+strconv.Quote(*req.UserName)+" already exists.")
			return false
		}
	}
	if req.UserName != nil && *req.UserName == "" && !e.accounts.fixedSlots {
		notInList(w, "UserName", "")
		return false
	}
	if req.RoleID != nil && !slices.Contains(Roles, *req.RoleID) {
		notInList(w, "RoleId", *req.RoleID)
		return false
	}
	if req.Password != nil && !e.passwordAcceptableLocked(*req.Password) {
		writeError(w, http.StatusBadRequest, "PropertyValueFormatError",
			"The value provided for the property Password does not meet the password rules: "+
				strconv.Itoa(e.accounts.minLength)+" to "+strconv.Itoa(e.accounts.maxLength)+
				" characters with lower and upper case letters, digits and special characters.")
		return false
	}
	return true
}

// passwordAcceptableLocked applies the password rules: the length bounds, and at least one
// lower-case letter, upper-case letter, digit and other printable character, nothing else.
func (e *Emulator) passwordAcceptableLocked(pw string) bool {
	n := len([]rune(pw))
	if n < e.accounts.minLength || (e.accounts.maxLength > 0 && n > e.accounts.maxLength) {
		return false
	}
	var lower, upper, digit, special bool
	for _, c := range pw {
		switch {
		case c > unicode.MaxASCII || !unicode.IsPrint(c) || c == ' ':
			return false
		case unicode.IsLower(c):
			lower = true
		case unicode.IsUpper(c):
			upper = true
		case unicode.IsDigit(c):
			digit = true
		default:
			special = true
		}
	}
	return lower && upper && digit && special
}

// createAccount handles POST to the Accounts collection.
func (e *Emulator) createAccount(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeAccount(w, r)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.accountWriteAllowedLocked(w, r) {
		return
	}
	if e.accounts.fixedSlots {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	if req.UserName == nil || *req.UserName == "" || req.Password == nil || req.RoleID == nil {
		writeError(w, http.StatusBadRequest, "CreateFailedMissingReqProperties",
			"The create operation failed because the required properties UserName, Password and RoleId were not all given.")
		return
	}
	if !e.validateLocked(w, req, -1) {
		return
	}
	i := slices.IndexFunc(e.accounts.slots[:], func(a account) bool { return a.userName == "" })
	if i < 0 {
		writeError(w, http.StatusBadRequest, "CreateLimitReachedForResource", "No more accounts can be created.")
		return
	}
	enabled := req.Enabled == nil || *req.Enabled
	e.accounts.slots[i] = account{userName: *req.UserName, password: *req.Password, roleID: *req.RoleID, enabled: enabled}
	e.accounts.writes++
	w.Header().Set("Location", accountsPath+"/"+strconv.Itoa(i+2))
	writeJSON(w, http.StatusCreated, e.accountJSONLocked(i+2))
}

// serveAccount handles one account: GET, PATCH and DELETE.
func (e *Emulator) serveAccount(w http.ResponseWriter, r *http.Request, idStr string) {
	id, err := strconv.Atoi(idStr)
	if err != nil || id < 1 || id > AccountSlots || strconv.Itoa(id) != idStr {
		notFound(w, r)
		return
	}
	var req accountRequest
	if r.Method == http.MethodPatch {
		var ok bool
		if req, ok = decodeAccount(w, r); !ok {
			return
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if id > 1 && e.accounts.slots[id-2].userName == "" && !e.accounts.fixedSlots {
		notFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writeJSON(w, http.StatusOK, e.accountJSONLocked(id))
	case http.MethodPatch:
		e.patchAccountLocked(w, r, id, req)
	case http.MethodDelete:
		switch {
		case !e.accountWriteAllowedLocked(w, r):
		case e.accounts.fixedSlots:
			methodNotAllowed(w, http.MethodGet, http.MethodPatch)
		case id == 1:
			writeError(w, http.StatusBadRequest, "ResourceCannotBeDeleted", "The built-in administrator cannot be deleted.")
		default:
			e.accounts.slots[id-2] = account{}
			e.accounts.writes++
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		methodNotAllowed(w, http.MethodGet, http.MethodPatch, http.MethodDelete)
	}
}

// patchAccountLocked handles PATCH of an account. Emptying UserName (fixed slots only)
// frees the slot.
func (e *Emulator) patchAccountLocked(w http.ResponseWriter, r *http.Request, id int, req accountRequest) {
	if !e.accountWriteAllowedLocked(w, r) {
		return
	}
	if id == 1 {
		writeError(w, http.StatusBadRequest, "PropertyNotWritable", "The built-in administrator cannot be changed.")
		return
	}
	if !e.validateLocked(w, req, id-2) {
		return
	}
	a := &e.accounts.slots[id-2]
	if req.UserName != nil {
		a.userName = *req.UserName
	}
	if req.Password != nil {
		// A new password starts without an expiration (the emulator has no expiry policy).
		a.password, a.expires = *req.Password, time.Time{}
	}
	if req.RoleID != nil {
		a.roleID = *req.RoleID
	}
	if req.Enabled != nil {
		a.enabled = *req.Enabled
	}
	if a.userName == "" {
		*a = account{}
	}
	e.accounts.writes++
	writeJSON(w, http.StatusOK, e.accountJSONLocked(id))
}
