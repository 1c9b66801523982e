package cachelag

import (
	"container/list"
	"sync"
	"time"
)

// Defaults for the zero Options.
const (
	DefaultRetention = time.Minute
	DefaultLimit     = 1 << 16
)

// Options bound a Store or Versions. The zero value is usable.
type Options struct {
	// Retention is how long an entry is kept after it was last written. An older entry is
	// never returned, and the next call drops it. Zero means DefaultRetention.
	Retention time.Duration
	// Limit is the most entries kept. Writing a new key into a full store drops the entry
	// written least recently first. The limit only bounds memory: a dropped entry makes
	// the store answer as if nothing had been written to that key. Zero means DefaultLimit.
	Limit int
	// Now is the clock; nil means time.Now. It must not go back (time.Now does not: it
	// carries a monotonic reading). Tests pass a fake clock and never sleep.
	Now func() time.Time
}

// Store maps keys to values and remembers when each was last written. It is safe for
// concurrent use.
//
// Entries are listed in the order they were last written, oldest first, so age and the
// limit both drop from the front of the list: every call first drops the expired entries
// at the front (each entry once, so the cost is amortised constant whatever the size),
// and a write of a new key into a full store then drops the front entry.
type Store[K comparable, V any] struct {
	mu      sync.Mutex
	opts    Options
	entries map[K]*entry[K, V]
	order   list.List // of *entry[K, V], least recently written first
}

type entry[K comparable, V any] struct {
	key K
	val V
	at  time.Time
	el  *list.Element
}

// NewStore returns an empty store bounded by o.
func NewStore[K comparable, V any](o Options) *Store[K, V] {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Limit <= 0 {
		o.Limit = DefaultLimit
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store[K, V]{opts: o, entries: map[K]*entry[K, V]{}}
}

// Set writes the value of key, aged from now.
func (s *Store[K, V]) Set(key K, val V) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putLocked(key, val, s.expireLocked())
}

// Get returns the value of key and how long ago it was written; ok is false when there is
// none (never written, deleted, expired or dropped at the limit).
func (s *Store[K, V]) Get(key K) (val V, age time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.expireLocked()
	e, ok := s.entries[key]
	if !ok {
		return val, 0, false
	}
	return e.val, now.Sub(e.at), true
}

// Delete drops key.
func (s *Store[K, V]) Delete(key K) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	if e, ok := s.entries[key]; ok {
		s.removeLocked(e)
	}
}

// DeleteFunc drops every entry for which del returns true. del is called with the store
// locked: it must be quick and must not call the store.
func (s *Store[K, V]) DeleteFunc(del func(K, V) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	for _, e := range s.entries {
		if del(e.key, e.val) {
			s.removeLocked(e)
		}
	}
}

// Any reports whether match returns true for some entry. match is called with the store
// locked: it must be quick and must not call the store.
func (s *Store[K, V]) Any(match func(K, V) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	for _, e := range s.entries {
		if match(e.key, e.val) {
			return true
		}
	}
	return false
}

// Len is the number of entries kept.
func (s *Store[K, V]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	return len(s.entries)
}

// expireLocked drops the entries older than the retention and returns the time now.
func (s *Store[K, V]) expireLocked() time.Time {
	now := s.opts.Now()
	for el := s.order.Front(); el != nil; el = s.order.Front() {
		e := el.Value.(*entry[K, V])
		if now.Sub(e.at) <= s.opts.Retention {
			break
		}
		s.removeLocked(e)
	}
	return now
}

// putLocked writes the value of key at now and moves it to the back of the list.
func (s *Store[K, V]) putLocked(key K, val V, now time.Time) {
	if e, ok := s.entries[key]; ok {
		e.val, e.at = val, now
		s.order.MoveToBack(e.el)
		return
	}
	if len(s.entries) >= s.opts.Limit {
		s.removeLocked(s.order.Front().Value.(*entry[K, V]))
	}
	e := &entry[K, V]{key: key, val: val, at: now}
	e.el = s.order.PushBack(e)
	s.entries[key] = e
}

func (s *Store[K, V]) removeLocked(e *entry[K, V]) {
	s.order.Remove(e.el)
	delete(s.entries, e.key)
}
