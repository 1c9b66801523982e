package cli

import (
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// TestExplainClaimNamesTheRuleThatExcludesEachServer crafts one server per binding rule
// and checks that explain gives each the controller's reason, its message and what would
// make it bindable.
func TestExplainClaimNamesTheRuleThatExcludesEachServer(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	c := newCLI(t, ns)
	group := uniqueName(t, "group")
	match := map[string]string{"test": group, "class": "big"}
	claim := &metalv1alpha1.ServerClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "want-big"},
		Spec: metalv1alpha1.ServerClaimSpec{Power: metalv1alpha1.PowerOn, Image: "img",
			ServerSelector: &metav1.LabelSelector{MatchLabels: match},
			Tolerations:    []metalv1alpha1.Toleration{{Key: "tolerated", Operator: metalv1alpha1.TolerationOpExists}}},
	}
	env.Create(t, claim)
	available, off := metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState
	type crafted struct {
		name         string
		labels       map[string]string
		state        metalv1alpha1.ServerState
		power        metalv1alpha1.ServerPowerState
		mutate       func(*metalv1alpha1.Server)
		verdict      string
		reason       string
		message      string // a regular expression
		firstRemedy  string // a regular expression
		remedyLength int
	}
	cases := []crafted{
		{name: "discovering", labels: match, state: metalv1alpha1.ServerStateDiscovery, power: off,
			verdict: verdictExcluded, reason: metalv1alpha1.ReasonServerNotAvailable,
			message: `is Discovery, not Available$`, firstRemedy: `wait until discovery makes it Available`, remedyLength: 1},
		{name: "powered-on", labels: match, state: available, power: metalv1alpha1.ServerOnPowerState,
			verdict: verdictExcluded, reason: metalv1alpha1.ReasonServerNotAvailable,
			message: `is powered On, not Off$`, firstRemedy: `wait until it is powered Off`, remedyLength: 1},
		{name: "cordoned", labels: match, state: available, power: off,
			mutate:  func(s *metalv1alpha1.Server) { s.Spec.Unclaimable = true },
			verdict: verdictExcluded, reason: metalv1alpha1.ReasonServerCordoned,
			message: `is cordoned \(spec.unclaimable\)$`, firstRemedy: `uncordon it`, remedyLength: 1},
		{name: "parked", labels: match, state: available, power: off,
			mutate: func(s *metalv1alpha1.Server) {
				s.Annotations = map[string]string{metalv1alpha1.ParkedAnnotation: "true"}
			},
			verdict: verdictExcluded, reason: metalv1alpha1.ReasonServerParked,
			message: `is parked$`, firstRemedy: `unpark it`, remedyLength: 1},
		{name: "tainted", labels: match, state: available, power: off,
			mutate: func(s *metalv1alpha1.Server) {
				s.Spec.Taints = []metalv1alpha1.Taint{
					{Key: "tolerated", Value: "x", Effect: metalv1alpha1.TaintEffectNoBind},
					{Key: "maintenance", Value: "disk", Effect: metalv1alpha1.TaintEffectNoBind},
				}
			},
			verdict: verdictExcluded, reason: metalv1alpha1.ReasonTaintNotTolerated,
			message:     `has taint maintenance=disk:NoBind that the claim does not tolerate$`,
			firstRemedy: `^add a toleration to the claim for maintenance=disk:NoBind, or remove`, remedyLength: 1},
		{name: "small", labels: map[string]string{"test": group, "class": "small"}, state: available, power: off,
			verdict: verdictExcluded, reason: metalv1alpha1.ReasonSelectorMismatch,
			message: `does not match spec.serverSelector$`, firstRemedy: `^label the server so that class=big holds`, remedyLength: 1},
		{name: "taken", labels: match, state: metalv1alpha1.ServerStateReserved, power: metalv1alpha1.ServerOnPowerState,
			mutate: func(s *metalv1alpha1.Server) {
				s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: ns, Name: "other"}
			},
			verdict: verdictExcluded, reason: metalv1alpha1.ReasonServerClaimedByOther,
			message: `is bound to claim ` + ns + `/other$`, firstRemedy: `^delete claim ` + ns + `/other`,
			remedyLength: 3}, // and it is Reserved, and powered On
		{name: "bindable", labels: match, state: available, power: off, verdict: verdictBindable},
	}
	for _, tc := range cases {
		server(t, uniqueName(t, tc.name), tc.labels, tc.state, tc.power, func(s *metalv1alpha1.Server) {
			if tc.mutate != nil {
				tc.mutate(s)
			}
		})
	}

	var e explanation
	g.Expect(json.Unmarshal([]byte(c.ok("explain", "claim", claim.Name, "-o", "json")), &e)).To(Succeed())
	g.Expect(e.Claim).To(Equal(ns + "/want-big"))
	verdicts := map[string]serverVerdict{}
	for _, v := range e.Servers {
		verdicts[v.Server] = v
	}
	for _, tc := range cases {
		v, ok := verdicts[uniqueName(t, tc.name)]
		g.Expect(ok).To(BeTrue(), "%s is not listed", tc.name)
		g.Expect(v.Verdict).To(Equal(tc.verdict), tc.name)
		g.Expect(v.Reason).To(Equal(tc.reason), tc.name)
		if tc.verdict == verdictBindable {
			g.Expect(v.Message).To(BeEmpty(), tc.name)
			g.Expect(v.ToBind).To(BeEmpty(), tc.name)
			continue
		}
		g.Expect(v.Message).To(MatchRegexp(`^Server `+uniqueName(t, tc.name)+` `+tc.message), tc.name)
		g.Expect(v.ToBind).To(HaveLen(tc.remedyLength), tc.name)
		g.Expect(v.ToBind[0]).To(MatchRegexp(tc.firstRemedy), tc.name)
	}

	// The table says the same, one row per server.
	out := c.ok("explain", "claim", claim.Name)
	g.Expect(out).To(ContainSubstring("ServerClaim " + ns + "/want-big is Unbound"))
	g.Expect(out).To(MatchRegexp(`(?m)^` + uniqueName(t, "bindable") + `\s+bindable\s+-\s+-\s+-$`))
	g.Expect(out).To(MatchRegexp(`(?m)^` + uniqueName(t, "cordoned") + `\s+excluded\s+ServerCordoned\s+Server \S+ is cordoned`))
	// -n overrides the context's namespace.
	_, _, err := c.run("", "explain", "claim", claim.Name, "-n", "default")
	g.Expect(err).To(MatchError(ContainSubstring("ServerClaim default/want-big")))
}

