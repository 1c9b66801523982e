// Package invariants checks the binding invariants between Servers and ServerClaims by
// identity (uids), never by counts. Tests and the fleet benchmark both use it.
//
// Hard invariants hold at every instant; a breach is a bug:
//   - a claim (by uid) is held by at most one server;
//   - a server holding a claim is the server the claim names in spec.serverRef, if it names one.
//
// Settling invariants hold once the controllers are idle; while they work, a breach is
// progress under way:
//   - a server's claim reference names a claim that exists with that uid;
//   - a claim that names a server in spec.serverRef is held by it; a Bound claim is held;
//   - a Reserved server holds a claim.
package invariants

import (
	"context"
	"fmt"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// Report is the outcome of one check.
type Report struct {
	// Bound is the number of claims held by exactly the server they name.
	Bound int
	// Unbound is the number of claims no server holds.
	Unbound int
	// Violations break a hard invariant.
	Violations []string
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
	for i := range claims {
		byUID[string(claims[i].UID)] = &claims[i]
	}
	holder := map[string]string{} // claim uid -> server name
	for i := range servers {
		s := &servers[i]
		ref := s.Spec.ServerClaimRef
		if ref == nil {
			if s.Status.State == metalv1alpha1.ServerStateReserved {
				r.Unsettled = append(r.Unsettled, fmt.Sprintf("server %s is Reserved without a claim", s.Name))
			}
			continue
		}
		if !inScope(ref.Namespace) {
			continue
		}
		if prev, ok := holder[ref.UID]; ok && ref.UID != "" {
			r.Violations = append(r.Violations, fmt.Sprintf("claim %s/%s (uid %s) is held by servers %s and %s",
				ref.Namespace, ref.Name, ref.UID, prev, s.Name))
		}
		holder[ref.UID] = s.Name
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
		if c.Spec.ServerRef != nil && c.Spec.ServerRef.Name != s.Name {
			r.Violations = append(r.Violations, fmt.Sprintf("server %s holds claim %s/%s which names server %s",
				s.Name, c.Namespace, c.Name, c.Spec.ServerRef.Name))
		}
	}
	for i := range claims {
		c := &claims[i]
		server, held := holder[string(c.UID)]
		switch {
		case held && c.Spec.ServerRef != nil && c.Spec.ServerRef.Name == server:
			r.Bound++
		case held:
			r.Unsettled = append(r.Unsettled, fmt.Sprintf("claim %s/%s is held by %s but does not name it yet", c.Namespace, c.Name, server))
		default:
			r.Unbound++
			if c.Status.Phase == metalv1alpha1.PhaseBound {
				r.Unsettled = append(r.Unsettled, fmt.Sprintf("claim %s/%s is Bound but no server holds it", c.Namespace, c.Name))
			}
		}
	}
	return r
}
