package binding

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// racks returns candidates named <rack>-<i>, perRack[j] of them in rack r<j>, site s<j/sitesOf>.
func racks(perRack []int, racksPerSite int) []Candidate {
	var out []Candidate
	for j, n := range perRack {
		for i := range n {
			out = append(out, Candidate{Name: fmt.Sprintf("r%d-%d", j, i), Labels: map[string]string{
				"rack": fmt.Sprintf("r%d", j), "site": fmt.Sprintf("s%d", j/racksPerSite)}})
		}
	}
	return out
}

func rackOf(name string) string {
	rack, _, _ := strings.Cut(name, "-")
	return rack
}

func TestPlanSet(t *testing.T) {
	perRack := []Level{{Key: "rack", MaxPerDomain: 1}}
	cases := []struct {
		name       string
		candidates []Candidate
		members    []map[string]string
		need       int
		levels     []Level
		bestEffort bool
		// wantPerRack is the number of chosen servers per rack; nil = no plan.
		wantPerRack map[string]int
		wantFit     int
		wantRelaxed bool
	}{
		{name: "one per rack over four racks", candidates: racks([]int{2, 2, 2, 2}, 4), need: 3, levels: perRack,
			wantPerRack: map[string]int{"r0": 1, "r1": 1, "r2": 1}, wantFit: 3},
		{name: "two racks cannot hold three, one each", candidates: racks([]int{5, 5}, 4), need: 3, levels: perRack,
			wantFit: 2},
		{name: "best effort places beyond the limit, evenly", candidates: racks([]int{5, 5}, 4), need: 3, levels: perRack,
			bestEffort: true, wantPerRack: map[string]int{"r0": 2, "r1": 1}, wantFit: 2, wantRelaxed: true},
		{name: "best effort still needs enough servers", candidates: racks([]int{1, 1}, 4), need: 3, levels: perRack,
			bestEffort: true, wantFit: 2},
		{name: "members already bound count against their rack", candidates: racks([]int{2, 2, 2}, 4), need: 2, levels: perRack,
			members:     []map[string]string{{"rack": "r0", "site": "s0"}},
			wantPerRack: map[string]int{"r1": 1, "r2": 1}, wantFit: 2},
		{name: "spread goes to the emptiest rack first", candidates: racks([]int{3, 3, 3}, 4), need: 4,
			levels: []Level{{Key: "rack", MaxPerDomain: 2}}, members: []map[string]string{{"rack": "r0"}},
			wantPerRack: map[string]int{"r0": 1, "r1": 2, "r2": 1}, wantFit: 4},
		{name: "a full rack's capacity is not counted twice", candidates: racks([]int{1, 4}, 4), need: 4,
			levels: []Level{{Key: "rack", MaxPerDomain: 3}}, wantPerRack: map[string]int{"r0": 1, "r1": 3}, wantFit: 4},
		{name: "hierarchy: at most two per site, one per rack", candidates: racks([]int{1, 1, 1, 1, 1, 1}, 3), need: 4,
			levels:      []Level{{Key: "site", MaxPerDomain: 2}, {Key: "rack", MaxPerDomain: 1}},
			wantPerRack: map[string]int{"r0": 1, "r1": 1, "r3": 1, "r4": 1}, wantFit: 4},
		{name: "hierarchy: the site limit binds before the racks", candidates: racks([]int{1, 1, 1, 1, 1, 1}, 3), need: 5,
			levels: []Level{{Key: "site", MaxPerDomain: 2}, {Key: "rack", MaxPerDomain: 1}}, wantFit: 4},
		{name: "no topology takes the first candidates", candidates: racks([]int{3}, 1), need: 2,
			wantPerRack: map[string]int{"r0": 2}, wantFit: 2},
		{name: "no topology, too few", candidates: racks([]int{1}, 1), need: 2, wantFit: 1},
		{name: "servers without the label are not placed", need: 1, levels: perRack,
			candidates: []Candidate{{Name: "x-0", Labels: map[string]string{"site": "s0"}}}, wantFit: 0},
		{name: "nothing to place", candidates: nil, need: 0, levels: perRack, wantPerRack: map[string]int{}, wantFit: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			p := PlanSet(tc.candidates, tc.members, tc.need, tc.levels, tc.bestEffort)
			g.Expect(p.Fit).To(Equal(tc.wantFit))
			g.Expect(p.Relaxed).To(Equal(tc.wantRelaxed))
			if tc.wantPerRack == nil {
				g.Expect(p.Servers).To(BeNil())
				return
			}
			g.Expect(p.Servers).To(HaveLen(tc.need))
			got := map[string]int{}
			seen := map[string]bool{}
			for _, s := range p.Servers {
				g.Expect(seen[s]).To(BeFalse(), "server %s chosen twice", s)
				seen[s] = true
				got[rackOf(s)]++
			}
			g.Expect(got).To(Equal(tc.wantPerRack))
		})
	}
}

func TestPlanSetShortfall(t *testing.T) {
	g := NewWithT(t)
	cands := append(racks([]int{5, 5}, 4), Candidate{Name: "x", Labels: map[string]string{}})
	p := PlanSet(cands, nil, 3, []Level{{Key: "rack", MaxPerDomain: 1}}, false)
	g.Expect(p.Shortfall(3, 10)).To(Equal(
		"3 replicas to place; the free servers that fit the template hold 2 under the topology (rack=r0: 1, rack=r1: 1); 1 free servers lack a topology label"))
	g.Expect(p.Shortfall(3, 1)).To(ContainSubstring("(rack=r0: 1, 1 more domains)"))
}

func TestPlanSetLarge(t *testing.T) {
	g := NewWithT(t)
	perRack := make([]int, 50)
	for i := range perRack {
		perRack[i] = 20
	}
	p := PlanSet(racks(perRack, 50), nil, 500, []Level{{Key: "rack", MaxPerDomain: 10}}, false)
	g.Expect(p.Servers).To(HaveLen(500))
	count := map[string]int{}
	for _, s := range p.Servers {
		count[rackOf(s)]++
	}
	g.Expect(count).To(HaveLen(50))
	for rack, n := range count {
		g.Expect(n).To(Equal(10), rack)
	}
}

func TestDomainOf(t *testing.T) {
	g := NewWithT(t)
	levels := []Level{{Key: "site"}, {Key: "rack"}}
	d, ok := DomainOf(map[string]string{"site": "s1", "rack": "r2"}, levels)
	g.Expect(ok).To(BeTrue())
	g.Expect(d).To(Equal("s1/r2"))
	_, ok = DomainOf(map[string]string{"rack": "r2"}, levels)
	g.Expect(ok).To(BeFalse())
}
