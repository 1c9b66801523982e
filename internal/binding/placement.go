package binding

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// Preference is what a single claim's spec.placement asks of the servers that fit it.
type Preference struct {
	// Pack prefers the best fit: the server with the fewest labels the selector does not
	// name (SelectorKeys), keeping servers with more, more specific labels free.
	Pack         bool
	SelectorKeys map[string]bool
	// TopologyKey and GroupDomains spread an anti-affinity group: a server scores by how many
	// of the group's claims hold servers in its domain (its value of TopologyKey).
	TopologyKey  string
	GroupDomains map[string]int
}

// PreferenceOf is the preference of a claim; ok is false when it has none beyond today's
// spreading (no placement, or policy Spread without a group), and Pick serves it as before.
// groupDomains are the domains of the servers held by the other claims of its group.
func PreferenceOf(claim *metalv1alpha1.ServerClaim, groupDomains map[string]int) (Preference, bool) {
	pl := claim.Spec.Placement
	if pl == nil || (pl.Policy != metalv1alpha1.PlacementPack && pl.Group == "") {
		return Preference{}, false
	}
	p := Preference{Pack: pl.Policy == metalv1alpha1.PlacementPack, SelectorKeys: selectorKeys(claim.Spec.ServerSelector)}
	if pl.Group != "" {
		p.TopologyKey, p.GroupDomains = pl.TopologyKey, groupDomains
	}
	return p, true
}

func selectorKeys(sel *metav1.LabelSelector) map[string]bool {
	keys := map[string]bool{}
	if sel == nil {
		return keys
	}
	for k := range sel.MatchLabels {
		keys[k] = true
	}
	for _, r := range sel.MatchExpressions {
		keys[r.Key] = true
	}
	return keys
}

// groupWeight puts the anti-affinity group before packing: one more group member in a
// domain outweighs any number of extra labels a server may have (labels are capped far
// below it by the API server's object size).
const groupWeight = 1 << 20

// Score is how much the claim dislikes the server, 0 being the best possible: for a group,
// groupWeight per group member already in the server's domain (a server without the
// topology label counts as in a domain as full as the fullest one plus one); for Pack, one
// per label the selector does not name.
func (p Preference) Score(c Candidate) int {
	score := 0
	if p.TopologyKey != "" {
		if d, ok := c.Labels[p.TopologyKey]; ok {
			score += groupWeight * p.GroupDomains[d]
		} else {
			fullest := 0
			for _, n := range p.GroupDomains {
				fullest = max(fullest, n)
			}
			score += groupWeight * (fullest + 1)
		}
	}
	if p.Pack {
		for k := range c.Labels {
			if !p.SelectorKeys[k] {
				score++
			}
		}
	}
	return score
}
