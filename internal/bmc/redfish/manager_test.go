package redfish

import (
	"net/http"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

const testManager = "/redfish/v1/Managers/BMC"

func managerRoutes(manager map[string]any) map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET " + pathManagers: reply(http.StatusOK, nil, map[string]any{
			"Members": []map[string]any{{"@odata.id": testManager}},
		}),
		"GET " + testManager: reply(http.StatusOK, nil, manager),
	}
}

func TestResetManager(t *testing.T) {
	const target = testManager + "/Actions/Oem.Reset"
	cases := []struct {
		name    string
		manager map[string]any
		reset   bmc.ResetType
		post    string // the target posted to; "" = no POST
		err     error
	}{
		{"advertised target", map[string]any{"Actions": map[string]any{"#Manager.Reset": map[string]any{
			"target": target, "ResetType@Redfish.AllowableValues": []string{"GracefulRestart", "ForceRestart"}}}},
			bmc.ResetGracefulRestart, target, nil},
		{"conventional target", map[string]any{}, bmc.ResetForceRestart, testManager + "/Actions/Manager.Reset", nil},
		{"outside the allowable values", map[string]any{"Actions": map[string]any{"#Manager.Reset": map[string]any{
			"target": target, "ResetType@Redfish.AllowableValues": []string{"ForceRestart"}}}},
			bmc.ResetGracefulRestart, "", bmc.ErrNotSupported},
		{"unknown type", map[string]any{}, bmc.ResetType("Explode"), "", bmc.ErrNotSupported},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			routes := managerRoutes(tc.manager)
			if tc.post != "" {
				routes["POST "+tc.post] = reply(http.StatusNoContent, nil, nil)
			}
			f := newFakeBMC(t, routes)
			err := f.client(t).ResetManager(t.Context(), tc.reset)
			if tc.err != nil {
				g.Expect(err).To(MatchError(tc.err))
				g.Expect(f.only(http.MethodPost)).To(BeEmpty())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			posts := f.only(http.MethodPost)
			g.Expect(posts).To(HaveLen(1))
			g.Expect(posts[0].Path).To(Equal(tc.post))
			g.Expect(posts[0].Body).To(MatchJSON(`{"ResetType":"` + string(tc.reset) + `"}`))
		})
	}
}
