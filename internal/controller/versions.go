package controller

import (
	"sync"
	"time"

	"github.com/metalfleet/metal-operator/internal/binding"
)

// objectVersions remembers, per object key, the resourceVersion a controller last wrote or
// read around the cache. A reconcile whose cached copy is older than that waits a moment for
// the cache instead of acting on a copy older than the controller's own last write (which
// could repeat a BMC action, repeat a write, or fail its write on a stale version); if the
// cache lags for long, the controller reads around it or goes on. Once the cache shows the
// version (or a later one), the entry is dropped; entries nobody looked at again (an object
// not reconciled after the controller's last write to it) are pruned after a while.
type objectVersions struct {
	mu sync.Mutex
	m  map[string]expectedVersion
}

type expectedVersion struct {
	rv string
	at time.Time
}

func newObjectVersions() *objectVersions {
	return &objectVersions{m: map[string]expectedVersion{}}
}

// expect records that the object with the key has at least version rv.
func (v *objectVersions) expect(key, rv string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := time.Now()
	v.m[key] = expectedVersion{rv: rv, at: now}
	if len(v.m)%1024 == 0 {
		for k, e := range v.m {
			if now.Sub(e.at) > versionRetention {
				delete(v.m, k)
			}
		}
	}
}

// versionRetention is how long an expectation is kept at most. Past cacheLagLimit callers
// no longer wait for the cache; an older entry only bounds memory.
const versionRetention = time.Minute

// observe reports whether a cached copy with version rv can be trusted: there is no
// expectation, or the cache has caught up with it (which drops the expectation). When it
// cannot, it also says for how long the expectation has been waiting.
func (v *objectVersions) observe(key, rv string) (trusted bool, waiting time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	want, ok := v.m[key]
	if !ok || !binding.OlderVersion(rv, want.rv) {
		delete(v.m, key)
		return true, 0
	}
	return false, time.Since(want.at)
}

// forget drops the expectation for an object that is gone.
func (v *objectVersions) forget(key string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, key)
}
