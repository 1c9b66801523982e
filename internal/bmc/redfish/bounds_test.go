package redfish

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
)

// TestResponseBodyIsBounded: a BMC answering with a body past the bound costs at most one
// byte more than the bound, and the call fails instead of decoding a truncated body.
func TestResponseBodyIsBounded(t *testing.T) {
	g := NewWithT(t)
	const limit = 1 << 10
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		chunk := []byte(`{"Id":"1","Name":"` + strings.Repeat("x", 256))
		for range 64 {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)

	c, err := New(Config{Endpoint: srv.URL, MaxResponseBytes: limit})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = c.SystemInfo(t.Context(), "/redfish/v1/Systems/1")
	g.Expect(err).To(MatchError(ErrResponseTooLarge))
	g.Expect(err.Error()).NotTo(ContainSubstring("xxxx"))

	// The default bound is 4 MiB.
	d, err := New(Config{Endpoint: srv.URL})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d.maxBody).To(BeEquivalentTo(4 << 20))
	g.Expect(d.maxMembers).To(Equal(4096))
}

// TestCollectionMembersAreBounded: a collection with more members than the bound, in one
// page or over several, fails before any member is read.
func TestCollectionMembersAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name         string
		pages, per   int
		limit        int
		wantTooLarge bool
	}{
		{"one page within", 1, 8, 8, false},
		{"one page past", 1, 9, 8, true},
		{"pages past", 3, 4, 10, true},
		{"pages within", 3, 4, 12, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			var memberGets atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				page, _ := strconv.Atoi(r.URL.Query().Get("page")) // absent on the first page: 0
				if strings.HasPrefix(r.URL.Path, "/redfish/v1/Systems/") {
					memberGets.Add(1)
					_ = json.NewEncoder(w).Encode(map[string]any{"Id": "x", "UUID": "u"})
					return
				}
				var members []link
				for i := range tc.per {
					members = append(members, link{ODataID: fmt.Sprintf("/redfish/v1/Systems/%d", page*tc.per+i)})
				}
				col := map[string]any{"Members": members}
				if page+1 < tc.pages {
					col["Members@odata.nextLink"] = fmt.Sprintf("/redfish/v1/Systems?page=%d", page+1)
				}
				_ = json.NewEncoder(w).Encode(col)
			}))
			t.Cleanup(srv.Close)
			c, err := New(Config{Endpoint: srv.URL, MaxCollectionMembers: tc.limit})
			g.Expect(err).NotTo(HaveOccurred())
			_, err = c.listMembers(context.Background(), pathSystems)
			if !tc.wantTooLarge {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ErrResponseTooLarge))
			_, err = c.Systems(t.Context())
			g.Expect(err).To(MatchError(ErrResponseTooLarge))
			g.Expect(memberGets.Load()).To(BeZero())
		})
	}
}
