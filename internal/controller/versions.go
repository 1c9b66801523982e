package controller

import (
	"time"

	"github.com/metalfleet/metal-operator/internal/cachelag"
)

// versionRetention is how long a controller remembers the version of its last write to an
// object. Past cacheLagLimit callers no longer wait for the cache; an older entry only
// bounds memory.
const versionRetention = time.Minute

// newVersions returns the store in which a controller records the resourceVersions of its
// own writes, so that no decision rests on a cached copy older than them.
func newVersions() *cachelag.Versions[string] {
	return cachelag.NewVersions[string](cachelag.Options{Retention: versionRetention})
}
