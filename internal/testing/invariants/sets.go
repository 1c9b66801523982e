package invariants

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/index"
)

// SetReport is the outcome of one check of the ServerClaimSets of a namespace.
//
// The hard invariant of a set (all or nothing) holds at every instant: once one member
// names its server, every member below spec.replicas holds its server (a proposal or a
// binding), so the set completes whole; no set is ever partly bound while another part
// waits. At rest, every set is whole (each member bound to the server it names) or waiting
// (no server references any of its members).
type SetReport struct {
	// Whole and Waiting are the sets in either state of rest, by name.
	Whole, Waiting []string
	// Partial are the sets in neither state: progress while the controllers work, a breach
	// once they are idle.
	Partial []string
	// Violations break the hard invariant.
	Violations []string
}

// CheckSets lists the namespace's ServerClaimSets and claims, then every Server, and checks
// the sets. The claims are read before the servers: a member that names its server was
// recorded only after every member held its server, and a held server stays held, so a
// later server list shows what the record relied on.
func CheckSets(ctx context.Context, c client.Reader, namespace string) (SetReport, error) {
	sets := &fleetv1alpha1.ServerClaimSetList{}
	if err := c.List(ctx, sets, client.InNamespace(namespace)); err != nil {
		return SetReport{}, err
	}
	claims := &metalv1alpha1.ServerClaimList{}
	if err := c.List(ctx, claims, client.InNamespace(namespace)); err != nil {
		return SetReport{}, err
	}
	servers := &metalv1alpha1.ServerList{}
	if err := c.List(ctx, servers); err != nil {
		return SetReport{}, err
	}
	return evaluateSets(sets.Items, claims.Items, servers.Items), nil
}

func evaluateSets(sets []fleetv1alpha1.ServerClaimSet, claims []metalv1alpha1.ServerClaim, servers []metalv1alpha1.Server) SetReport {
	heldBy := map[string]string{} // claim uid -> the server referencing it
	for i := range servers {
		if ref := servers[i].Spec.ServerClaimRef; ref != nil && ref.UID != "" {
			heldBy[ref.UID] = servers[i].Name
		}
	}
	members := map[string]map[int]*metalv1alpha1.ServerClaim{} // set name -> index -> member
	for i := range claims {
		m := &claims[i]
		set, ok := index.ClaimSetOf(m)
		if !ok {
			continue
		}
		idx, err := strconv.Atoi(strings.TrimPrefix(m.Name, set+"-"))
		if err != nil {
			continue
		}
		if members[set] == nil {
			members[set] = map[int]*metalv1alpha1.ServerClaim{}
		}
		members[set][idx] = m
	}
	var r SetReport
	for _, set := range sets {
		recorded, holding := 0, 0
		var notHolding []string
		for i := range int(set.Spec.Replicas) {
			m, ok := members[set.Name][i]
			if !ok {
				notHolding = append(notHolding, fmt.Sprintf("%s-%d (missing)", set.Name, i))
				continue
			}
			server, held := heldBy[string(m.UID)]
			if held {
				holding++
			} else {
				notHolding = append(notHolding, m.Name)
			}
			if held && m.Spec.ServerRef != nil && m.Spec.ServerRef.Name == server {
				recorded++
			}
		}
		if recorded > 0 && len(notHolding) > 0 {
			r.Violations = append(r.Violations, fmt.Sprintf("set %s has %d members bound while %v hold no server",
				set.Name, recorded, first(notHolding, 5)))
		}
		switch {
		case recorded == int(set.Spec.Replicas):
			r.Whole = append(r.Whole, set.Name)
		case holding == 0:
			r.Waiting = append(r.Waiting, set.Name)
		default:
			r.Partial = append(r.Partial, set.Name)
		}
	}
	return r
}
