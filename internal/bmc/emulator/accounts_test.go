package emulator_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/bmc/redfish"
)

const (
	accountSvc   = "/redfish/v1/AccountService"
	accountsURI  = accountSvc + "/Accounts"
	goodPassword = "Metal-0perator!"
)

func TestAccountServiceProtocol(t *testing.T) {
	g := NewWithT(t)
	e := emulator.New(emulator.Options{})
	h := e.Handler()

	root := call(t, h, "GET", "/redfish/v1", "", nil, false)
	g.Expect(root.body).To(HaveKeyWithValue("AccountService", map[string]any{"@odata.id": accountSvc}))
	svc := call(t, h, "GET", accountSvc, "", nil, true)
	g.Expect(svc.status).To(Equal(http.StatusOK))
	g.Expect(svc.body).To(HaveKeyWithValue("MaxPasswordLength", BeEquivalentTo(emulator.DefaultMaxPasswordLength)))
	g.Expect(svc.body).To(HaveKeyWithValue("MinPasswordLength", BeEquivalentTo(emulator.DefaultMinPasswordLength)))
	roles := call(t, h, "GET", accountSvc+"/Roles", "", nil, true)
	g.Expect(roles.body["Members@odata.count"]).To(BeEquivalentTo(len(emulator.Roles)))
	g.Expect(call(t, h, "GET", accountSvc+"/Roles/ReadOnly", "", nil, true).body).To(HaveKeyWithValue("RoleId", "ReadOnly"))

	// Only the administrator exists at first.
	list := call(t, h, "GET", accountsURI, "", nil, true)
	g.Expect(list.body["Members@odata.count"]).To(BeEquivalentTo(1))
	admin := call(t, h, "GET", accountsURI+"/1", "", nil, true)
	g.Expect(admin.body).To(HaveKeyWithValue("UserName", emulator.DefaultUsername))
	g.Expect(admin.body).To(HaveKeyWithValue("Password", BeNil()))

	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantMsg                  string
	}{
		{"password too short", "POST", accountsURI, `{"UserName":"u","Password":"Aa1!","RoleId":"ReadOnly"}`, 400, "PropertyValueFormatError"},
		{"password without a special character", "POST", accountsURI, `{"UserName":"u","Password":"Abcdefgh1","RoleId":"ReadOnly"}`, 400, "PropertyValueFormatError"},
		{"unknown role", "POST", accountsURI, `{"UserName":"u","Password":"` + goodPassword + `","RoleId":"Root"}`, 400, "PropertyValueNotInList"},
		{"missing role", "POST", accountsURI, `{"UserName":"u","Password":"` + goodPassword + `"}`, 400, "CreateFailedMissingReqProperties"},
		{"unknown property", "POST", accountsURI, `{"UserName":"u","Password":"` + goodPassword + `","RoleId":"ReadOnly","Shell":"bash"}`, 400, "PropertyNotWritable"},
		{"the administrator's name", "POST", accountsURI, `{"UserName":"admin","Password":"` + goodPassword + `","RoleId":"ReadOnly"}`, 400, "ResourceAlreadyExists"},
		{"administrator is not deleted", "DELETE", accountsURI + "/1", "", 400, "ResourceCannotBeDeleted"},
		{"administrator is not changed", "PATCH", accountsURI + "/1", `{"RoleId":"ReadOnly"}`, 400, "PropertyNotWritable"},
		{"free slot is not found", "GET", accountsURI + "/2", "", 404, "ResourceNotFound"},
		{"no such slot", "GET", accountsURI + "/17", "", 404, "ResourceNotFound"},
		{"created", "POST", accountsURI, `{"UserName":"metal","Password":"` + goodPassword + `","RoleId":"ReadOnly"}`, 201, ""},
		{"duplicate", "POST", accountsURI, `{"UserName":"metal","Password":"` + goodPassword + `","RoleId":"ReadOnly"}`, 400, "ResourceAlreadyExists"},
	}
	for _, tt := range tests {
		r := call(t, h, tt.method, tt.path, tt.body, nil, true)
		g.Expect(r.status).To(Equal(tt.wantStatus), "%s: %v", tt.name, r.body)
		if tt.wantMsg != "" {
			g.Expect(messageID(r)).To(Equal("Base.1.15."+tt.wantMsg), tt.name)
		}
		raw, _ := json.Marshal(r.body)
		g.Expect(string(raw)).NotTo(ContainSubstring(goodPassword), tt.name)
	}

	g.Expect(e.Authenticates("metal", goodPassword)).To(BeTrue())
	account, found := e.Account("metal")
	g.Expect(found).To(BeTrue())
	g.Expect(account).To(Equal(bmc.Account{ID: "2", URI: accountsURI + "/2", UserName: "metal", RoleID: "ReadOnly", Enabled: true}))
	g.Expect(e.AccountWrites()).To(Equal(1))

	// A ReadOnly account logs in and reads, but does not write accounts.
	asMetal := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("metal:"+goodPassword))}
	g.Expect(call(t, h, "GET", accountSvc, "", asMetal, false).status).To(Equal(http.StatusOK))
	g.Expect(call(t, h, "PATCH", accountsURI+"/2", `{"RoleId":"Administrator"}`, asMetal, false).status).To(Equal(http.StatusForbidden))

	// Disabled accounts do not log in.
	g.Expect(call(t, h, "PATCH", accountsURI+"/2", `{"Enabled":false}`, nil, true).status).To(Equal(http.StatusOK))
	g.Expect(call(t, h, "GET", accountSvc, "", asMetal, false).status).To(Equal(http.StatusUnauthorized))

	g.Expect(call(t, h, "DELETE", accountsURI+"/2", "", nil, true).status).To(Equal(http.StatusNoContent))
	_, found = e.Account("metal")
	g.Expect(found).To(BeFalse())
}

