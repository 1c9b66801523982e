package boot

import (
	"net/http"
	"net/http/httptest"
	"testing"

	. "github.com/onsi/gomega"
)

// A source address over its rate gets 429 before the handler runs; another address is not
// affected, and the limit off lets everything through.
func TestClientLimits(t *testing.T) {
	g := NewWithT(t)
	calls := 0
	h := newClientLimits(1, 3).wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { calls++ }))
	get := func(from string) int {
		r := httptest.NewRequest(http.MethodGet, "/ipxe/x", nil)
		r.RemoteAddr = from + ":4242"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	codes := map[int]int{}
	for range 10 {
		codes[get("192.0.2.1")]++
	}
	g.Expect(codes[http.StatusOK]).To(BeNumerically(">=", 3), "the burst passes")
	g.Expect(codes[http.StatusOK]).To(BeNumerically("<=", 4), "at most the burst and a refill")
	g.Expect(codes[http.StatusTooManyRequests]).To(BeNumerically(">=", 6))
	g.Expect(calls).To(Equal(codes[http.StatusOK]), "a refused request does no work")
	g.Expect(get("192.0.2.2")).To(Equal(http.StatusOK), "another address has its own budget")

	off := newClientLimits(0, 0).wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	for range 100 {
		r := httptest.NewRequest(http.MethodGet, "/ipxe/x", nil)
		w := httptest.NewRecorder()
		off.ServeHTTP(w, r)
		g.Expect(w.Code).To(Equal(http.StatusOK))
	}
}
