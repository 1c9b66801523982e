// Package samples holds the tests of what users copy from: the manifests in config/samples
// (every one is accepted by a real API server with this operator's CRDs, and they fit the
// embedded development environment they are written for), docs/troubleshooting.md (an entry
// for every condition reason of the API) and docs/configuration.md (a row for every flag of
// the manager). It has no non-test code.
package samples
