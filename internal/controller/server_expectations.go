package controller

import (
	"strconv"
	"sync"
	"time"
)

// serverVersions remembers, per server, the resourceVersion this controller last wrote or
// read around the cache. A reconcile whose cached copy is older than that waits a moment for
// the cache instead of acting on a copy older than the controller's own last write (which
// could repeat a BMC action or fail its write on a stale version); if the cache lags for
// long, the server is read around it. Once the cache shows the version (or a later one), the
// entry is dropped, so settled servers cost nothing.
type serverVersions struct {
	mu sync.Mutex
	m  map[string]expectedVersion
}

type expectedVersion struct {
	rv string
	at time.Time
}

func newServerVersions() *serverVersions {
	return &serverVersions{m: map[string]expectedVersion{}}
}

// expect records that the server named name has at least version rv.
func (v *serverVersions) expect(name, rv string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.m[name] = expectedVersion{rv: rv, at: time.Now()}
}

// observe reports whether a cached copy with version rv can be trusted: there is no
// expectation, or the cache has caught up with it (which drops the expectation). When it
// cannot, it also says for how long the expectation has been waiting.
func (v *serverVersions) observe(name, rv string) (trusted bool, waiting time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	want, ok := v.m[name]
	if !ok || !olderVersion(rv, want.rv) {
		delete(v.m, name)
		return true, 0
	}
	return false, time.Since(want.at)
}

// olderVersion reports whether resourceVersion a is older than b. Resource versions are
// etcd revisions; where both parse as numbers they are compared as such, otherwise only
// equality is known and a different version counts as older (the caller then confirms).
func olderVersion(a, b string) bool {
	if a == b {
		return false
	}
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return true
	}
	return x < y
}

// forget drops the expectation for a server that is gone.
func (v *serverVersions) forget(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, name)
}
