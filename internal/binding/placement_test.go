package binding

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

func TestPreferenceOf(t *testing.T) {
	withPlacement := func(p *metalv1alpha1.Placement) *metalv1alpha1.ServerClaim {
		return &metalv1alpha1.ServerClaim{Spec: metalv1alpha1.ServerClaimSpec{Placement: p,
			ServerSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"type": "gpu"},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "site", Operator: metav1.LabelSelectorOpExists}}}}}
	}
	domains := map[string]int{"r1": 2}
	cases := []struct {
		name   string
		claim  *metalv1alpha1.ServerClaim
		wantOK bool
		want   Preference
	}{
		{"no placement: today's spreading", withPlacement(nil), false, Preference{}},
		{"Spread without group: today's spreading", withPlacement(&metalv1alpha1.Placement{Policy: metalv1alpha1.PlacementSpread}), false, Preference{}},
		{"Pack names the selector's keys", withPlacement(&metalv1alpha1.Placement{Policy: metalv1alpha1.PlacementPack}), true,
			Preference{Pack: true, SelectorKeys: map[string]bool{"type": true, "site": true}}},
		{"Spread with a group", withPlacement(&metalv1alpha1.Placement{Policy: metalv1alpha1.PlacementSpread, Group: "g", TopologyKey: "rack"}), true,
			Preference{SelectorKeys: map[string]bool{"type": true, "site": true}, TopologyKey: "rack", GroupDomains: domains}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, ok := PreferenceOf(tc.claim, domains)
			g.Expect(ok).To(Equal(tc.wantOK))
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

func TestPreferenceScore(t *testing.T) {
	small := Candidate{Name: "small", Labels: map[string]string{"type": "gpu", "rack": "r1"}}
	large := Candidate{Name: "large", Labels: map[string]string{"type": "gpu", "rack": "r2", "gpus": "8", "nvme": "yes"}}
	unlabelled := Candidate{Name: "bare", Labels: map[string]string{"type": "gpu"}}
	cases := []struct {
		name string
		pref Preference
		c    Candidate
		want int
	}{
		{"pack counts labels beyond the selector", Preference{Pack: true, SelectorKeys: map[string]bool{"type": true}}, small, 1},
		{"pack: larger servers score worse", Preference{Pack: true, SelectorKeys: map[string]bool{"type": true}}, large, 3},
		{"group: an empty domain is best", Preference{TopologyKey: "rack", GroupDomains: map[string]int{"r1": 1}}, large, 0},
		{"group: a domain with a member scores by members", Preference{TopologyKey: "rack", GroupDomains: map[string]int{"r1": 2}}, small, 2 * groupWeight},
		{"group: no topology label is worse than the fullest domain", Preference{TopologyKey: "rack", GroupDomains: map[string]int{"r1": 2}}, unlabelled, 3 * groupWeight},
		{"group before pack", Preference{Pack: true, SelectorKeys: map[string]bool{}, TopologyKey: "rack", GroupDomains: map[string]int{"r1": 1}}, small, groupWeight + 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(tc.pref.Score(tc.c)).To(Equal(tc.want))
		})
	}
}

func TestPoolPickBest(t *testing.T) {
	g := NewWithT(t)
	p := NewPool()
	p.Observe(freeServer("big", map[string]string{"type": "gpu", "gpus": "8", "rack": "r1"}))
	p.Observe(freeServer("mid", map[string]string{"type": "gpu", "gpus": "4", "rack": "r2"}))
	p.Observe(freeServer("tiny", map[string]string{"type": "gpu"}))
	pack := Preference{Pack: true, SelectorKeys: map[string]bool{"type": true}}
	match := map[string]string{"type": "gpu"}

	c, ok, _ := p.PickBest(nil, match, "seed", nil, pack.Score)
	g.Expect(ok).To(BeTrue())
	g.Expect(c.Name).To(Equal("tiny"), "best fit: no labels beyond the selector")
	c2, ok, _ := p.PickBest(nil, match, "seed", nil, pack.Score)
	g.Expect(ok).To(BeTrue())
	g.Expect(c2.Name).To(BeElementOf("big", "mid"), "the held server is skipped")

	group := Preference{TopologyKey: "rack", GroupDomains: map[string]int{"r1": 1}}
	p.Done("tiny")
	p.Done(c2.Name)
	c3, ok, _ := p.PickBest(nil, match, "other", func(c Candidate) bool { return c.Name != "tiny" }, group.Score)
	g.Expect(ok).To(BeTrue())
	g.Expect(c3.Name).To(Equal("mid"), "anti-affinity: the rack without a group member")
	p.Done(c3.Name)

	free := p.Free(nil, match, nil)
	g.Expect(free).To(HaveLen(3))
	g.Expect(free[0].Name).To(Equal("big"), "sorted by name")
	p.Hold([]string{"big", "mid"})
	g.Expect(p.Free(nil, match, nil)).To(HaveLen(1))
	_, ok, busy := p.PickBest(nil, map[string]string{"gpus": "8"}, "s", nil, pack.Score)
	g.Expect(ok).To(BeFalse())
	g.Expect(busy).To(BeTrue(), "held by a set's plan")
	g.Expect(p.Free(nil, map[string]string{"no": "such"}, nil)).To(BeEmpty())
}
