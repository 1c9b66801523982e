package binding

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/message"
)

func ruleClaim(mutate ...func(*metalv1alpha1.ServerClaim)) *metalv1alpha1.ServerClaim {
	c := &metalv1alpha1.ServerClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: types.UID("u1")}}
	c.Spec.Power = metalv1alpha1.PowerOn
	for _, m := range mutate {
		m(c)
	}
	return c
}

func ruleServer(mutate ...func(*metalv1alpha1.Server)) *metalv1alpha1.Server {
	s := &metalv1alpha1.Server{ObjectMeta: metav1.ObjectMeta{Name: "s1"}}
	s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: "ns", Name: "c", UID: "u1"}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func names(name string) func(*metalv1alpha1.ServerClaim) {
	return func(c *metalv1alpha1.ServerClaim) { c.Spec.ServerRef = &metalv1alpha1.LocalObjectReference{Name: name} }
}

func inState(state metalv1alpha1.ServerState) func(*metalv1alpha1.Server) {
	return func(s *metalv1alpha1.Server) { s.Status.State = state }
}

func TestConfirmedAndRefused(t *testing.T) {
	cases := []struct {
		name               string
		server             *metalv1alpha1.Server
		claim              *metalv1alpha1.ServerClaim
		confirmed, refused bool
	}{
		{"both sides agree", ruleServer(), ruleClaim(names("s1")), true, false},
		{"claim names nothing yet: a proposal", ruleServer(), ruleClaim(), false, false},
		{"claim names another server", ruleServer(), ruleClaim(names("s2")), false, true},
		{"server references another uid", ruleServer(func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef.UID = "old" }),
			ruleClaim(names("s1")), false, false},
		{"reference without uid, by name", ruleServer(func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef.UID = "" }),
			ruleClaim(names("s1")), true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Confirmed(tc.server, tc.claim)).To(Equal(tc.confirmed))
			g.Expect(Refused(tc.server, tc.claim)).To(Equal(tc.refused))
		})
	}
}

func TestTakenUp(t *testing.T) {
	cases := []struct {
		server *metalv1alpha1.Server
		want   bool
	}{
		{ruleServer(inState(metalv1alpha1.ServerStateAvailable)), false},
		{ruleServer(inState(metalv1alpha1.ServerStateReserved)), true},
		{ruleServer(inState(metalv1alpha1.ServerStateReleased)), true},
		{ruleServer(inState(metalv1alpha1.ServerStateParked)), true},
		{ruleServer(inState(metalv1alpha1.ServerStateError)), true},
		{ruleServer(inState(metalv1alpha1.ServerStateDiscovery)), false},
		{ruleServer(inState(metalv1alpha1.ServerStateAvailable), func(s *metalv1alpha1.Server) { s.Status.NetworkBootClaimUID = "u1" }), true},
		{ruleServer(inState(metalv1alpha1.ServerStateAvailable), func(s *metalv1alpha1.Server) { s.Status.NetworkBootClaimUID = "other" }), false},
	}
	for _, tc := range cases {
		g := NewWithT(t)
		g.Expect(TakenUp(tc.server, ruleClaim())).To(Equal(tc.want), "state %s, booted for %q", tc.server.Status.State, tc.server.Status.NetworkBootClaimUID)
	}
}

func TestClaimIsLive(t *testing.T) {
	deleting := metav1.Now()
	cases := []struct {
		name  string
		claim *metalv1alpha1.ServerClaim
		want  bool
	}{
		{"names the server", ruleClaim(names("s1")), true},
		{"names nothing yet", ruleClaim(), true},
		{"names another server", ruleClaim(names("s2")), false},
		{"re-created under the name", ruleClaim(func(c *metalv1alpha1.ServerClaim) { c.UID = "u2" }), false},
		{"being deleted", ruleClaim(func(c *metalv1alpha1.ServerClaim) { c.DeletionTimestamp = &deleting }), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(ClaimIsLive(ruleServer(), tc.claim)).To(Equal(tc.want))
		})
	}
}

func TestRecoveryState(t *testing.T) {
	discovered := func(s *metalv1alpha1.Server) { s.Status.Manufacturer = "Contoso" }
	free := func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef = nil }
	booted := func(uid string) func(*metalv1alpha1.Server) {
		return func(s *metalv1alpha1.Server) { s.Status.NetworkBootClaimUID = uid }
	}
	noUID := func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef.UID = "" }
	cases := []struct {
		name      string
		server    *metalv1alpha1.Server
		confirmed bool
		want      metalv1alpha1.ServerState
	}{
		{"confirmed binding", ruleServer(discovered), true, metalv1alpha1.ServerStateReserved},
		{"booted for its claim", ruleServer(discovered, booted("u1")), false, metalv1alpha1.ServerStateReserved},
		{"booted, reference without uid", ruleServer(discovered, booted("u1"), noUID), false, metalv1alpha1.ServerStateReserved},
		{"a proposal is decided again", ruleServer(discovered), false, metalv1alpha1.ServerStateAvailable},
		{"booted for an older claim", ruleServer(discovered, booted("old")), false, metalv1alpha1.ServerStateAvailable},
		{"never discovered", ruleServer(free), false, metalv1alpha1.ServerStateInitial},
		{"free", ruleServer(free, discovered), false, metalv1alpha1.ServerStateAvailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(RecoveryState(tc.server, tc.confirmed)).To(Equal(tc.want))
		})
	}
}

