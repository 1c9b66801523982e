package controller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// expectations remember the claim controller's own writes until the cache shows them, in
// the manner of the ReplicaSet controller's expectations: after a claim took server A, it
// must not look for a server again just because its next reconcile reads a cache that
// predates the write. Only one manager is active at a time and a new one starts from a
// fresh List, so in-memory expectations are sound.
type expectations struct {
	mu      sync.Mutex
	servers map[types.UID]pendingWrite
	sbcs    map[types.UID]time.Time
	// taken is when each claim took its server, until the claim reports Bound: the grace
	// for the server controller's Reserved write runs from then, not from the claim's
	// creation (in a burst a claim may wait in the queue longer than the grace).
	taken map[types.UID]time.Time
}

type pendingWrite struct {
	name string
	at   time.Time
}

func newExpectations() *expectations {
	return &expectations{servers: map[types.UID]pendingWrite{}, sbcs: map[types.UID]time.Time{}, taken: map[types.UID]time.Time{}}
}

// setServer records that the claim took the named server.
func (e *expectations) setServer(claim types.UID, server string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	e.servers[claim] = pendingWrite{name: server, at: now}
	e.taken[claim] = now
	// Entries of claims deleted before they were seen are dropped eventually.
	if len(e.servers)%1024 == 0 {
		for uid, w := range e.servers {
			if now.Sub(w.at) > expectationRetention {
				delete(e.servers, uid)
			}
		}
		for uid, at := range e.taken {
			if now.Sub(at) > expectationRetention {
				delete(e.taken, uid)
			}
		}
	}
}

// expectationRetention is how long an unobserved expectation is kept at most.
const expectationRetention = 10 * time.Minute

// server returns the server the claim took and the cache may not show yet.
func (e *expectations) server(claim types.UID) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w, ok := e.servers[claim]
	return w.name, ok
}

// serverAge is how long ago the pending server write happened (0 when there is none).
func (e *expectations) serverAge(claim types.UID) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	w, ok := e.servers[claim]
	if !ok {
		return 0
	}
	return time.Since(w.at)
}

// observedServer drops the server expectation: the cache shows the write, or it is moot.
func (e *expectations) observedServer(claim types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.servers, claim)
}

// setBootConfigurationCreated records that the claim's boot configuration was created.
func (e *expectations) setBootConfigurationCreated(claim types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sbcs[claim] = time.Now()
}

// bootConfigurationCreated reports whether the claim's boot configuration was created a
// moment ago and the cache may not show it yet.
func (e *expectations) bootConfigurationCreated(claim types.UID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	at, ok := e.sbcs[claim]
	if ok && time.Since(at) > time.Minute {
		delete(e.sbcs, claim)
		return false
	}
	return ok
}

// observedBootConfiguration drops the boot configuration expectation.
func (e *expectations) observedBootConfiguration(claim types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.sbcs, claim)
}

// takenAt is when the claim took its server in this process (false when unknown, e.g.
// after a restart).
func (e *expectations) takenAt(claim types.UID) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	at, ok := e.taken[claim]
	return at, ok
}

// reported drops the time the claim took its server: its status says Bound.
func (e *expectations) reported(claim types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.taken, claim)
}

// forget drops everything about a claim that is gone.
func (e *expectations) forget(claim types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.servers, claim)
	delete(e.sbcs, claim)
	delete(e.taken, claim)
}
