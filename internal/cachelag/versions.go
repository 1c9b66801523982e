package cachelag

import (
	"time"

	"k8s.io/apimachinery/pkg/util/resourceversion"
)

// Versions remembers a resourceVersion per object key, in two ways of use:
//
//   - Expect and Observe: the version the controller last wrote (or read around the
//     cache), until a cached copy shows it. Observe drops the entry once the cache has
//     caught up.
//   - Advance: the newest version seen or written, kept so that a late or stale copy
//     never takes a key back to an older version.
//
// Versions are ordered by apimachinery's CompareResourceVersion, after a plain equality
// check. Where that cannot order two different versions (either is not a well-formed
// decimal revision, as from a storage other than etcd), each method says what it assumes.
// It is safe for concurrent use.
type Versions[K comparable] struct {
	s *Store[K, string]
}

// NewVersions returns an empty Versions bounded by o.
func NewVersions[K comparable](o Options) *Versions[K] {
	return &Versions[K]{s: NewStore[K, string](o)}
}

// Expect records that the object under key is at version rv or newer: the controller has
// just written it, or read it around the cache. It is Advance for the controller's own
// write: a newer version already recorded is kept, with its age.
func (v *Versions[K]) Expect(key K, rv string) {
	v.Advance(key, rv)
}

// Advance records rv as the newest version of key and reports true, unless the version
// recorded is known to be newer than rv (then it reports false and changes nothing).
// Writing the same version again renews its age.
//
// A version it cannot order against the recorded one counts as newer: refusing it would
// leave the key at the recorded version for good, since every later version would be
// just as unordered. The caller then follows the copies as they come, which an informer
// delivers in order; its writes stay safe through the optimistic lock, not through this.
func (v *Versions[K]) Advance(key K, rv string) bool {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.expireLocked()
	if e, ok := s.entries[key]; ok {
		if c, known := compare(rv, e.val); known && c < 0 {
			return false
		}
	}
	s.putLocked(key, rv, now)
	return true
}

// Observe reports whether a cached copy of key at version rv can be trusted: nothing is
// expected, or the copy is at the expected version or newer, which drops the expectation.
// When it cannot be trusted, waiting is how long ago the expectation was recorded: the
// caller waits for the cache while that is short, and reads around it when it is long.
//
// A different version it cannot order against the expected one is not trusted: acting on
// a copy that may predate the controller's own write can repeat a BMC action or a write.
// The cost is bounded: the caller reads around the cache once waiting passes its limit,
// and Expects the version it read, which the cache then shows to the letter.
func (v *Versions[K]) Observe(key K, rv string) (trusted bool, waiting time.Duration) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.expireLocked()
	e, ok := s.entries[key]
	if !ok {
		return true, 0
	}
	if c, known := compare(rv, e.val); known && c >= 0 {
		s.removeLocked(e)
		return true, 0
	}
	return false, now.Sub(e.at)
}

// Forget drops what is recorded for key: the object is gone.
func (v *Versions[K]) Forget(key K) {
	v.s.Delete(key)
}

// Len is the number of keys with a recorded version.
func (v *Versions[K]) Len() int {
	return v.s.Len()
}

// compare orders resource version a against b (-1 older, 0 the same, +1 newer); known is
// false when they differ and cannot be ordered.
func compare(a, b string) (c int, known bool) {
	if a == b {
		return 0, true
	}
	c, err := resourceversion.CompareResourceVersion(a, b)
	return c, err == nil
}

// Older reports whether resource version a is known to be older than b: a cached copy at a
// predates a write that left the object at b. Versions that cannot be ordered are not known
// to be older.
func Older(a, b string) bool {
	c, known := compare(a, b)
	return known && c < 0
}
