package binding

import (
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/cachelag"
	"github.com/metalfleet/metal-operator/internal/index"
)

// Pool is the set of free servers claims pick from, kept up to date from server events.
//
// Free servers are bucketed by each of their label pairs ("key=value") and all together, so
// a claim whose selector has matchLabels walks only the smallest bucket it could match, not
// the fleet. A claim starts its walk at a position derived from its uid, so that a burst of
// claims spreads over the candidates instead of all fighting for the first one; the walk is
// deterministic for a given pool. The pool is as stale as the informer that feeds it: the
// optimistic lock on the server patch, not the pool, is what makes a binding safe.
//
// Two things keep the workers of one process from colliding on that lock: a picked server
// is held (no other Pick returns it) until the picker says Done, and the pool never goes
// back to an older version of a server than one it saw or wrote (resource versions are
// compared), so a late informer event cannot put back a server this process just took.
type Pool struct {
	mu      sync.Mutex
	servers map[string]*poolEntry
	all     bucket
	byLabel map[string]*bucket
	// held are the servers picked and not yet Done.
	held map[string]bool
	// versions is the newest resourceVersion seen or written per server.
	versions *cachelag.Versions[string]
}

// Candidate is a free server as the pool knows it.
type Candidate struct {
	Name   string
	Labels map[string]string
	Taints []metalv1alpha1.Taint
}

type poolEntry struct {
	Candidate
	keys []string
}

// bucket is a set of names with O(1) insert, delete and indexed access.
type bucket struct {
	names []string
	pos   map[string]int
}

func (b *bucket) add(name string) {
	if b.pos == nil {
		b.pos = map[string]int{}
	}
	if _, ok := b.pos[name]; ok {
		return
	}
	b.pos[name] = len(b.names)
	b.names = append(b.names, name)
}

func (b *bucket) remove(name string) {
	i, ok := b.pos[name]
	if !ok {
		return
	}
	last := len(b.names) - 1
	b.names[i] = b.names[last]
	b.pos[b.names[i]] = i
	b.names = b.names[:last]
	delete(b.pos, name)
}

// NewPool returns an empty pool.
func NewPool() *Pool {
	return &Pool{servers: map[string]*poolEntry{}, byLabel: map[string]*bucket{},
		held: map[string]bool{}, versions: cachelag.NewVersions[string](cachelag.Options{Retention: versionRetention})}
}

// Observe records the current state of a server: added when free, removed otherwise. A
// version older than one the pool already knows is ignored.
func (p *Pool) Observe(s *metalv1alpha1.Server) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.versions.Advance(s.Name, s.ResourceVersion) {
		return
	}
	p.removeLocked(s.Name)
	if !IsFree(s) {
		return
	}
	e := &poolEntry{Candidate: Candidate{Name: s.Name, Labels: s.Labels, Taints: s.Spec.Taints}}
	for k, v := range s.Labels {
		key := index.LabelKey(k, v)
		e.keys = append(e.keys, key)
		b := p.byLabel[key]
		if b == nil {
			b = &bucket{}
			p.byLabel[key] = b
		}
		b.add(s.Name)
	}
	p.all.add(s.Name)
	p.servers[s.Name] = e
}

// Forget drops a server that was deleted.
func (p *Pool) Forget(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(name)
	p.versions.Forget(name)
}

// Drop takes a server out of the pool until its next event brings it back: a write to it
// failed on a stale version, so the cache is behind.
func (p *Pool) Drop(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(name)
}

// Done releases a server returned by Pick: other claims may pick it again if it is still
// in the pool. Every Pick that returned a server must be followed by one Done.
func (p *Pool) Done(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.held, name)
}

// Taken records that this process bound the server with a write that left it at
// resourceVersion rv: it leaves the pool, and events older than rv do not bring it back.
func (p *Pool) Taken(name, rv string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(name)
	p.versions.Expect(name, rv)
}

