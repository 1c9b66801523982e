package controller

import (
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/metalfleet/metal-operator/internal/cachelag"
)

// expectations remember the claim controller's own writes until the cache shows them, in
// the manner of the ReplicaSet controller's expectations: after a claim took server A, it
// must not look for a server again just because its next reconcile reads a cache that
// predates the write. They are kept in memory: a restarted manager starts from a fresh List,
// and what another manager wrote is fenced by resourceVersions (see recordBinding), never by
// these.
type expectations struct {
	// servers is the server each claim took, and the version the take left it at, while the
	// cache may not show it yet.
	servers *cachelag.Store[types.UID, takenServer]
	// sbcs are the claims whose boot configuration was created a moment ago.
	sbcs *cachelag.Store[types.UID, struct{}]
	// taken is when each claim took its server, until the claim reports Bound: the grace
	// for the server controller's Reserved write runs from then, not from the claim's
	// creation (in a burst a claim may wait in the queue longer than the grace).
	taken *cachelag.Store[types.UID, struct{}]
}

// takenServer is a server a claim took, and the resourceVersion the take left it at.
type takenServer struct {
	name, version string
}

const (
	// expectationRetention is how long an unobserved server expectation is kept at most.
	expectationRetention = 10 * time.Minute
	// creationRetention is how long a created boot configuration is expected at most.
	creationRetention = time.Minute
)

func newExpectations() *expectations {
	return &expectations{
		servers: cachelag.NewStore[types.UID, takenServer](cachelag.Options{Retention: expectationRetention}),
		sbcs:    cachelag.NewStore[types.UID, struct{}](cachelag.Options{Retention: creationRetention}),
		taken:   cachelag.NewStore[types.UID, struct{}](cachelag.Options{Retention: expectationRetention}),
	}
}

// setServer records that the claim took the named server, leaving it at version.
func (e *expectations) setServer(claim types.UID, server, version string) {
	e.servers.Set(claim, takenServer{name: server, version: version})
	e.taken.Set(claim, struct{}{})
}

// server returns the server the claim took and the cache may not show yet.
func (e *expectations) server(claim types.UID) (string, bool) {
	t, _, ok := e.servers.Get(claim)
	return t.name, ok
}

// serverVersion returns the version the claim's take left its server at.
func (e *expectations) serverVersion(claim types.UID) string {
	t, _, _ := e.servers.Get(claim)
	return t.version
}

// serverAge is how long ago the pending server write happened (0 when there is none).
func (e *expectations) serverAge(claim types.UID) time.Duration {
	_, age, _ := e.servers.Get(claim)
	return age
}

// observedServer drops the server expectation: the cache shows the write, or it is moot.
func (e *expectations) observedServer(claim types.UID) { e.servers.Delete(claim) }

// setBootConfigurationCreated records that the claim's boot configuration was created.
func (e *expectations) setBootConfigurationCreated(claim types.UID) { e.sbcs.Set(claim, struct{}{}) }

// bootConfigurationCreated reports whether the claim's boot configuration was created a
// moment ago and the cache may not show it yet.
func (e *expectations) bootConfigurationCreated(claim types.UID) bool {
	_, _, ok := e.sbcs.Get(claim)
	return ok
}

// observedBootConfiguration drops the boot configuration expectation.
func (e *expectations) observedBootConfiguration(claim types.UID) { e.sbcs.Delete(claim) }

// takenFor is how long ago the claim took its server in this process (false when unknown,
// e.g. after a restart).
func (e *expectations) takenFor(claim types.UID) (time.Duration, bool) {
	_, age, ok := e.taken.Get(claim)
	return age, ok
}

// reported drops the time the claim took its server: its status says Bound.
func (e *expectations) reported(claim types.UID) { e.taken.Delete(claim) }

// forget drops everything about a claim that is gone.
func (e *expectations) forget(claim types.UID) {
	e.servers.Delete(claim)
	e.sbcs.Delete(claim)
	e.taken.Delete(claim)
}
