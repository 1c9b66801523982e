package redfish

import (
	"encoding/json"
	"net/http"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

const (
	testSubscriptions = pathEventService + "/Subscriptions"
	testDestination   = "https://operator.example/serverevents/alerts/bmc-1/c2VjcmV0LXRva2VuLXNlY3JldC10b2tlbg"
)

// TestSubscribe: the request the reference sends (without DeliveryRetryPolicy), the URI from
// Location, a duplicate resolved to the existing subscription with the same destination
// and context, and errors that never quote the destination or its token.
func TestSubscribe(t *testing.T) {
	enabled := reply(http.StatusOK, nil, map[string]any{"ServiceEnabled": true, "Subscriptions": map[string]any{"@odata.id": testSubscriptions}})
	duplicate := reply(http.StatusBadRequest, nil, redfishErrorBody("ResourceAlreadyExists", "The subscription to "+testDestination+" exists"))
	for _, tc := range []struct {
		name    string
		routes  map[string]http.HandlerFunc
		want    string
		wantErr error
	}{
		{"created", map[string]http.HandlerFunc{"GET " + pathEventService: enabled,
			"POST " + testSubscriptions: reply(http.StatusCreated, map[string]string{"Location": testSubscriptions + "/3"}, nil)}, testSubscriptions + "/3", nil},
		{"created, named in the body", map[string]http.HandlerFunc{"GET " + pathEventService: enabled,
			"POST " + testSubscriptions: reply(http.StatusCreated, nil, map[string]any{"@odata.id": testSubscriptions + "/4"})}, testSubscriptions + "/4", nil},
		{"duplicate of ours", map[string]http.HandlerFunc{"GET " + pathEventService: enabled, "POST " + testSubscriptions: duplicate,
			"GET " + testSubscriptions:        reply(http.StatusOK, nil, members(testSubscriptions+"/1", testSubscriptions+"/2")),
			"GET " + testSubscriptions + "/1": reply(http.StatusOK, nil, map[string]any{"Destination": testDestination, "Context": "other"}),
			"GET " + testSubscriptions + "/2": reply(http.StatusOK, nil, map[string]any{"Destination": testDestination, "Context": "metal-operator"}),
		}, testSubscriptions + "/2", nil},
		{"duplicate of someone else's", map[string]http.HandlerFunc{"GET " + pathEventService: enabled, "POST " + testSubscriptions: duplicate,
			"GET " + testSubscriptions:        reply(http.StatusOK, nil, members(testSubscriptions+"/1")),
			"GET " + testSubscriptions + "/1": reply(http.StatusOK, nil, map[string]any{"Destination": testDestination, "Context": "other"}),
		}, "", bmc.ErrBadRequest},
		{"disabled", map[string]http.HandlerFunc{"GET " + pathEventService: reply(http.StatusOK, nil, map[string]any{"ServiceEnabled": false})}, "", bmc.ErrNotSupported},
		{"no event service", map[string]http.HandlerFunc{}, "", bmc.ErrNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newFakeBMC(t, tc.routes)
			uri, err := f.client(t).Subscribe(t.Context(), testDestination, "metal-operator", bmc.EventFormatEvent)
			if tc.wantErr != nil {
				g.Expect(err).To(MatchError(tc.wantErr))
				g.Expect(err.Error()).NotTo(ContainSubstring("c2VjcmV0LXRva2Vu"), "the token")
				g.Expect(err.Error()).NotTo(ContainSubstring("operator.example"), "the destination")
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(uri).To(Equal(tc.want))
			posts := f.only(http.MethodPost)
			g.Expect(posts).To(HaveLen(1))
			var body map[string]any
			g.Expect(json.Unmarshal([]byte(posts[0].Body), &body)).To(Succeed())
			g.Expect(body).To(Equal(map[string]any{"Destination": testDestination, "Context": "metal-operator",
				"EventFormatType": "Event", "Protocol": "Redfish"}))
		})
	}
}

// TestUnsubscribe: 404 is success; other errors are not.
func TestUnsubscribe(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"DELETE " + testSubscriptions + "/1": reply(http.StatusNoContent, nil, nil),
		"DELETE " + testSubscriptions + "/3": reply(http.StatusServiceUnavailable, nil, nil),
	})
	c := f.client(t)
	g.Expect(c.Unsubscribe(t.Context(), testSubscriptions+"/1")).To(Succeed())
	g.Expect(c.Unsubscribe(t.Context(), testSubscriptions+"/2")).To(Succeed(), "gone")
	g.Expect(c.Unsubscribe(t.Context(), testSubscriptions+"/3")).To(MatchError(bmc.ErrUnavailable))
	g.Expect(c.Unsubscribe(t.Context(), "")).To(Succeed())
}
