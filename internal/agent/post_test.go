package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

const testCredential = "s3cret-credential"

// server answers the i-th request (from 0) with codes[i], or the last code after them, and
// records what it got.
type server struct {
	codes    []int
	body     string
	requests atomic.Int32
	auth     atomic.Value
	got      atomic.Value
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(s.requests.Add(1)) - 1
	s.auth.Store(r.Header.Get("Authorization"))
	var d report.Discovery
	if err := json.NewDecoder(r.Body).Decode(&d); err == nil && r.URL.Path == report.DiscoveryPath && r.Method == http.MethodPost {
		s.got.Store(d)
	}
	w.WriteHeader(s.codes[min(i, len(s.codes)-1)])
	_, _ = w.Write([]byte(s.body))
}

func TestPost(t *testing.T) {
	cases := []struct {
		name         string
		codes        []int
		body         string
		wantRequests int32
		wantCode     int
	}{
		{name: "accepted at once", codes: []int{http.StatusOK}, wantRequests: 1},
		{name: "503 twice, then accepted", codes: []int{503, 503, http.StatusNoContent}, wantRequests: 3},
		{name: "429 is retried", codes: []int{429, 200}, wantRequests: 2},
		{name: "403 is final", codes: []int{http.StatusForbidden}, wantRequests: 1, wantCode: 403},
		{name: "400 is final", codes: []int{http.StatusBadRequest}, wantRequests: 1, wantCode: 400},
		{name: "always 500: gives up after the bounded attempts", codes: []int{500}, wantRequests: PostAttempts, wantCode: 500},
		{name: "a long refusal body is cut", codes: []int{403}, body: strings.Repeat("x", 10000) + "TAIL", wantRequests: 1, wantCode: 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			s := &server{codes: tc.codes, body: tc.body}
			hs := httptest.NewServer(s)
			defer hs.Close()
			sent := report.Discovery{SystemUUID: "u-1", Vendor: "v"}

			err := post(t.Context(), hs.Client(), hs.URL+"/", testCredential, report.DiscoveryPath, sent, time.Millisecond)
			g.Expect(s.requests.Load()).To(Equal(tc.wantRequests))
			g.Expect(s.auth.Load()).To(Equal("Bearer " + testCredential))
			g.Expect(s.got.Load()).To(Equal(sent))
			if tc.wantCode == 0 {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			var status *StatusError
			g.Expect(errors.As(err, &status)).To(BeTrue(), "%v", err)
			g.Expect(status.Code).To(Equal(tc.wantCode))
			g.Expect(err.Error()).To(ContainSubstring("status %d", tc.wantCode))
			g.Expect(len(status.Body)).To(BeNumerically("<=", maxErrorBody))
			g.Expect(err.Error()).NotTo(ContainSubstring("TAIL"))
			g.Expect(err.Error()).NotTo(ContainSubstring(testCredential))
		})
	}
}

func TestPostConnectionErrorsAreRetried(t *testing.T) {
	g := NewWithT(t)
	var dials atomic.Int32
	client := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		dials.Add(1)
		return nil, syscall.ECONNREFUSED
	}}}
	err := post(t.Context(), client, "http://boot.invalid", testCredential, report.WipePath, report.Wipe{}, time.Millisecond)
	g.Expect(err).To(MatchError(syscall.ECONNREFUSED))
	g.Expect(err.Error()).NotTo(ContainSubstring(testCredential))
	g.Expect(dials.Load()).To(Equal(int32(PostAttempts)))
}

func TestPostRefusesOversizedBody(t *testing.T) {
	g := NewWithT(t)
	s := &server{codes: []int{200}}
	hs := httptest.NewServer(s)
	defer hs.Close()
	err := Post(t.Context(), hs.Client(), hs.URL, testCredential, report.DiscoveryPath, strings.Repeat("x", report.MaxBytes))
	g.Expect(err).To(MatchError(ContainSubstring("at most")))
	g.Expect(s.requests.Load()).To(BeZero())
}

func TestNewClientBindsSource(t *testing.T) {
	g := NewWithT(t)
	var remote atomic.Value
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remote.Store(r.RemoteAddr)
	}))
	defer hs.Close()
	client, err := NewClient("127.0.0.2")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(Post(t.Context(), client, hs.URL, testCredential, report.DiscoveryPath, report.Discovery{})).To(Succeed())
	g.Expect(remote.Load()).To(HavePrefix("127.0.0.2:"))

	_, err = NewClient("not-an-ip")
	g.Expect(err).To(HaveOccurred())
}
