package redfish

import (
	"net/http"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

// advertisingRoot is a service root that advertises "." with $levels up to 3.
var advertisingRoot = map[string]any{"ProtocolFeaturesSupported": map[string]any{
	"ExpandQuery": map[string]any{"NoLinks": true, "Levels": true, "MaxLevels": 3},
}}

// A service that advertises $expand but answers with bare links is trusted by the shape of
// its members: each is read on its own, with no request more than without $expand.
func TestExpandedCollectionWithBareMembers(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET /redfish/v1":           reply(http.StatusOK, nil, advertisingRoot),
		"GET /redfish/v1/Systems":   reply(http.StatusOK, nil, members("/redfish/v1/Systems/a")),
		"GET /redfish/v1/Systems/a": reply(http.StatusOK, nil, map[string]any{"@odata.id": "/redfish/v1/Systems/a", "UUID": "aaaa"}),
	})
	systems, err := f.client(t).Systems(t.Context())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(systems).To(Equal([]bmc.System{{UUID: "aaaa", URI: "/redfish/v1/Systems/a"}}))
	g.Expect(f.count(http.MethodGet, "/redfish/v1/Systems")).To(Equal(1))
	g.Expect(f.count(http.MethodGet, "/redfish/v1/Systems/a")).To(Equal(1))
}

// An expanded answer past its bound (expandedBodyFactor times MaxResponseBytes) is read
// member by member instead; members past MaxCollectionMembers fail either way.
func TestExpandedCollectionIsBounded(t *testing.T) {
	g := NewWithT(t)
	big := map[string]any{"@odata.id": "/redfish/v1/Systems/a", "UUID": "aaaa", "Padding": strings.Repeat("x", 4096)}
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET /redfish/v1": reply(http.StatusOK, nil, advertisingRoot),
		"GET /redfish/v1/Systems": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Has("$expand") {
				writeTestJSON(w, http.StatusOK, nil, map[string]any{"Members": []any{big}})
				return
			}
			writeTestJSON(w, http.StatusOK, nil, members("/redfish/v1/Systems/a"))
		},
		"GET /redfish/v1/Systems/a": reply(http.StatusOK, nil, map[string]any{"UUID": "aaaa"}),
	})
	systems, err := f.client(t, func(c *Config) { c.MaxResponseBytes = 1024 }).Systems(t.Context())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(systems).To(Equal([]bmc.System{{UUID: "aaaa", URI: "/redfish/v1/Systems/a"}}))
	g.Expect(f.count(http.MethodGet, "/redfish/v1/Systems")).To(Equal(2))

	f.route("GET /redfish/v1/Systems", reply(http.StatusOK, nil, map[string]any{"Members": []any{
		map[string]any{"@odata.id": "/redfish/v1/Systems/a", "UUID": "aaaa"},
		map[string]any{"@odata.id": "/redfish/v1/Systems/b", "UUID": "bbbb"},
	}}))
	_, err = f.client(t, func(c *Config) { c.MaxCollectionMembers = 1 }).Systems(t.Context())
	g.Expect(err).To(MatchError(ErrResponseTooLarge))
}

// What a service root advertises decides the query.
func TestLevelsOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    *expandQuery
		want expandLevels
	}{
		{"nothing", nil, expandLevels{}},
		{"only * and ~", &expandQuery{ExpandAll: true, Links: true, Levels: true, MaxLevels: 6}, expandLevels{}},
		{"period without levels", &expandQuery{NoLinks: true}, expandLevels{max: 1}},
		{"levels without a maximum", &expandQuery{NoLinks: true, Levels: true}, expandLevels{max: 1}},
		{"two levels", &expandQuery{NoLinks: true, Levels: true, MaxLevels: 2}, expandLevels{max: 2, withLevels: true}},
		{"more than the client asks", &expandQuery{NoLinks: true, Levels: true, MaxLevels: 9}, expandLevels{max: maxExpandLevels, withLevels: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(levelsOf(tc.q)).To(Equal(tc.want))
		})
	}
}

// A hostile service that expands one storage subsystem into a million bare drive links (16
// bytes each in the body, hundreds of bytes each decoded) is refused before the body is
// decoded, expanded or not, and no drive is read; a failure of the expanded read that is not a
// refusal (a server error) falls back to member by member for that read.
func TestHostileExpansionIsBounded(t *testing.T) {
	g := NewWithT(t)
	const drives = 200_000
	var body strings.Builder
	body.WriteString(`{"Members":[{"@odata.id":"/redfish/v1/Systems/a/Storage/1","Name":"s","Drives":[`)
	for i := range drives {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(`{"@odata.id":""}`)
	}
	body.WriteString(`]}]}`)
	storage := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body.String()))
	}
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET /redfish/v1":                   reply(http.StatusOK, nil, advertisingRoot),
		"GET /redfish/v1/Systems/a":         reply(http.StatusOK, nil, map[string]any{"@odata.id": "/redfish/v1/Systems/a", "Storage": map[string]any{"@odata.id": "/redfish/v1/Systems/a/Storage"}}),
		"GET /redfish/v1/Systems/a/Storage": storage,
	})
	_, err := f.client(t).Storage(t.Context(), "/redfish/v1/Systems/a")
	g.Expect(err).To(MatchError(ErrResponseTooLarge))
	g.Expect(err.Error()).To(ContainSubstring("JSON objects"))
	g.Expect(f.count(http.MethodGet, "/redfish/v1/Systems/a/Storage")).To(Equal(2), "expanded, then plain")
	g.Expect(len(f.only(http.MethodGet))).To(BeNumerically("<=", 4), "service root, system, the two storage reads: no drive is read")

	// A server error of the expanded read: the plain read answers.
	g.Expect(jsonObjects([]byte(`{"a":"{\"}","b":[{},{}]}`))).To(Equal(3))
	f.route("GET /redfish/v1/Systems/a/Storage", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("$expand") {
			writeTestJSON(w, http.StatusInternalServerError, nil, map[string]any{})
			return
		}
		writeTestJSON(w, http.StatusOK, nil, members("/redfish/v1/Systems/a/Storage/1"))
	})
	f.route("GET /redfish/v1/Systems/a/Storage/1", reply(http.StatusOK, nil, map[string]any{"@odata.id": "/redfish/v1/Systems/a/Storage/1", "Name": "s"}))
	got, err := f.client(t).Storage(t.Context(), "/redfish/v1/Systems/a")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(HaveLen(1))
	g.Expect(got[0].Name).To(Equal("s"))
}
