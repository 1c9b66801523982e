package emulator_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/bmc/redfish"
)

// countingServer serves an emulator over HTTP and records the request URIs it received.
type countingServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	uris []string
}

func startCounting(t *testing.T, opts emulator.Options) (*emulator.Emulator, *countingServer) {
	t.Helper()
	e := emulator.New(opts)
	t.Cleanup(e.Close)
	cs := &countingServer{}
	inner := e.Handler()
	cs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.mu.Lock()
		cs.uris = append(cs.uris, r.URL.RequestURI())
		cs.mu.Unlock()
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(cs.srv.Close)
	return e, cs
}

// take returns the URIs recorded so far and forgets them.
func (cs *countingServer) take() []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := cs.uris
	cs.uris = nil
	return out
}

func (cs *countingServer) client(t *testing.T) *redfish.Client {
	t.Helper()
	c, err := redfish.New(redfish.Config{Endpoint: cs.srv.URL, Username: emulator.DefaultUsername,
		Password: emulator.DefaultPassword, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// inventory is everything the server controller reads of a system.
type inventory struct {
	Systems    []bmc.System
	Info       bmc.SystemInfo
	Processors []bmc.Processor
	Memory     []bmc.Memory
	NICs       []bmc.NIC
	Storage    []bmc.Storage
}

func readInventory(ctx context.Context, g Gomega, c *redfish.Client) inventory {
	var inv inventory
	var err error
	inv.Systems, err = c.Systems(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	uri := inv.Systems[0].URI
	inv.Info, err = c.SystemInfo(ctx, uri)
	g.Expect(err).NotTo(HaveOccurred())
	inv.Processors, err = c.Processors(ctx, uri)
	g.Expect(err).NotTo(HaveOccurred())
	inv.Memory, err = c.Memory(ctx, uri)
	g.Expect(err).NotTo(HaveOccurred())
	inv.NICs, err = c.NICs(ctx, uri)
	g.Expect(err).NotTo(HaveOccurred())
	inv.Storage, err = c.Storage(ctx, uri)
	g.Expect(err).NotTo(HaveOccurred())
	return inv
}

// The inventory reads the same with and without $expand; with it, each collection costs one
// request. A BMC that does not advertise it, or that refuses it (501), is read member by
// member, and what the address supports is learnt once: a later client of the same address
// neither reads the service root again nor sends a refused query again.
func TestInventoryWithAndWithoutExpand(t *testing.T) {
	opts := emulator.Options{Systems: 3, UUIDSeed: "expand"}
	var want inventory
	for _, tc := range []struct {
		expand emulator.Expand
		// first and later are the requests of the first client of the address and of a
		// later one.
		first, later int
	}{
		// Root; Systems; the system; processors, memory, interfaces, storage: one each.
		{emulator.ExpandLevels, 7, 6},
		// Root; Systems and 3 systems; the system; processors 1+2, memory 1+5 (one slot
		// empty), interfaces 1+1, storage 1+1, 2 drives, volumes 1+1.
		{emulator.ExpandNone, 23, 22},
		// As without, plus the refused query of Systems, once.
		{emulator.ExpandRefused, 24, 22},
	} {
		t.Run("expand="+string(tc.expand), func(t *testing.T) {
			g := NewWithT(t)
			o := opts
			o.Expand = tc.expand
			_, cs := startCounting(t, o)

			inv := readInventory(t.Context(), g, cs.client(t))
			first := cs.take()
			g.Expect(first).To(HaveLen(tc.first), "%v", first)
			g.Expect(readInventory(t.Context(), g, cs.client(t))).To(Equal(inv))
			later := cs.take()
			g.Expect(later).To(HaveLen(tc.later), "%v", later)
			g.Expect(later).NotTo(ContainElement("/redfish/v1"), "the service root is read once per address")
			if tc.expand != emulator.ExpandLevels {
				g.Expect(strings.Join(later, " ")).NotTo(ContainSubstring("$expand"))
			}

			g.Expect(inv.Systems).To(HaveLen(3))
			g.Expect(inv.Processors).To(HaveLen(2))
			g.Expect(inv.Memory).NotTo(BeEmpty())
			g.Expect(inv.NICs).To(HaveLen(1))
			g.Expect(inv.Storage).To(HaveLen(1))
			g.Expect(inv.Storage[0].Drives).To(HaveLen(2))
			g.Expect(inv.Storage[0].Volumes).To(HaveLen(1))
			if want.Systems == nil {
				want = inv
			}
			g.Expect(inv).To(Equal(want), "the same inventory whatever the BMC supports")
		})
	}
}

// The emulator expands "." with $levels, refuses what it does not advertise, and leaves the
// Links property alone.
func TestEmulatorExpandQuery(t *testing.T) {
	g := NewWithT(t)
	e := emulator.New(emulator.Options{Systems: 1})
	t.Cleanup(e.Close)
	h := e.Handler()
	for query, code := range map[string]int{
		"$expand=.": http.StatusOK, "$expand=.($levels=3)": http.StatusOK,
		"$expand=.($levels=9)": http.StatusBadRequest, "$expand=bogus": http.StatusBadRequest,
		"$expand=*": http.StatusNotImplemented, "$expand=~": http.StatusNotImplemented,
	} {
		g.Expect(call(t, h, http.MethodGet, "/redfish/v1/Systems?"+query, "", nil, true).status).To(Equal(code), query)
	}

	sys := call(t, h, http.MethodGet, "/redfish/v1/Systems?$expand=.($levels=2)", "", nil, true).body["Members"].([]any)[0].(map[string]any)
	g.Expect(sys).To(HaveKey("UUID"), "a member in place")
	g.Expect(sys["Processors"]).To(HaveKey("Members"), "the second level in place")
	g.Expect(sys["Processors"].(map[string]any)["Members"].([]any)[0]).To(HaveLen(1), "not a third level")
	g.Expect(sys["Links"].(map[string]any)["ManagedBy"].([]any)[0]).To(HaveLen(1), "Links stay links")
}
