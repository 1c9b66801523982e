package redfish

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

const (
	testAccountPassword = "n3w-Acc0unt-pw!"
	testAccounts        = pathAccountService + "/Accounts"
)

// accountRoutes serves an AccountService with the given password rules, the three standard
// roles and accounts 1 (root), 2 (operator, ReadOnly) and 3 (a free slot).
func accountRoutes(maxLen any) map[string]http.HandlerFunc {
	account := func(id, user, role string, enabled bool) http.HandlerFunc {
		return reply(http.StatusOK, nil, map[string]any{
			"@odata.id": testAccounts + "/" + id, "Id": id, "UserName": user, "RoleId": role, "Enabled": enabled,
			"PasswordExpiration": "2031-02-03T04:05:06Z",
		})
	}
	return map[string]http.HandlerFunc{
		"GET " + pathAccountService: reply(http.StatusOK, nil, map[string]any{
			"@odata.id": pathAccountService, "MinPasswordLength": 8, "MaxPasswordLength": maxLen,
			"Accounts": map[string]any{"@odata.id": testAccounts},
			"Roles":    map[string]any{"@odata.id": pathAccountService + "/Roles"},
		}),
		"GET " + pathAccountService + "/Roles": reply(http.StatusOK, nil, members(
			pathAccountService+"/Roles/Administrator", pathAccountService+"/Roles/Operator", pathAccountService+"/Roles/ReadOnly")),
		"GET " + testAccounts:        reply(http.StatusOK, nil, members(testAccounts+"/1", testAccounts+"/2", testAccounts+"/3")),
		"GET " + testAccounts + "/1": account("1", "root", "Administrator", true),
		"GET " + testAccounts + "/2": account("2", "operator", "ReadOnly", false),
		"GET " + testAccounts + "/3": account("3", "", "", false),
	}
}

func TestAccountService(t *testing.T) {
	tests := []struct {
		name    string
		maxLen  any
		wantMax int
	}{
		{"announced", 20, 20},
		{"not announced", nil, 0},
		{"negative", -5, 0},
		{"absurd", 1 << 40, maxPasswordRule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newFakeBMC(t, accountRoutes(tt.maxLen))
			svc, err := f.client(t).AccountService(t.Context())
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(svc).To(Equal(bmc.AccountService{
				MinPasswordLength: 8, MaxPasswordLength: tt.wantMax,
				Roles: []string{"Administrator", "Operator", "ReadOnly"},
			}))
		})
	}
}

func TestListAccounts(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, accountRoutes(20))
	accounts, err := f.client(t).ListAccounts(t.Context())
	g.Expect(err).NotTo(HaveOccurred())
	expires := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	g.Expect(accounts).To(Equal([]bmc.Account{
		{ID: "1", URI: testAccounts + "/1", UserName: "root", RoleID: "Administrator", Enabled: true, PasswordExpiration: expires},
		{ID: "2", URI: testAccounts + "/2", UserName: "operator", RoleID: "ReadOnly", PasswordExpiration: expires},
		{ID: "3", URI: testAccounts + "/3", PasswordExpiration: expires},
	}))
}

// A BMC that lists more accounts than any BMC has is not read member by member.
func TestListAccountsIsBounded(t *testing.T) {
	g := NewWithT(t)
	routes := accountRoutes(20)
	many := make([]string, maxAccounts+1)
	for i := range many {
		many[i] = testAccounts + "/x"
	}
	routes["GET "+testAccounts] = reply(http.StatusOK, nil, members(many...))
	f := newFakeBMC(t, routes)
	_, err := f.client(t).ListAccounts(t.Context())
	g.Expect(err).To(MatchError(ContainSubstring("more than the 256 read")))
	g.Expect(f.count(http.MethodGet, testAccounts+"/x")).To(BeZero())
}

