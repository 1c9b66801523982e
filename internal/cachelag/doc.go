// Package cachelag remembers what a controller wrote until its informer cache shows it.
//
// The cache lags the controller's own writes, by milliseconds usually and seconds at worst.
// A reconcile acting on a copy older than its own last write may repeat that write or a BMC
// action, fail on a stale version, or create an object twice. So the controller records
// each write, and on its next read of a cached copy asks whether the cache shows it yet:
//
//	versions.Expect(key, obj.ResourceVersion) // after a Patch, Create or uncached Get
//	if trusted, waiting := versions.Observe(key, cached.ResourceVersion); !trusted {
//		// requeue shortly; past a limit on waiting, read around the cache and Expect that
//	}
//
// Versions orders resource versions with apimachinery's CompareResourceVersion; Store keeps
// other values (the server a claim took, a name just created) with their age. Entries live
// in memory only: one manager is active at a time and a new one starts from a fresh List.
package cachelag