func TestExplainClaimByNameLooksAtThatServerOnly(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	c := newCLI(t, ns)
	s := server(t, uniqueName(t, "mine"), nil, metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerOnPowerState)
	server(t, uniqueName(t, "other"), nil, metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState)
	claim := &metalv1alpha1.ServerClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "by-name"},
		Spec: metalv1alpha1.ServerClaimSpec{Power: metalv1alpha1.PowerOn, Image: "img",
			ServerRef: &metalv1alpha1.LocalObjectReference{Name: s.Name}},
	}
	env.Create(t, claim)
	out := c.ok("explain", "claim", claim.Name)
	g.Expect(out).To(ContainSubstring("1 servers considered: 0 bindable, 0 held by this claim, 1 excluded"))
	g.Expect(out).To(MatchRegexp(`(?m)^` + s.Name + `\s+excluded\s+ServerNotAvailable\s+Server \S+ is Reserved, not Available`))

	// Once the server holds the claim, it is the claim's.
	cur := get(t, s)
	cur.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: ns, Name: claim.Name, UID: string(claim.UID)}
	g.Expect(env.Client.Update(t.Context(), cur)).To(Succeed())
	g.Expect(c.ok("explain", "claim", claim.Name)).To(MatchRegexp(`(?m)^` + s.Name + `\s+held\s+-\s+Server \S+ holds this claim's binding and is Reserved`))

	missing := &metalv1alpha1.ServerClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "missing"},
		Spec: metalv1alpha1.ServerClaimSpec{Power: metalv1alpha1.PowerOn, Image: "img",
			ServerRef: &metalv1alpha1.LocalObjectReference{Name: "no-such-server"}},
	}
	env.Create(t, missing)
	g.Expect(c.ok("explain", "claim", "missing")).To(ContainSubstring("ServerNotFound: Server no-such-server does not exist"))
}