func (p *Pool) removeLocked(name string) {
	e, ok := p.servers[name]
	if !ok {
		return
	}
	for _, key := range e.keys {
		if b := p.byLabel[key]; b != nil {
			b.remove(name)
			if len(b.names) == 0 {
				delete(p.byLabel, key)
			}
		}
	}
	p.all.remove(name)
	delete(p.servers, name)
}

// Pick returns a free server matching the selector (nil matches all) for which fits
// returns true, starting the walk at a position derived from seed, and holds it: no other
// Pick returns it until the caller says Done. matchLabels, the selector's plain label
// pairs, narrows the walk to the smallest bucket. fits is called with the pool locked and
// must be quick and must not call the pool.
//
// When it finds none, busy says whether some matching server was passed over because
// another picker holds it: the caller should look again soon rather than report that
// nothing matches.
func (p *Pool) Pick(sel labels.Selector, matchLabels map[string]string, seed string, fits func(Candidate) bool) (c Candidate, ok, busy bool) {
	return p.PickBest(sel, matchLabels, seed, fits, nil)
}

// PickBest is Pick with a preference: of the servers Pick would consider, it holds and
// returns the one with the lowest score (the first of equals in Pick's walk order), and it
// stops walking at a score of 0, the best there is. A nil score takes the first, as Pick.
// score is called with the pool locked, as fits.
func (p *Pool) PickBest(sel labels.Selector, matchLabels map[string]string, seed string, fits func(Candidate) bool, score func(Candidate) int) (c Candidate, ok, busy bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.bucketLocked(matchLabels)
	n := len(b.names)
	if n == 0 {
		return Candidate{}, false, false
	}
	var best *poolEntry
	bestScore := 0
	start := int(hash(seed) % uint64(n))
	for i := range n {
		e := p.servers[b.names[(start+i)%n]]
		if sel != nil && !sel.Matches(labels.Set(e.Labels)) {
			continue
		}
		if fits != nil && !fits(e.Candidate) {
			continue
		}
		if p.held[e.Name] {
			busy = true
			continue
		}
		sc := 0
		if score != nil {
			sc = score(e.Candidate)
		}
		if best == nil || sc < bestScore {
			best, bestScore = e, sc
		}
		if sc <= 0 {
			break
		}
	}
	if best == nil {
		return Candidate{}, false, busy
	}
	p.held[best.Name] = true
	return best.Candidate, true, false
}

// Free returns the free servers matching the selector for which fits returns true and that
// no picker holds, sorted by name: what a set plans from. It walks the smallest bucket of
// matchLabels, as Pick.
func (p *Pool) Free(sel labels.Selector, matchLabels map[string]string, fits func(Candidate) bool) []Candidate {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.bucketLocked(matchLabels)
	var out []Candidate
	for _, name := range b.names {
		e := p.servers[name]
		if p.held[name] || (sel != nil && !sel.Matches(labels.Set(e.Labels))) || (fits != nil && !fits(e.Candidate)) {
			continue
		}
		out = append(out, e.Candidate)
	}
	slices.SortFunc(out, func(a, b Candidate) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// bucketLocked is the smallest bucket a selector with these matchLabels can match in: the
// servers carrying one of its pairs, or all (an empty bucket when a pair has no server).
func (p *Pool) bucketLocked(matchLabels map[string]string) *bucket {
	b := &p.all
	for k, v := range matchLabels {
		lb := p.byLabel[index.LabelKey(k, v)]
		if lb == nil {
			return &bucket{}
		}
		if len(lb.names) < len(b.names) {
			b = lb
		}
	}
	return b
}

// Hold holds servers for a caller that decided on them outside Pick (a set's plan): no Pick
// or Free returns them until the caller says Done for each.
func (p *Pool) Hold(names []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range names {
		p.held[n] = true
	}
}

// versionRetention is how long the pool remembers a server's newest version after its last
// event: far longer than the informer can lag.
const versionRetention = 10 * time.Minute

func hash(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}
