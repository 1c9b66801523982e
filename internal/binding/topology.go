package binding

import (
	"fmt"
	"slices"
	"strings"
)

// Level is one level of a set's topology: servers are grouped into domains by the value of
// the label Key, within their domain of the level above, and at most MaxPerDomain members
// are placed in one domain.
type Level struct {
	Key          string
	MaxPerDomain int
}

// DomainOf is a server's domain at the last level: its label values from the first level to
// the last, joined by "/". ok is false when the server lacks one of the labels.
func DomainOf(labels map[string]string, levels []Level) (domain string, ok bool) {
	path, ok := pathOf(labels, levels)
	return strings.Join(path, "/"), ok
}

// SetPlan is a set's placement decision.
type SetPlan struct {
	// Servers are the servers chosen, one per missing member, when the plan is whole; nil
	// otherwise: a set takes all the servers it needs or none.
	Servers []string
	// Fit is how many members the free servers can hold under the topology's limits.
	Fit int
	// Relaxed says the plan exceeds some maxPerDomain (BestEffort).
	Relaxed bool
	// Unplaceable is the number of candidates lacking a topology label.
	Unplaceable int
	// Domains are, per domain of the first level (sorted), how many more members it can hold
	// under the limits: what InsufficientCapacity reports.
	Domains []DomainFit
}

// DomainFit is how many more members one domain can hold.
type DomainFit struct {
	Domain string
	Fit    int
}

// Shortfall describes a plan that is not whole: how many members fit where, listing the
// first limit domains.
func (p SetPlan) Shortfall(need, limit int) string {
	msg := fmt.Sprintf("%d replicas to place; the free servers that fit the template hold %d under the topology", need, p.Fit)
	if len(p.Domains) > 0 {
		var parts []string
		for _, d := range p.Domains[:min(limit, len(p.Domains))] {
			parts = append(parts, fmt.Sprintf("%s: %d", d.Domain, d.Fit))
		}
		if len(p.Domains) > limit {
			parts = append(parts, fmt.Sprintf("%d more domains", len(p.Domains)-limit))
		}
		msg += " (" + strings.Join(parts, ", ") + ")"
	}
	if p.Unplaceable > 0 {
		msg += fmt.Sprintf("; %d free servers lack a topology label", p.Unplaceable)
	}
	return msg
}

// node is a domain of the topology tree: the root (level -1), a domain of an inner level, or
// a leaf (a domain of the last level) with its free servers.
type node struct {
	name     string
	level    int
	members  int // members placed here already (bound, or chosen in this plan)
	servers  []string
	children map[string]*node
	order    []string // child names, sorted
}

func (n *node) child(name string) *node {
	c := n.children[name]
	if c == nil {
		c = &node{name: name, level: n.level + 1, children: map[string]*node{}}
		n.children[name] = c
	}
	return c
}

// PlanSet decides servers for need more members of a set all at once: members are the labels
// of the servers the set's members hold already, candidates the free servers that fit the
// template, sorted as the caller prefers them within a domain. Members are spread: each goes
// to the domain, level by level, that holds the fewest so far (ties by name) among those
// that can still take one under maxPerDomain. The capacity of a domain is the least of its
// own limit less its members and the sum of its subdomains' capacities, so the spread never
// strands a member that would fit elsewhere. With bestEffort, members that do not fit under
// the limits are placed beyond them, still evenly. Without levels, the first need candidates
// are the plan. The plan is whole (Servers set) or empty.
func PlanSet(candidates []Candidate, members []map[string]string, need int, levels []Level, bestEffort bool) SetPlan {
	if len(levels) == 0 {
		p := SetPlan{Fit: min(need, len(candidates))}
		if len(candidates) >= need {
			for _, c := range candidates[:need] {
				p.Servers = append(p.Servers, c.Name)
			}
		}
		return p
	}
	root := &node{level: -1, children: map[string]*node{}}
	var p SetPlan
	for _, labels := range members {
		path, ok := pathOf(labels, levels)
		if !ok {
			continue
		}
		n := root
		n.members++
		for _, v := range path {
			n = n.child(v)
			n.members++
		}
	}
	for _, c := range candidates {
		path, ok := pathOf(c.Labels, levels)
		if !ok {
			p.Unplaceable++
			continue
		}
		n := root
		for _, v := range path {
			n = n.child(v)
		}
		n.servers = append(n.servers, c.Name)
	}
	sortTree(root)
	capOf := func(n *node, capped bool) int { return capacity(n, levels, capped) }
	p.Fit = min(need, capOf(root, true))
	for _, name := range root.order {
		p.Domains = append(p.Domains, DomainFit{Domain: levels[0].Key + "=" + name, Fit: capOf(root.children[name], true)})
	}
	chosen := place(root, p.Fit, levels, true)
	if p.Fit < need && bestEffort && capOf(root, false) >= need {
		chosen = append(chosen, place(root, need-p.Fit, levels, false)...)
		p.Relaxed = true
	}
	if len(chosen) == need {
		p.Servers = chosen
	}
	return p
}

func pathOf(labels map[string]string, levels []Level) ([]string, bool) {
	path := make([]string, len(levels))
	for i, l := range levels {
		v, ok := labels[l.Key]
		if !ok {
			return nil, false
		}
		path[i] = v
	}
	return path, true
}

func sortTree(n *node) {
	for name, c := range n.children {
		n.order = append(n.order, name)
		sortTree(c)
	}
	slices.Sort(n.order)
}

// capacity is how many more members the domain can take: under the limits (capped) or by
// its free servers alone.
func capacity(n *node, levels []Level, capped bool) int {
	var c int
	if len(n.children) == 0 {
		c = len(n.servers)
	} else {
		for _, name := range n.order {
			c += capacity(n.children[name], levels, capped)
		}
	}
	if capped && n.level >= 0 {
		c = min(c, max(0, levels[n.level].MaxPerDomain-n.members))
	}
	return c
}

// place chooses k servers under n, one at a time to the child with the fewest members that
// can take one more, and records them as members. k must not exceed capacity(n).
func place(n *node, k int, levels []Level, capped bool) []string {
	if len(n.children) == 0 {
		k = min(k, len(n.servers))
		out := n.servers[:k:k]
		n.servers = n.servers[k:]
		n.members += k
		return out
	}
	room := map[string]int{}
	given := map[string]int{}
	for _, name := range n.order {
		room[name] = capacity(n.children[name], levels, capped)
	}
	for range k {
		best := ""
		for _, name := range n.order {
			if given[name] >= room[name] {
				continue
			}
			if best == "" || n.children[name].members+given[name] < n.children[best].members+given[best] {
				best = name
			}
		}
		if best == "" {
			break
		}
		given[best]++
	}
	var out []string
	for _, name := range n.order {
		if given[name] > 0 {
			out = append(out, place(n.children[name], given[name], levels, capped)...)
		}
	}
	n.members += len(out)
	return out
}
