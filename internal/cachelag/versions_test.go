package cachelag_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/cachelag"
)

// TestCompare: how each use orders a version against the one recorded. Observe trusts a
// copy that is at the expected version or newer (and drops the expectation), and not an
// older one or a different one it cannot order. Advance refuses only a version known to be
// older, and follows one it cannot order.
func TestCompare(t *testing.T) {
	cases := []struct {
		name     string
		recorded string // "" for none
		next     string
		trusted  bool
		advanced bool
	}{
		{"nothing recorded", "", "5", true, true},
		{"equal", "10", "10", true, true},
		{"newer", "10", "11", true, true},
		{"older", "10", "9", false, false},
		{"newer, compared as numbers", "99", "100", true, true},
		{"older, compared as numbers", "100", "99", false, false},
		{"equal and not a number", "x", "x", true, true},
		{"next not a number", "10", "x", false, true},
		{"recorded not a number", "x", "11", false, true},
		{"neither a number", "x", "w", false, true},
		{"next empty", "10", "", false, true},
		{"next with a leading zero", "10", "010", false, true},
		{"next zero", "10", "0", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			expected := cachelag.NewVersions[string](cachelag.Options{})
			seen := cachelag.NewVersions[string](cachelag.Options{})
			if tc.recorded != "" {
				expected.Expect("k", tc.recorded)
				seen.Advance("k", tc.recorded)
			}

			trusted, _ := expected.Observe("k", tc.next)
			g.Expect(trusted).To(Equal(tc.trusted), "Observe")
			if trusted {
				g.Expect(expected.Len()).To(BeZero(), "a trusted copy drops the expectation")
			} else {
				g.Expect(expected.Len()).To(Equal(1), "the expectation waits for the cache")
			}

			g.Expect(seen.Advance("k", tc.next)).To(Equal(tc.advanced), "Advance")
			want := tc.next
			if !tc.advanced {
				want = tc.recorded
			}
			g.Expect(recorded(seen, "k")).To(Equal(want))
		})
	}
}

// recorded finds the version Versions holds for key: Observe trusts it and nothing older.
// It drops the entry, so it is the last call of a test case.
func recorded(v *cachelag.Versions[string], key string) string {
	for _, rv := range []string{"5", "9", "10", "11", "99", "100", "", "0", "010", "w", "x"} {
		if trusted, _ := v.Observe(key, rv); trusted {
			return rv
		}
	}
	return "none"
}

// TestObserveWaiting: an untrusted copy says how long ago the expectation was recorded; an
// older Expect does not renew it, a newer one does, and Forget drops it.
func TestObserveWaiting(t *testing.T) {
	g := NewWithT(t)
	clock := newFakeClock()
	v := cachelag.NewVersions[string](cachelag.Options{Now: clock.Now})

	v.Expect("ns/a", "10")
	clock.Step(1500 * time.Millisecond)
	trusted, waiting := v.Observe("ns/a", "9")
	g.Expect(trusted).To(BeFalse())
	g.Expect(waiting).To(Equal(1500 * time.Millisecond))

	v.Expect("ns/a", "8")
	clock.Step(500 * time.Millisecond)
	_, waiting = v.Observe("ns/a", "9")
	g.Expect(waiting).To(Equal(2*time.Second), "an older version does not replace the expectation")

	v.Expect("ns/a", "12")
	clock.Step(100 * time.Millisecond)
	trusted, waiting = v.Observe("ns/a", "11")
	g.Expect(trusted).To(BeFalse(), "12 is expected now")
	g.Expect(waiting).To(Equal(100 * time.Millisecond))

	v.Forget("ns/a")
	trusted, waiting = v.Observe("ns/a", "1")
	g.Expect(trusted).To(BeTrue())
	g.Expect(waiting).To(BeZero())
}

// TestObserveExpiry: an expectation the cache never showed is given up after the
// retention: the copy is then trusted.
func TestObserveExpiry(t *testing.T) {
	g := NewWithT(t)
	clock := newFakeClock()
	v := cachelag.NewVersions[string](cachelag.Options{Retention: time.Minute, Now: clock.Now})

	v.Expect("ns/a", "10")
	clock.Step(time.Minute)
	trusted, waiting := v.Observe("ns/a", "9")
	g.Expect(trusted).To(BeFalse())
	g.Expect(waiting).To(Equal(time.Minute))

	clock.Step(time.Nanosecond)
	trusted, _ = v.Observe("ns/a", "9")
	g.Expect(trusted).To(BeTrue())
	g.Expect(v.Len()).To(BeZero())
}

// TestAdvanceAfterWrite: the pool's use. A late event older than the controller's own write
// is refused; events from then on are followed; Forget starts the key afresh.
func TestAdvanceAfterWrite(t *testing.T) {
	g := NewWithT(t)
	v := cachelag.NewVersions[string](cachelag.Options{})

	g.Expect(v.Advance("server-a", "3")).To(BeTrue())
	v.Expect("server-a", "7") // the binding write
	g.Expect(v.Advance("server-a", "5")).To(BeFalse(), "a late event from before the write")
	g.Expect(v.Advance("server-a", "7")).To(BeTrue(), "the write's own event")
	g.Expect(v.Advance("server-a", "8")).To(BeTrue())

	v.Advance("server-b", "9") // an event newer than the write arrived first
	v.Expect("server-b", "8")
	g.Expect(v.Advance("server-b", "8")).To(BeFalse(), "the newer event is kept")

	v.Forget("server-a")
	g.Expect(v.Advance("server-a", "1")).To(BeTrue(), "a server created again under the name")
}

// TestVersionsLimit: past the limit the key written least recently is dropped, and its
// next copy is trusted as though nothing had been written.
func TestVersionsLimit(t *testing.T) {
	g := NewWithT(t)
	clock := newFakeClock()
	v := cachelag.NewVersions[int](cachelag.Options{Limit: 2, Now: clock.Now})
	for k := range 3 {
		v.Expect(k, "10")
		clock.Step(time.Millisecond)
	}
	g.Expect(v.Len()).To(Equal(2))
	trusted, _ := v.Observe(0, "9")
	g.Expect(trusted).To(BeTrue(), "key 0 was dropped")
	trusted, _ = v.Observe(1, "9")
	g.Expect(trusted).To(BeFalse())
}

// TestVersionsConcurrentUse: writers advancing shared keys (run with -race) leave each key
// at the newest version any of them wrote.
func TestVersionsConcurrentUse(t *testing.T) {
	g := NewWithT(t)
	v := cachelag.NewVersions[int](cachelag.Options{})
	const keys, writers, versions = 10, 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range versions {
				rv := strconv.Itoa(1 + i*writers + w)
				v.Advance(i%keys, rv)
				v.Observe(keys+i%keys, rv)
				v.Expect(keys+i%keys, rv)
			}
		})
	}
	wg.Wait()
	for k := range keys {
		// The newest version written to key k, by any writer.
		newest := 0
		for i := range versions {
			if i%keys == k {
				newest = max(newest, 1+i*writers+writers-1)
			}
		}
		g.Expect(v.Advance(k, strconv.Itoa(newest-1))).To(BeFalse(), "key %d", k)
		g.Expect(v.Advance(k, strconv.Itoa(newest))).To(BeTrue(), "key %d", k)
	}
	g.Expect(v.Len()).To(BeNumerically(">=", keys), "Observe drops only the expectations")
	g.Expect(v.Len()).To(BeNumerically("<=", 2*keys))
}
