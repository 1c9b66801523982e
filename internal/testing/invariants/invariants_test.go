package invariants

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

func claim(name, uid, serverRef string, phase metalv1alpha1.Phase) metalv1alpha1.ServerClaim {
	c := metalv1alpha1.ServerClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid)}}
	if serverRef != "" {
		c.Spec.ServerRef = &metalv1alpha1.LocalObjectReference{Name: serverRef}
	}
	c.Status.Phase = phase
	return c
}

func deleting(c metalv1alpha1.ServerClaim) metalv1alpha1.ServerClaim {
	now := metav1.Now()
	c.DeletionTimestamp = &now
	return c
}

func leaseExpired(c metalv1alpha1.ServerClaim) metalv1alpha1.ServerClaim {
	c.Status.Conditions = []metav1.Condition{{Type: metalv1alpha1.ServerClaimBound, Status: metav1.ConditionFalse,
		Reason: metalv1alpha1.ReasonLeaseExpired}}
	return c
}

func server(name, claimName, uid string, state metalv1alpha1.ServerState) metalv1alpha1.Server {
	s := metalv1alpha1.Server{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if claimName != "" {
		s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: "ns", Name: claimName, UID: uid}
	}
	s.Status.State = state
	return s
}

func TestEvaluate(t *testing.T) {
	all := func(string) bool { return true }
	cases := []struct {
		name                  string
		servers               []metalv1alpha1.Server
		claims                []metalv1alpha1.ServerClaim
		bound, violations     int
		unsettled, unboundNum int
		shared                int
	}{
		{"one binding", []metalv1alpha1.Server{server("s1", "c1", "u1", metalv1alpha1.ServerStateReserved)},
			[]metalv1alpha1.ServerClaim{claim("c1", "u1", "s1", metalv1alpha1.PhaseBound)}, 1, 0, 0, 0, 0},
		{"one claim on two servers", []metalv1alpha1.Server{
			server("s1", "c1", "u1", metalv1alpha1.ServerStateReserved), server("s2", "c1", "u1", metalv1alpha1.ServerStateReserved)},
			[]metalv1alpha1.ServerClaim{claim("c1", "u1", "s1", metalv1alpha1.PhaseBound)}, 1, 2, 1, 0, 0},
		{"taken up by a server the claim does not name", []metalv1alpha1.Server{server("s2", "c1", "u1", metalv1alpha1.ServerStateReserved)},
			[]metalv1alpha1.ServerClaim{claim("c1", "u1", "s1", metalv1alpha1.PhaseBound)}, 0, 1, 1, 0, 0},
		{"server holds a deleted claim", []metalv1alpha1.Server{server("s1", "c1", "old", metalv1alpha1.ServerStateReserved)},
			[]metalv1alpha1.ServerClaim{claim("c1", "new", "", metalv1alpha1.PhaseUnbound)}, 0, 0, 1, 1, 0},
		{"Bound claim without server", nil,
			[]metalv1alpha1.ServerClaim{claim("c1", "u1", "s1", metalv1alpha1.PhaseBound)}, 0, 0, 1, 1, 0},
		{"Reserved server without claim", []metalv1alpha1.Server{server("s1", "", "", metalv1alpha1.ServerStateReserved)},
			nil, 0, 0, 1, 0, 0},
		{"held, serverRef not written yet", []metalv1alpha1.Server{server("s1", "c1", "u1", metalv1alpha1.ServerStateAvailable)},
			[]metalv1alpha1.ServerClaim{claim("c1", "u1", "", metalv1alpha1.PhaseUnbound)}, 0, 0, 1, 0, 0},
		{"two managers proposed a server each", []metalv1alpha1.Server{
			server("s1", "c1", "u1", metalv1alpha1.ServerStateAvailable), server("s2", "c1", "u1", metalv1alpha1.ServerStateAvailable)},
			[]metalv1alpha1.ServerClaim{claim("c1", "u1", "", metalv1alpha1.PhaseUnbound)}, 0, 0, 2, 0, 0},
		{"the losing proposal is not released yet", []metalv1alpha1.Server{
			server("s1", "c1", "u1", metalv1alpha1.ServerStateReserved), server("s2", "c1", "u1", metalv1alpha1.ServerStateAvailable)},
			[]metalv1alpha1.ServerClaim{claim("c1", "u1", "s1", metalv1alpha1.PhaseBound)}, 1, 0, 2, 0, 0},
		{"two Bound claims name one server", []metalv1alpha1.Server{server("s1", "c1", "u1", metalv1alpha1.ServerStateReserved)},
			[]metalv1alpha1.ServerClaim{claim("c1", "u1", "s1", metalv1alpha1.PhaseBound), claim("c2", "u2", "s1", metalv1alpha1.PhaseBound)},
			1, 2, 1, 1, 1},
		{"two claims name one server by hand", []metalv1alpha1.Server{server("s1", "c1", "u1", metalv1alpha1.ServerStateReserved)},
			[]metalv1alpha1.ServerClaim{claim("c1", "u1", "s1", metalv1alpha1.PhaseBound), claim("c2", "u2", "s1", metalv1alpha1.PhaseUnbound)},
			1, 0, 0, 1, 1},
		{"a claim being deleted still names the server another claim took", []metalv1alpha1.Server{server("s1", "c2", "u2", metalv1alpha1.ServerStateAvailable)},
			[]metalv1alpha1.ServerClaim{deleting(claim("c1", "u1", "s1", metalv1alpha1.PhaseUnbound)), claim("c2", "u2", "s1", metalv1alpha1.PhaseUnbound)},
			1, 0, 0, 1, 0},
		{"a claim whose lease ended still names the server another claim took", []metalv1alpha1.Server{server("s1", "c2", "u2", metalv1alpha1.ServerStateReserved)},
			[]metalv1alpha1.ServerClaim{leaseExpired(claim("c1", "u1", "s1", metalv1alpha1.PhaseUnbound)), claim("c2", "u2", "s1", metalv1alpha1.PhaseBound)},
			1, 0, 0, 1, 0},
		{"a Retain server keeps the claim whose lease ended", []metalv1alpha1.Server{server("s1", "c1", "u1", metalv1alpha1.ServerStateReleased)},
			[]metalv1alpha1.ServerClaim{leaseExpired(claim("c1", "u1", "s1", metalv1alpha1.PhaseUnbound))},
			0, 0, 0, 1, 0},
		{"Bound claim whose server references another", []metalv1alpha1.Server{server("s1", "c2", "u2", metalv1alpha1.ServerStateReserved)},
			[]metalv1alpha1.ServerClaim{claim("c1", "u1", "s1", metalv1alpha1.PhaseBound), claim("c2", "u2", "s1", metalv1alpha1.PhaseUnbound)},
			1, 1, 1, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := evaluate(tc.servers, tc.claims, all)
			g.Expect(r.Bound).To(Equal(tc.bound), r.String())
			g.Expect(r.Violations).To(HaveLen(tc.violations), r.String())
			g.Expect(r.Unsettled).To(HaveLen(tc.unsettled), r.String())
			g.Expect(r.Unbound).To(Equal(tc.unboundNum), r.String())
			g.Expect(r.SharedServerRefs).To(HaveLen(tc.shared), r.String())
		})
	}
}
