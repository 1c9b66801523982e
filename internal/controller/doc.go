// Package controller holds one reconciler per kind and the plumbing they share.
//
//   - Server (server_*.go): the server's lifecycle, power and boot through its BMC.
//   - ServerClaim (serverclaim_*.go): binding a claim to a server (serverclaim_bind.go),
//     its boot configuration, status and release.
//   - BMC (bmc_*.go): enrolling the systems behind a BMC as Servers.
//   - ServerBootConfiguration: resolving the image and validating the ignition.
//
// Every reconciler follows the same order, written once in plumbing.go: read the object no
// older than the controller's own last write, honour the ignore annotation, add the
// finalizer, then reconcileDelete or reconcileNormal on a scope whose status is written once
// at the end, under the optimistic lock. Decisions with no client live in internal/binding;
// field indexes in internal/index; how a BMC is reached in internal/bmc/access.
// docs/architecture.md follows one claim through these files.
package controller