func TestHeldByReferenceWithoutUID(t *testing.T) {
	g := NewWithT(t)
	noUID := func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef.UID = "" }
	s := ruleServer(noUID)
	g.Expect(HeldBy(s, ruleClaim())).To(BeTrue(), "a reference without uid names the claim of that name")
	s.Status.NetworkBootClaimUID = "old"
	g.Expect(HeldBy(s, ruleClaim())).To(BeFalse(), "but not once the server booted for another claim of that name")
	g.Expect(ClaimIsLive(s, ruleClaim())).To(BeFalse())
	s.Status.NetworkBootClaimUID = "u1"
	g.Expect(HeldBy(s, ruleClaim())).To(BeTrue())
}

// The server controller and the binding rules agree on what parked means: the marker, of
// any value, parks a server for both.
func TestParked(t *testing.T) {
	cases := []struct {
		name           string
		annotations    map[string]string
		state          metalv1alpha1.ServerState
		marker, parked bool
	}{
		{"nothing", nil, metalv1alpha1.ServerStateAvailable, false, false},
		{"marker true", map[string]string{metalv1alpha1.ParkedAnnotation: "true"}, metalv1alpha1.ServerStateAvailable, true, true},
		{"marker of another value", map[string]string{metalv1alpha1.ParkedAnnotation: "yes"}, metalv1alpha1.ServerStateAvailable, true, true},
		{"park requested", map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationPark}, metalv1alpha1.ServerStateAvailable, false, true},
		{"state Parked", nil, metalv1alpha1.ServerStateParked, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			s := ruleServer(inState(tc.state), func(s *metalv1alpha1.Server) { s.Annotations = tc.annotations })
			g.Expect(HasParkedMarker(s)).To(Equal(tc.marker))
			g.Expect(IsParked(s)).To(Equal(tc.parked))
		})
	}
}

func TestCopyLabels(t *testing.T) {
	g := NewWithT(t)
	s := ruleServer(func(s *metalv1alpha1.Server) { s.Labels = map[string]string{"own": "x", "rack": "r1"} })
	CopyLabels(s, map[string]string{"rack": "r1", "site": "a"})
	g.Expect(s.Labels).To(Equal(map[string]string{"own": "x", "rack": "r1", "site": "a"}))
	g.Expect(s.Annotations[metalv1alpha1.BMCLabelsAnnotation]).To(Equal("site"), "rack had the same value before: not the BMC's")

	CopyLabels(s, map[string]string{"rack": "r2"})
	g.Expect(s.Labels).To(Equal(map[string]string{"own": "x", "rack": "r2"}), "site was the BMC's and is gone; rack changed")
	g.Expect(s.Annotations[metalv1alpha1.BMCLabelsAnnotation]).To(Equal("rack"))

	CopyLabels(s, nil)
	g.Expect(s.Labels).To(Equal(map[string]string{"own": "x"}))
}

func TestReadyCondition(t *testing.T) {
	ready := &metalv1alpha1.ServerBootConfiguration{}
	ready.Status.State = metalv1alpha1.ServerBootConfigurationStateReady
	pending := &metalv1alpha1.ServerBootConfiguration{}
	on := func(s *metalv1alpha1.Server) { s.Status.PowerState = metalv1alpha1.ServerOnPowerState }
	cases := []struct {
		name    string
		server  *metalv1alpha1.Server
		sbc     *metalv1alpha1.ServerBootConfiguration
		problem string
		reason  string
	}{
		{"ready", ruleServer(inState(metalv1alpha1.ServerStateReserved), on), ready, "", metalv1alpha1.ReasonReady},
		{"powering on", ruleServer(inState(metalv1alpha1.ServerStateReserved)), ready, "", metalv1alpha1.ReasonServerPoweringOn},
		{"configuration pending", ruleServer(inState(metalv1alpha1.ServerStateReserved), on), pending, "", metalv1alpha1.ReasonBootConfigurationPending},
		{"no configuration yet", ruleServer(inState(metalv1alpha1.ServerStateReserved), on), nil, "", metalv1alpha1.ReasonBootConfigurationPending},
		{"foreign configuration", ruleServer(inState(metalv1alpha1.ServerStateReserved), on), ready, "not ours", metalv1alpha1.ReasonBootConfigurationFailed},
		{"server in Error", ruleServer(inState(metalv1alpha1.ServerStateError), on), ready, "", metalv1alpha1.ReasonServerError},
		{"server parked", ruleServer(inState(metalv1alpha1.ServerStateParked), on), ready, "", metalv1alpha1.ReasonServerParked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c := ReadyCondition(ruleClaim(names("s1")), tc.server, tc.sbc, tc.problem)
			g.Expect(c.Type).To(Equal(metalv1alpha1.ServerClaimReady))
			g.Expect(c.Reason).To(Equal(tc.reason), c.Message)
			g.Expect(c.Status == metav1.ConditionTrue).To(Equal(tc.reason == metalv1alpha1.ReasonReady))
		})
	}
}

