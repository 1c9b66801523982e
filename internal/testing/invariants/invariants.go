// Package invariants checks the binding invariants between Servers and ServerClaims by
// identity (uids), never by counts. Tests and the fleet benchmark both use it.
//
// A server's claim reference is a proposal until the claim names the server in
// spec.serverRef; only then is the binding confirmed, taken up (Reserved) and powered. Two
// managers may each propose a server for one claim; the claim records one of them, and the
// other is released (docs/concepts/serverclaim.md, "Fencing").
//
// Hard invariants hold at every instant; a breach is a bug:
//   - a claim (by uid) is taken up (Reserved or Released) by at most one server;
//   - a taken-up server's claim does not name another server;
//   - no server is named by two Bound claims, and a Bound claim's server does not
//     reference another claim;
//   - a server's claim reference never mixes one claim's name with another's uid.
//
// Report.SharedServerRefs lists every server named by two live claims (not being deleted, lease not ended),
// Bound or not: a breach
// for claims the controller filled in (selector claims), while two users may well name one
// server by hand.
//
// Settling invariants hold once the controllers are idle; while they work, a breach is
// progress under way:
//   - a server's claim reference names a claim that exists with that uid and does not name
//     another server; a claim is referenced by one server at most;
//   - a claim that names a server in spec.serverRef is held by it; a Bound claim is held;
//   - a Reserved server holds a claim.
package invariants

import (
	"context"
	"fmt"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
)

// Report is the outcome of one check.
type Report struct {
	// Bound is the number of claims held by exactly the server they name.
	Bound int
	// Unbound is the number of claims no server holds.
	Unbound int
	// Violations break a hard invariant.
	Violations []string
	// SharedServerRefs are servers that two claims name in spec.serverRef.
	SharedServerRefs []string
	// Unsettled break a settling invariant.
	Unsettled []string
}

// Settled reports whether no invariant of either kind is broken.
func (r Report) Settled() bool { return len(r.Violations) == 0 && len(r.Unsettled) == 0 }

func (r Report) String() string {
	return fmt.Sprintf("bound=%d unbound=%d violations=%v unsettled=%d(first: %v)",
		r.Bound, r.Unbound, r.Violations, len(r.Unsettled), first(r.Unsettled, 5))
}

func first(s []string, n int) []string { return s[:min(len(s), n)] }

// Check lists every Server and the ServerClaims of the namespaces (all when none is given)
// and checks the invariants. The servers come from one List, a consistent snapshot.
func Check(ctx context.Context, c client.Reader, namespaces ...string) (Report, error) {
	servers := &metalv1alpha1.ServerList{}
	if err := c.List(ctx, servers); err != nil {
		return Report{}, err
	}
	var claims []metalv1alpha1.ServerClaim
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	for _, ns := range namespaces {
		list := &metalv1alpha1.ServerClaimList{}
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			return Report{}, err
		}
		claims = append(claims, list.Items...)
	}
	inScope := func(ns string) bool { return namespaces[0] == "" || slices.Contains(namespaces, ns) }
	return evaluate(servers.Items, claims, inScope), nil
}