// With fixed slots, the collection lists every slot and refuses POST and DELETE (405).
func TestFixedAccountSlotsProtocol(t *testing.T) {
	g := NewWithT(t)
	e := emulator.New(emulator.Options{})
	e.SetFixedAccountSlots(true)
	h := e.Handler()

	list := call(t, h, "GET", accountsURI, "", nil, true)
	g.Expect(list.body["Members@odata.count"]).To(BeEquivalentTo(emulator.AccountSlots))
	g.Expect(call(t, h, "GET", accountsURI+"/5", "", nil, true).body).To(HaveKeyWithValue("UserName", ""))
	post := call(t, h, "POST", accountsURI, `{"UserName":"metal","Password":"`+goodPassword+`","RoleId":"ReadOnly"}`, nil, true)
	g.Expect(post.status).To(Equal(http.StatusMethodNotAllowed))

	patch := call(t, h, "PATCH", accountsURI+"/5", `{"UserName":"metal","Password":"`+goodPassword+`","RoleId":"Operator","Enabled":true}`, nil, true)
	g.Expect(patch.status).To(Equal(http.StatusOK))
	g.Expect(e.Authenticates("metal", goodPassword)).To(BeTrue())
	g.Expect(call(t, h, "DELETE", accountsURI+"/5", "", nil, true).status).To(Equal(http.StatusMethodNotAllowed))

	g.Expect(call(t, h, "PATCH", accountsURI+"/5", `{"UserName":"","Enabled":false}`, nil, true).status).To(Equal(http.StatusOK))
	_, found := e.Account("metal")
	g.Expect(found).To(BeFalse())
	g.Expect(e.Authenticates("metal", goodPassword)).To(BeFalse())
}

// The Redfish client manages accounts on the emulator over HTTP, on a BMC that creates
// accounts with POST and on one with fixed slots alike.
func TestAccountsOverHTTP(t *testing.T) {
	for _, fixed := range []bool{false, true} {
		name := map[bool]string{false: "POST", true: "fixed slots"}[fixed]
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			e, c := startEmulator(t, emulator.Options{})
			e.SetFixedAccountSlots(fixed)
			e.SetPasswordPolicy(8, 16)
			ctx := t.Context()

			svc, err := c.AccountService(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(svc).To(Equal(bmc.AccountService{MinPasswordLength: 8, MaxPasswordLength: 16, Roles: emulator.Roles}))

			created, err := c.SetAccount(ctx, bmc.AccountSettings{UserName: "metal", Password: goodPassword, RoleID: "ReadOnly"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(created.ID).To(Equal("2"))
			g.Expect(c.CheckLogin(ctx, "metal", goodPassword)).To(Succeed())
			g.Expect(c.CheckLogin(ctx, "metal", "Wr0ng-password")).To(MatchError(bmc.ErrUnauthorized))

			// Role and password change in one PATCH.
			_, err = c.SetAccount(ctx, bmc.AccountSettings{UserName: "metal", Password: "0ther-Password", RoleID: "Operator"})
			g.Expect(err).NotTo(HaveOccurred())
			account, _ := e.Account("metal")
			g.Expect(account.RoleID).To(Equal("Operator"))
			g.Expect(e.Authenticates("metal", "0ther-Password")).To(BeTrue())
			g.Expect(e.Authenticates("metal", goodPassword)).To(BeFalse())

			// The password rules are the BMC's.
			_, err = c.SetAccount(ctx, bmc.AccountSettings{UserName: "metal", Password: "Much-T00-long-for-16", RoleID: "Operator"})
			g.Expect(err).To(MatchError(bmc.ErrBadRequest))

			expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			g.Expect(e.SetPasswordExpiration("metal", expires)).To(BeTrue())
			accounts, err := c.ListAccounts(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(accounts).To(ContainElement(bmc.Account{
				ID: "2", URI: accountsURI + "/2", UserName: "metal", RoleID: "Operator", Enabled: true, PasswordExpiration: expires,
			}))

			removed, err := c.RemoveAccount(ctx, "metal")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(removed).To(BeTrue())
			_, found := e.Account("metal")
			g.Expect(found).To(BeFalse())
			removed, err = c.RemoveAccount(ctx, "metal")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(removed).To(BeFalse(), "already gone")
		})
	}
}

// The accounts the BMC has log in, with sessions too.
func TestAccountSession(t *testing.T) {
	g := NewWithT(t)
	e, c := startEmulator(t, emulator.Options{})
	_, err := c.SetAccount(t.Context(), bmc.AccountSettings{UserName: "metal", Password: goodPassword, RoleID: "ReadOnly"})
	g.Expect(err).NotTo(HaveOccurred())
	user := newClient(t, e, func(cfg *redfish.Config) {
		cfg.Username, cfg.Password, cfg.UseSessions = "metal", goodPassword, true
	})
	_, err = user.Systems(t.Context())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(e.SessionCount()).To(Equal(1))
	g.Expect(user.Logout(t.Context())).To(Succeed())
}
