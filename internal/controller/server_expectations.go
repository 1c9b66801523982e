package controller

import (
	"sync"
)

// serverVersions remembers, per server, the resourceVersion this controller last wrote or
// read around the cache. A reconcile whose cached copy does not have that version reads the
// server through the API reader instead, so that no decision (and no BMC action) rests on a
// copy older than the controller's own last write, and no write fails on a stale version.
// Only the controller's own writes and reads set an entry; once the cache shows the version,
// the entry is dropped, so settled servers cost nothing.
type serverVersions struct {
	mu sync.Mutex
	m  map[string]string
}

func newServerVersions() *serverVersions {
	return &serverVersions{m: map[string]string{}}
}

// expect records that the server named name has at least version rv.
func (v *serverVersions) expect(name, rv string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.m[name] = rv
}

// observe reports whether a cached copy with version rv can be trusted: there is no
// expectation, or the cache has caught up with it (which drops the expectation).
func (v *serverVersions) observe(name, rv string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	want, ok := v.m[name]
	if !ok {
		return true
	}
	if want == rv {
		delete(v.m, name)
		return true
	}
	return false
}

// forget drops the expectation for a server that is gone.
func (v *serverVersions) forget(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, name)
}
