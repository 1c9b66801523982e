package image

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// TestAllowedRegistries: the default registry is always allowed; with patterns only the
// registries they match are; internal addresses are refused unless listed; and a refused
// registry is never asked.
func TestAllowedRegistries(t *testing.T) {
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked.Add(1)
		http.Error(w, "no", http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	loopback := strings.TrimPrefix(srv.URL, "http://")

	for _, tc := range []struct {
		name            string
		defaultRegistry string
		patterns        []string
		ref             string
		allowed         bool
	}{
		{"loopback, not listed", "", nil, loopback + "/os/x:1", false},
		{"IPv6 loopback, not listed", "", nil, "[::1]:5000/os/x:1", false},
		{"localhost, not listed", "", nil, "localhost:5000/os/x:1", false},
		{"metadata service", "", nil, "169.254.169.254/os/x:1", false},
		{"Azure wire server", "", nil, "168.63.129.16/os/x:1", false},
		{"metadata service, other patterns", "", []string{"*.example.com"}, "169.254.169.254/os/x:1", false},
		{"not matching a pattern", "", []string{"*.example.com"}, "registry.example.org/os/x:1", false},
		{"loopback default registry", loopback, nil, "os/x:1", true},
		{"loopback default registry, other patterns", loopback, []string{"*.example.com"}, loopback + "/os/x:1", true},
		{"loopback listed with port", "", []string{"127.0.0.1:*"}, loopback + "/os/x:1", true},
		{"loopback listed without port", "", []string{"127.0.0.1"}, loopback + "/os/x:1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r, err := NewResolver(Options{DefaultRegistry: tc.defaultRegistry, AllowedRegistries: tc.patterns})
			g.Expect(err).NotTo(HaveOccurred())
			before := asked.Load()
			_, err = r.Resolve(t.Context(), tc.ref)
			g.Expect(err).To(HaveOccurred()) // the stub has no images
			if tc.allowed {
				g.Expect(Reason(err)).To(Equal(metalv1alpha1.ReasonImageNotFound), "%v", err)
				g.Expect(asked.Load()).To(BeNumerically(">", before))
				return
			}
			g.Expect(Reason(err)).To(Equal(metalv1alpha1.ReasonRegistryNotAllowed), "%v", err)
			g.Expect(Message(err)).To(ContainSubstring("not allowed"))
			g.Expect(asked.Load()).To(Equal(before))
		})
	}
}

// TestGuardedDialRefusesInternalAddresses: a registry name that resolves to an internal
// address (or a redirect to one) is refused when dialled, unless listed.
func TestGuardedDialRefusesInternalAddresses(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]

	a, err := newAllowList("", nil)
	g.Expect(err).NotTo(HaveOccurred())
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://localhost:"+port+"/v2/", nil)
	_, err = a.transport().RoundTrip(req)
	g.Expect(err).To(MatchError(errInternalAddress))
	g.Expect(Reason(err)).To(Equal(metalv1alpha1.ReasonRegistryNotAllowed))

	listed, err := newAllowList("", []string{"localhost"})
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := listed.transport().RoundTrip(req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.Body.Close()).To(Succeed())
}

func TestAllowListRejectsBadPatterns(t *testing.T) {
	_, err := NewResolver(Options{AllowedRegistries: []string{"[bad"}})
	NewWithT(t).Expect(err).To(MatchError(ContainSubstring("invalid allowed registry pattern")))
}

// TestMessageQuotesNoResponseBody: what a tenant reads gives the status code, never what the
// registry sent back.
func TestMessageQuotesNoResponseBody(t *testing.T) {
	g := NewWithT(t)
	const marker = "registry-body-marker"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, marker, http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	r, err := NewResolver(Options{DefaultRegistry: host})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = r.Resolve(t.Context(), "os/x:1")
	g.Expect(err).To(MatchError(ContainSubstring(marker)), "the log keeps the detail")
	g.Expect(Message(err)).To(ContainSubstring("HTTP 400"))
	g.Expect(Message(err)).NotTo(ContainSubstring(marker))
}
