package cachelag_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/cachelag"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestStoreGet: a value is returned with its age; writing it again renews the age; Delete
// drops it.
func TestStoreGet(t *testing.T) {
	g := NewWithT(t)
	clock := newFakeClock()
	s := cachelag.NewStore[string, string](cachelag.Options{Now: clock.Now})

	_, age, ok := s.Get("claim")
	g.Expect(ok).To(BeFalse())
	g.Expect(age).To(BeZero())

	s.Set("claim", "server-a")
	clock.Step(3 * time.Second)
	val, age, ok := s.Get("claim")
	g.Expect(ok).To(BeTrue())
	g.Expect(val).To(Equal("server-a"))
	g.Expect(age).To(Equal(3 * time.Second))

	s.Set("claim", "server-b")
	clock.Step(time.Second)
	val, age, _ = s.Get("claim")
	g.Expect(val).To(Equal("server-b"))
	g.Expect(age).To(Equal(time.Second), "a write renews the age")

	s.Delete("claim")
	_, _, ok = s.Get("claim")
	g.Expect(ok).To(BeFalse())
	g.Expect(s.Len()).To(BeZero())
}

// TestStoreExpiry: an entry is kept for the retention after its last write and dropped
// (not only hidden) after it.
func TestStoreExpiry(t *testing.T) {
	g := NewWithT(t)
	clock := newFakeClock()
	s := cachelag.NewStore[string, int](cachelag.Options{Retention: time.Minute, Now: clock.Now})

	s.Set("a", 1)
	clock.Step(30 * time.Second)
	s.Set("b", 2)
	clock.Step(30 * time.Second)
	_, age, ok := s.Get("a")
	g.Expect(ok).To(BeTrue(), "kept for exactly the retention")
	g.Expect(age).To(Equal(time.Minute))

	clock.Step(time.Nanosecond)
	_, _, ok = s.Get("a")
	g.Expect(ok).To(BeFalse(), "older than the retention")
	g.Expect(s.Len()).To(Equal(1), "dropped from memory, not only hidden")
	_, _, ok = s.Get("b")
	g.Expect(ok).To(BeTrue())

	s.Set("b", 3)
	clock.Step(45 * time.Second)
	_, _, ok = s.Get("b")
	g.Expect(ok).To(BeTrue(), "the retention runs from the last write")

	for i := range 1000 {
		s.Set(fmt.Sprintf("k%d", i), i)
	}
	clock.Step(2 * time.Minute)
	g.Expect(s.Len()).To(BeZero(), "everything expired is dropped, whatever the size")
}

// TestStoreLimit: writing a new key into a full store drops the entry written least
// recently; writing an existing key drops nothing.
func TestStoreLimit(t *testing.T) {
	g := NewWithT(t)
	clock := newFakeClock()
	s := cachelag.NewStore[string, int](cachelag.Options{Limit: 3, Now: clock.Now})

	for i, k := range []string{"a", "b", "c"} {
		s.Set(k, i)
		clock.Step(time.Second)
	}
	s.Set("a", 10) // a is now the most recently written
	g.Expect(s.Len()).To(Equal(3))

	s.Set("d", 4)
	g.Expect(s.Len()).To(Equal(3))
	_, _, ok := s.Get("b")
	g.Expect(ok).To(BeFalse(), "b was written least recently")
	for _, k := range []string{"a", "c", "d"} {
		_, _, ok := s.Get(k)
		g.Expect(ok).To(BeTrue(), k)
	}
}

// TestStoreDeleteFuncAndAny: entries are found and dropped by key and value.
func TestStoreDeleteFuncAndAny(t *testing.T) {
	g := NewWithT(t)
	type key struct{ bmc, uuid string }
	s := cachelag.NewStore[key, string](cachelag.Options{})
	s.Set(key{"bmc-1", "u1"}, "bmc-1-system-0")
	s.Set(key{"bmc-1", "u2"}, "bmc-1-system-1")
	s.Set(key{"bmc-2", "u3"}, "bmc-2-system-0")

	named := func(name string) func(key, string) bool {
		return func(_ key, v string) bool { return v == name }
	}
	g.Expect(s.Any(named("bmc-1-system-1"))).To(BeTrue())
	g.Expect(s.Any(named("bmc-3-system-0"))).To(BeFalse())

	s.DeleteFunc(func(k key, _ string) bool { return k.bmc == "bmc-1" })
	g.Expect(s.Len()).To(Equal(1))
	g.Expect(s.Any(named("bmc-1-system-1"))).To(BeFalse())
	g.Expect(s.Any(named("bmc-2-system-0"))).To(BeTrue())
}

// TestStoreConcurrentUse: writers, readers and deleters on overlapping keys (run with
// -race) keep the store within its limit.
func TestStoreConcurrentUse(t *testing.T) {
	g := NewWithT(t)
	s := cachelag.NewStore[int, int](cachelag.Options{Limit: 50})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := (w*7 + i) % 80
				s.Set(k, i)
				s.Get(k + 1)
				if i%10 == 0 {
					s.Delete(k + 2)
					s.Any(func(_, v int) bool { return v < 0 })
				}
			}
		})
	}
	wg.Wait()
	g.Expect(s.Len()).To(BeNumerically("<=", 50))
	g.Expect(s.Len()).To(BeNumerically(">", 0))
}