func evaluate(servers []metalv1alpha1.Server, claims []metalv1alpha1.ServerClaim, inScope func(string) bool) Report {
	var r Report
	byUID := map[string]*metalv1alpha1.ServerClaim{}
	byServer := map[string][]*metalv1alpha1.ServerClaim{} // server name -> the claims naming it
	for i := range claims {
		c := &claims[i]
		byUID[string(c.UID)] = c
		if c.Spec.ServerRef == nil || !c.DeletionTimestamp.IsZero() || binding.LeaseExpiredReported(c) {
			// A claim being deleted, or whose lease ended, names its server as history: the
			// server may already have been released and taken by another claim.
			continue
		}
		name := c.Spec.ServerRef.Name
		for _, other := range byServer[name] {
			r.SharedServerRefs = append(r.SharedServerRefs, fmt.Sprintf("server %s is named by claims %s/%s and %s/%s",
				name, other.Namespace, other.Name, c.Namespace, c.Name))
			if other.Status.Phase == metalv1alpha1.PhaseBound && c.Status.Phase == metalv1alpha1.PhaseBound {
				r.Violations = append(r.Violations, fmt.Sprintf("server %s is named by Bound claims %s/%s and %s/%s",
					name, other.Namespace, other.Name, c.Namespace, c.Name))
			}
		}
		byServer[name] = append(byServer[name], c)
	}
	referencedBy := map[string]string{} // claim uid -> a server referencing it
	takenUpBy := map[string]string{}    // claim uid -> a Reserved or Released server referencing it
	holder := map[string]string{}       // claim uid -> the server referencing it that the claim names
	for i := range servers {
		s := &servers[i]
		ref := s.Spec.ServerClaimRef
		if ref == nil {
			if s.Status.State == metalv1alpha1.ServerStateReserved {
				r.Unsettled = append(r.Unsettled, fmt.Sprintf("server %s is Reserved without a claim", s.Name))
			}
			for _, c := range byServer[s.Name] {
				if c.Status.Phase == metalv1alpha1.PhaseBound {
					r.Unsettled = append(r.Unsettled, fmt.Sprintf("claim %s/%s is Bound to server %s, which holds no claim", c.Namespace, c.Name, s.Name))
				}
			}
			continue
		}
		if !inScope(ref.Namespace) {
			continue
		}
		for _, c := range byServer[s.Name] {
			if c.Status.Phase == metalv1alpha1.PhaseBound && ref.UID != "" && ref.UID != string(c.UID) {
				r.Violations = append(r.Violations, fmt.Sprintf("claim %s/%s is Bound to server %s, which references claim %s/%s (uid %s)",
					c.Namespace, c.Name, s.Name, ref.Namespace, ref.Name, ref.UID))
			}
		}
		takenUp := s.Status.State == metalv1alpha1.ServerStateReserved || s.Status.State == metalv1alpha1.ServerStateReleased
		if takenUp && ref.UID != "" {
			if prev, ok := takenUpBy[ref.UID]; ok {
				r.Violations = append(r.Violations, fmt.Sprintf("claim %s/%s (uid %s) is taken up by servers %s and %s",
					ref.Namespace, ref.Name, ref.UID, prev, s.Name))
			}
			takenUpBy[ref.UID] = s.Name
		}
		if prev, ok := referencedBy[ref.UID]; ok && ref.UID != "" {
			r.Unsettled = append(r.Unsettled, fmt.Sprintf("claim %s/%s (uid %s) is referenced by servers %s and %s",
				ref.Namespace, ref.Name, ref.UID, prev, s.Name))
		}
		referencedBy[ref.UID] = s.Name
		c, ok := byUID[ref.UID]
		if !ok || ref.UID == "" {
			r.Unsettled = append(r.Unsettled, fmt.Sprintf("server %s holds claim %s/%s (uid %q) which does not exist",
				s.Name, ref.Namespace, ref.Name, ref.UID))
			continue
		}
		if c.Name != ref.Name || c.Namespace != ref.Namespace {
			r.Violations = append(r.Violations, fmt.Sprintf("server %s names claim %s/%s but uid %s is %s/%s",
				s.Name, ref.Namespace, ref.Name, ref.UID, c.Namespace, c.Name))
		}
		switch {
		case c.Spec.ServerRef == nil:
			// A proposal: the claim records it, or another.
		case c.Spec.ServerRef.Name == s.Name:
			holder[ref.UID] = s.Name
		case takenUp:
			r.Violations = append(r.Violations, fmt.Sprintf("server %s is %s for claim %s/%s, which names server %s",
				s.Name, s.Status.State, c.Namespace, c.Name, c.Spec.ServerRef.Name))
		default:
			r.Unsettled = append(r.Unsettled, fmt.Sprintf("server %s references claim %s/%s, which names server %s",
				s.Name, c.Namespace, c.Name, c.Spec.ServerRef.Name))
		}
	}
	for i := range claims {
		c := &claims[i]
		uid := string(c.UID)
		_, held := holder[uid]
		_, referenced := referencedBy[uid]
		switch {
		case held && binding.LeaseExpiredReported(c):
			r.Unbound++ // a Retain server keeps the claim whose lease ended, released
		case held:
			r.Bound++
		case referenced:
			r.Unsettled = append(r.Unsettled, fmt.Sprintf("claim %s/%s is referenced by %s but does not name it", c.Namespace, c.Name, referencedBy[uid]))
		default:
			r.Unbound++
			if c.Status.Phase == metalv1alpha1.PhaseBound {
				r.Unsettled = append(r.Unsettled, fmt.Sprintf("claim %s/%s is Bound but no server holds it", c.Namespace, c.Name))
			}
		}
	}
	return r
}