func TestSetAccount(t *testing.T) {
	tests := []struct {
		name string
		user string
		// post answers the POST to the collection (nil: not expected).
		post      http.HandlerFunc
		wantPOST  string
		wantPATCH string // path and body: "" = no PATCH
		wantBody  string
		want      bmc.Account
	}{
		{
			name:      "existing account: one PATCH with role, enabled and password",
			user:      "operator",
			wantPATCH: testAccounts + "/2",
			wantBody:  `{"Password":"` + testAccountPassword + `","RoleId":"Operator","Enabled":true}`,
			want: bmc.Account{ID: "2", URI: testAccounts + "/2", UserName: "operator", RoleID: "Operator", Enabled: true,
				PasswordExpiration: time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)},
		},
		{
			name: "new account: POST of user name, password and role",
			user: "metal",
			post: reply(http.StatusCreated, map[string]string{"Location": testAccounts + "/4"},
				map[string]any{"@odata.id": testAccounts + "/4", "Id": "4", "UserName": "metal"}),
			wantPOST: `{"UserName":"metal","Password":"` + testAccountPassword + `","RoleId":"Operator"}`,
			want:     bmc.Account{ID: "4", URI: testAccounts + "/4", UserName: "metal", RoleID: "Operator", Enabled: true},
		},
		{
			name:     "new account, answer without a body: the Location names it",
			user:     "metal",
			post:     reply(http.StatusCreated, map[string]string{"Location": "http://bmc.example" + testAccounts + "/7"}, nil),
			wantPOST: `{"UserName":"metal","Password":"` + testAccountPassword + `","RoleId":"Operator"}`,
			want:     bmc.Account{ID: "7", URI: testAccounts + "/7", UserName: "metal", RoleID: "Operator", Enabled: true},
		},
		{
			name:      "POST refused (405): the first free slot that is not Id 1 is PATCHed",
			user:      "metal",
			post:      reply(http.StatusMethodNotAllowed, nil, redfishErrorBody("OperationNotAllowed", "no")),
			wantPOST:  `{"UserName":"metal","Password":"` + testAccountPassword + `","RoleId":"Operator"}`,
			wantPATCH: testAccounts + "/3",
			wantBody:  `{"UserName":"metal","Password":"` + testAccountPassword + `","RoleId":"Operator","Enabled":true}`,
			want: bmc.Account{ID: "3", URI: testAccounts + "/3", UserName: "metal", RoleID: "Operator", Enabled: true,
				PasswordExpiration: time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			routes := accountRoutes(20)
			routes["PATCH "+testAccounts+"/2"] = reply(http.StatusOK, nil, nil)
			routes["PATCH "+testAccounts+"/3"] = reply(http.StatusOK, nil, nil)
			if tt.post != nil {
				routes["POST "+testAccounts] = tt.post
			}
			f := newFakeBMC(t, routes)
			got, err := f.client(t).SetAccount(t.Context(), bmc.AccountSettings{UserName: tt.user, Password: testAccountPassword, RoleID: "Operator"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))

			posts := f.only(http.MethodPost)
			if tt.wantPOST == "" {
				g.Expect(posts).To(BeEmpty())
			} else {
				g.Expect(posts).To(HaveLen(1))
				g.Expect(posts[0].Path).To(Equal(testAccounts))
				g.Expect(posts[0].Body).To(MatchJSON(tt.wantPOST))
			}
			patches := f.only(http.MethodPatch)
			if tt.wantPATCH == "" {
				g.Expect(patches).To(BeEmpty())
			} else {
				g.Expect(patches).To(HaveLen(1))
				g.Expect(patches[0].Path).To(Equal(tt.wantPATCH))
				g.Expect(patches[0].Body).To(MatchJSON(tt.wantBody))
				g.Expect(patches[0].Header.Get("Authorization")).To(Equal(basicAuth(testUser, testPassword)))
			}
		})
	}
}

// Without a free slot on a BMC that refuses POST, the error says so; Id 1 is never taken.
func TestSetAccountNoFreeSlot(t *testing.T) {
	g := NewWithT(t)
	routes := accountRoutes(20)
	routes["GET "+testAccounts] = reply(http.StatusOK, nil, members(testAccounts+"/1", testAccounts+"/2"))
	routes["GET "+testAccounts+"/1"] = reply(http.StatusOK, nil, map[string]any{"@odata.id": testAccounts + "/1", "Id": "1", "UserName": ""})
	routes["POST "+testAccounts] = reply(http.StatusMethodNotAllowed, nil, nil)
	f := newFakeBMC(t, routes)
	_, err := f.client(t).SetAccount(t.Context(), bmc.AccountSettings{UserName: "metal", Password: testAccountPassword, RoleID: "Operator"})
	g.Expect(err).To(MatchError(bmc.ErrNoFreeAccountSlot))
	g.Expect(err).To(MatchError(bmc.ErrConflict))
	g.Expect(f.only(http.MethodPatch)).To(BeEmpty())
}

// A BMC that quotes the new password in its refusal: neither the password nor anything else
// the BMC said reaches the error.
func TestSetAccountErrorsDropTheAnswer(t *testing.T) {
	g := NewWithT(t)
	routes := accountRoutes(20)
	routes["POST "+testAccounts] = reply(http.StatusBadRequest, nil,
		redfishErrorBody("PropertyValueFormatError", "The value "+testAccountPassword+" for Password is too weak"))
	f := newFakeBMC(t, routes)
	_, err := f.client(t).SetAccount(t.Context(), bmc.AccountSettings{UserName: "metal", Password: testAccountPassword, RoleID: "Operator"})
	g.Expect(err).To(MatchError(bmc.ErrBadRequest))
	g.Expect(err.Error()).To(Equal("redfish: POST " + testAccounts + ": bad request (400)"))
}

