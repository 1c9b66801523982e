package redfish

import (
	"net/http"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

// The system the fake BMC serves boots Boot0002, Boot0000, Boot0001 (systemBody).
func TestSetBootOrder(t *testing.T) {
	tests := []struct {
		name      string
		order     []string
		wantPatch string // "" = no PATCH
	}{
		{
			name:      "reordered",
			order:     []string{"Boot0000", "Boot0001", "Boot0002"},
			wantPatch: `{"Boot":{"BootOrder":["Boot0000","Boot0001","Boot0002"]}}`,
		},
		{
			name:      "fewer entries",
			order:     []string{"Boot0002", "Boot0000"},
			wantPatch: `{"Boot":{"BootOrder":["Boot0002","Boot0000"]}}`,
		},
		{
			name:  "already in that order",
			order: []string{"Boot0002", "Boot0000", "Boot0001"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newFakeBMC(t, map[string]http.HandlerFunc{
				"GET " + testSystem:   reply(http.StatusOK, map[string]string{"ETag": `W/"7"`}, systemBody("On", "Disabled", "None")),
				"PATCH " + testSystem: reply(http.StatusNoContent, nil, nil),
			})
			g.Expect(f.client(t).SetBootOrder(t.Context(), testSystem, tt.order)).To(Succeed())
			g.Expect(f.count(http.MethodGet, testSystem)).To(Equal(1))
			expectSystemPatch(g, f, tt.wantPatch, `W/"7"`)
		})
	}
}

func TestSetBootOrderRefusesAnEmptyOrderWithoutARequest(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, nil)
	err := f.client(t).SetBootOrder(t.Context(), testSystem, nil)
	g.Expect(err).To(MatchError(ContainSubstring("empty boot order")))
	g.Expect(f.requests()).To(BeEmpty())
}

// A BMC that refuses the order answers 400; the error carries its message, without the
// credentials even if the BMC quotes them.
func TestSetBootOrderRejected(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem: reply(http.StatusOK, nil, systemBody("Off", "Disabled", "None")),
		"PATCH " + testSystem: func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, http.StatusBadRequest, nil, redfishErrorBody("PropertyValueNotInList",
				`The value "Boot0042" for the property BootOrder is not in the list of acceptable values (`+testPassword+`).`))
		},
	})
	err := f.client(t).SetBootOrder(t.Context(), testSystem, []string{"Boot0042"})
	g.Expect(err).To(MatchError(bmc.ErrBadRequest))
	g.Expect(bmc.Reason(err)).To(Equal(bmc.ReasonBadRequest))
	g.Expect(err.Error()).To(HavePrefix(`redfish: PATCH ` + testSystem + `: bad request (400): The value "Boot0042" for the property BootOrder`))
	g.Expect(err.Error()).NotTo(ContainSubstring(testPassword))
	g.Expect(f.count(http.MethodPatch, testSystem)).To(Equal(1), "a refused PATCH is not sent again")
}
