package bench

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

// countedBMC is a Redfish emulator served over plain HTTP on 127.0.0.1 behind a handler that
// counts its requests by method and path shape ("GET /redfish/v1/Systems/{id}"), so a case
// can name the requests it cost per step.
type countedBMC struct {
	*emulator.Emulator
	host string
	port int32
	srv  *http.Server
	done chan struct{}

	mu     sync.Mutex
	counts map[string]int
	total  int
}

func startCountedBMC(opts emulator.Options) (*countedBMC, error) {
	em := emulator.New(opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		_ = l.Close()
		return nil, errors.New("not a TCP listener")
	}
	b := &countedBMC{Emulator: em, host: addr.IP.String(), port: int32(addr.Port), counts: map[string]int{}, done: make(chan struct{})}
	inner := em.Handler()
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := r.Method + " " + pathShape(r.URL.Path)
			b.mu.Lock()
			b.counts[key]++
			b.total++
			b.mu.Unlock()
			inner.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	go func() {
		defer close(b.done)
		_ = b.srv.Serve(l)
	}()
	return b, nil
}

// close stops the server and the emulator.
func (b *countedBMC) close() {
	_ = b.srv.Close()
	<-b.done
	b.Close()
}

// snapshot returns the requests so far, in total and by shape.
func (b *countedBMC) snapshot() (int, map[string]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total, maps.Clone(b.counts)
}

// pathShape replaces the identifiers in a Redfish path (any segment with a digit but the
// version, or with a dash) by {id}.
func pathShape(p string) string {
	segs := strings.Split(strings.TrimRight(p, "/"), "/")
	for i, s := range segs {
		if s != "v1" && strings.ContainsAny(s, "0123456789-") {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

// redfishCount is the requests some BMCs received, in total and by shape.
type redfishCount struct {
	total   int
	byShape map[string]int
}

// countAll sums the snapshots of bmcs.
func countAll(bmcs []*countedBMC) redfishCount {
	c := redfishCount{byShape: map[string]int{}}
	for _, b := range bmcs {
		n, by := b.snapshot()
		c.total += n
		for k, v := range by {
			c.byShape[k] += v
		}
	}
	return c
}

// since is what was counted after before.
func (c redfishCount) since(before redfishCount) redfishCount {
	d := redfishCount{total: c.total - before.total, byShape: map[string]int{}}
	for k, v := range c.byShape {
		if n := v - before.byShape[k]; n > 0 {
			d.byShape[k] = n
		}
	}
	return d
}

// PerServer renders the requests by shape, per server, most first.
func PerServer(by map[string]int, servers int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range by {
		all = append(all, kv{k, v})
	}
	slices.SortFunc(all, func(a, b kv) int {
		if a.v != b.v {
			return b.v - a.v
		}
		return strings.Compare(a.k, b.k)
	})
	parts := make([]string, 0, len(all))
	for _, e := range all {
		parts = append(parts, fmt.Sprintf("%s: %.2f", e.k, float64(e.v)/float64(max(servers, 1))))
	}
	return strings.Join(parts, ", ")
}