// A claim whose server cannot use its BMC says why in its own conditions: the server's
// reason, the HTTP status the BMC answered with (if it answered), since when, and the
// server's message, cut to a bound.
func TestServerCause(t *testing.T) {
	since := metav1.NewTime(time.Date(2026, 12, 2, 4, 1, 2, 0, time.UTC))
	unreachable := func(msg string) func(*metalv1alpha1.Server) {
		return func(s *metalv1alpha1.Server) {
			s.Status.Conditions = []metav1.Condition{{Type: metalv1alpha1.ServerBMCReachable, Status: metav1.ConditionFalse,
				Reason: metalv1alpha1.ReasonBMCUnreachable, Message: msg, LastTransitionTime: since}}
		}
	}
	const answered503 = "redfish: GET /redfish/v1/Systems/1: unavailable (503): The service is temporarily unavailable."
	cases := []struct {
		name   string
		server *metalv1alpha1.Server
		want   string
	}{
		{"503", ruleServer(inState(metalv1alpha1.ServerStateError), unreachable(answered503)),
			"Server s is in Error: BMC Unreachable (HTTP 503) since 2026-12-02T04:01:02Z: " + answered503},
		{"refused", ruleServer(inState(metalv1alpha1.ServerStateError),
			unreachable("Get \"http://10.0.0.1/redfish/v1/Systems/1\": dial tcp 10.0.0.1:443: connect: connection refused")),
			"Server s is in Error: BMC Unreachable since 2026-12-02T04:01:02Z: Get \"http://10.0.0.1/redfish/v1/Systems/1\": dial tcp 10.0.0.1:443: connect: connection refused"},
		{"no condition", ruleServer(inState(metalv1alpha1.ServerStateError)), "Server s is in Error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			tc.server.Name = "s"
			c := ReadyCondition(ruleClaim(names("c")), tc.server, nil, "")
			g.Expect(c.Reason).To(Equal(metalv1alpha1.ReasonServerError))
			g.Expect(c.Message).To(Equal(tc.want))

			// A claim waiting for this server (Bound) says the same.
			reason, msg := Check(tc.server, ruleClaim(), nil)
			g.Expect(reason).To(Equal(metalv1alpha1.ReasonServerNotAvailable))
			g.Expect(msg).To(Equal(strings.Replace(tc.want, "is in Error", "is Error, not Available", 1)))
		})
	}

	g := NewWithT(t)
	long := ruleServer(inState(metalv1alpha1.ServerStateError), unreachable(answered503+strings.Repeat("x", 2000)))
	g.Expect(len(ServerCause(long))).To(BeNumerically("<=", message.MaxCondition+len("...")))
}

func TestWipeOwed(t *testing.T) {
	rec := func(uid string, r metalv1alpha1.WipeResult) *metalv1alpha1.WipeRecord {
		return &metalv1alpha1.WipeRecord{ClaimUID: uid, Result: r, Policy: metalv1alpha1.WipePolicyQuick}
	}
	for name, tc := range map[string]struct {
		booted string
		last   *metalv1alpha1.WipeRecord
		want   bool
	}{
		"never booted for a claim":          {},
		"booted, never wiped":               {booted: "a", want: true},
		"wiped after that claim":            {booted: "a", last: rec("a", metalv1alpha1.WipeResultSucceeded)},
		"skipped on purpose for that claim": {booted: "a", last: rec("a", metalv1alpha1.WipeResultSkipped)},
		"wipe failed":                       {booted: "a", last: rec("a", metalv1alpha1.WipeResultFailed), want: true},
		"released under policy Disabled":    {booted: "a", last: rec("a", metalv1alpha1.WipeResultNotRequired)},
		"wipe running":                      {booted: "a", last: rec("a", metalv1alpha1.WipeResultRunning), want: true},
		"wiped after an earlier claim only": {booted: "b", last: rec("a", metalv1alpha1.WipeResultSucceeded), want: true},
	} {
		s := &metalv1alpha1.Server{Status: metalv1alpha1.ServerStatus{NetworkBootClaimUID: tc.booted, LastWipe: tc.last}}
		if got := WipeOwed(s); got != tc.want {
			t.Errorf("%s: WipeOwed = %v, want %v", name, got, tc.want)
		}
	}
}