func TestRemoveAccount(t *testing.T) {
	tests := []struct {
		name        string
		user        string
		delete      http.HandlerFunc
		wantRemoved bool
		wantPATCH   string // body of the PATCH of account 2; "" = none
	}{
		{name: "deleted", user: "operator", delete: reply(http.StatusNoContent, nil, nil), wantRemoved: true},
		{name: "gone meanwhile (404)", user: "operator", delete: reply(http.StatusNotFound, nil, nil), wantRemoved: true},
		{
			name: "DELETE refused (405): emptied and disabled", user: "operator",
			delete:      reply(http.StatusMethodNotAllowed, nil, nil),
			wantRemoved: true, wantPATCH: `{"UserName":"","Enabled":false}`,
		},
		{name: "no such account", user: "nobody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			routes := accountRoutes(20)
			routes["PATCH "+testAccounts+"/2"] = reply(http.StatusOK, nil, nil)
			if tt.delete != nil {
				routes["DELETE "+testAccounts+"/2"] = tt.delete
			}
			f := newFakeBMC(t, routes)
			removed, err := f.client(t).RemoveAccount(t.Context(), tt.user)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(removed).To(Equal(tt.wantRemoved))
			if tt.delete == nil {
				g.Expect(f.only(http.MethodDelete)).To(BeEmpty())
			}
			patches := f.only(http.MethodPatch)
			if tt.wantPATCH == "" {
				g.Expect(patches).To(BeEmpty())
				return
			}
			g.Expect(patches).To(HaveLen(1))
			g.Expect(patches[0].Body).To(MatchJSON(tt.wantPATCH))
		})
	}
}

// CheckLogin reads the AccountService with the credentials it is given, not the client's.
func TestCheckLogin(t *testing.T) {
	g := NewWithT(t)
	routes := accountRoutes(20)
	routes["GET "+pathAccountService] = func(w http.ResponseWriter, r *http.Request) {
		if user, pass, _ := r.BasicAuth(); user != "metal" || pass != testAccountPassword {
			writeTestJSON(w, http.StatusUnauthorized, nil, redfishErrorBody("InsufficientPrivilege", "bad "+pass))
			return
		}
		writeTestJSON(w, http.StatusOK, nil, map[string]any{"@odata.id": pathAccountService})
	}
	f := newFakeBMC(t, routes)
	c := f.client(t)
	g.Expect(c.CheckLogin(t.Context(), "metal", testAccountPassword)).To(Succeed())
	err := c.CheckLogin(t.Context(), "metal", "wrong-"+testAccountPassword)
	g.Expect(err).To(MatchError(bmc.ErrUnauthorized))
	g.Expect(err.Error()).NotTo(ContainSubstring(testAccountPassword))

	gets := f.only(http.MethodGet)
	g.Expect(gets).To(HaveLen(2))
	g.Expect(gets[0].Header.Get("Authorization")).To(Equal(basicAuth("metal", testAccountPassword)))
}

// What a BMC sends about its accounts never makes the client panic, and the password lengths
// it announces stay within bounds.
func FuzzAccountResources(f *testing.F) {
	f.Add([]byte(`{"MinPasswordLength": 8, "MaxPasswordLength": 20, "Accounts": {"@odata.id": "/redfish/v1/AccountService/Accounts"}}`))
	f.Add([]byte(`{"MaxPasswordLength": "127", "MinPasswordLength": -1e300}`))
	f.Add([]byte(`{"@odata.id": "/redfish/v1/AccountService/Accounts/2", "Id": "2", "UserName": "metal", "RoleId": "ReadOnly", "Enabled": true, "PasswordExpiration": "2031-02-03T04:05:06Z"}`))
	f.Add([]byte(`{"Id": null, "UserName": 7, "PasswordExpiration": "tomorrow"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var svc accountService
		if json.Unmarshal(data, &svc) == nil {
			for _, n := range []number{svc.MinPasswordLength, svc.MaxPasswordLength} {
				if l := passwordRule(n); l < 0 || l > maxPasswordRule {
					t.Fatalf("password length %d out of bounds", l)
				}
			}
		}
		var a managerAccount
		if json.Unmarshal(data, &a) == nil {
			_ = accountOf(a, "https://bmc.example"+a.ODataID)
		}
	})
}
