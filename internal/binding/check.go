package binding

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// Rule is one reason a claim may not bind a server. Check applies the rules in order and
// reports the first that excludes the server; tools that explain a claim (kubectl-metal
// explain) apply every rule. A new rule (quota, topology) is one entry of rules.
type Rule struct {
	// Name says what the rule looks at, for people: "state", "cordon", "taints".
	Name string
	// Excludes returns the condition reason and message when the rule keeps the claim off
	// the server, and an empty reason when it does not. sel is the claim's parsed selector
	// (nil = none).
	Excludes func(s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim, sel labels.Selector) (reason, message string)
	// Remedy says what would lift the rule for this server and claim, for people. It is
	// only asked of a rule that excludes the server.
	Remedy func(s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim, sel labels.Selector) string
}

// Rules returns the binding rules in the order Check applies them.
func Rules() []Rule { return rules }

// rules are ordered so that the first to exclude a server is the most lasting reason: a
// server being deleted or held by another claim is out whatever its state.
var rules = []Rule{
	{
		Name: "deletion",
		Excludes: func(s *metalv1alpha1.Server, _ *metalv1alpha1.ServerClaim, _ labels.Selector) (string, string) {
			if s.DeletionTimestamp.IsZero() {
				return "", ""
			}
			return metalv1alpha1.ReasonServerNotAvailable, fmt.Sprintf("Server %s is being deleted", s.Name)
		},
		Remedy: func(*metalv1alpha1.Server, *metalv1alpha1.ServerClaim, labels.Selector) string {
			return "nothing: the server is going away"
		},
	},
	{
		Name: "claim",
		Excludes: func(s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim, _ labels.Selector) (string, string) {
			if s.Spec.ServerClaimRef == nil || HeldBy(s, c) {
				return "", ""
			}
			return metalv1alpha1.ReasonServerClaimedByOther, fmt.Sprintf("Server %s is bound to claim %s/%s",
				s.Name, s.Spec.ServerClaimRef.Namespace, s.Spec.ServerClaimRef.Name)
		},
		Remedy: func(s *metalv1alpha1.Server, _ *metalv1alpha1.ServerClaim, _ labels.Selector) string {
			ref := s.Spec.ServerClaimRef
			if s.Status.State == metalv1alpha1.ServerStateReleased {
				return fmt.Sprintf("clear its claim reference (claim %s/%s is gone; the server was retained)", ref.Namespace, ref.Name)
			}
			return fmt.Sprintf("delete claim %s/%s, which holds it", ref.Namespace, ref.Name)
		},
	},
	{
		Name: "park",
		Excludes: func(s *metalv1alpha1.Server, _ *metalv1alpha1.ServerClaim, _ labels.Selector) (string, string) {
			if !IsParked(s) {
				return "", ""
			}
			return metalv1alpha1.ReasonServerParked, fmt.Sprintf("Server %s is parked", s.Name)
		},
		Remedy: func(*metalv1alpha1.Server, *metalv1alpha1.ServerClaim, labels.Selector) string {
			return "unpark it (annotation " + metalv1alpha1.OperationAnnotation + "=" + metalv1alpha1.OperationAnnotationUnpark + ")"
		},
	},
	{
		Name: "cordon",
		Excludes: func(s *metalv1alpha1.Server, _ *metalv1alpha1.ServerClaim, _ labels.Selector) (string, string) {
			if !s.Spec.Unclaimable {
				return "", ""
			}
			return metalv1alpha1.ReasonServerCordoned, fmt.Sprintf("Server %s is cordoned (spec.unclaimable)", s.Name)
		},
		Remedy: func(*metalv1alpha1.Server, *metalv1alpha1.ServerClaim, labels.Selector) string {
			return "uncordon it (spec.unclaimable: false)"
		},
	},
	{
		Name: "selector",
		Excludes: func(s *metalv1alpha1.Server, _ *metalv1alpha1.ServerClaim, sel labels.Selector) (string, string) {
			if sel == nil || sel.Matches(labels.Set(s.Labels)) {
				return "", ""
			}
			return metalv1alpha1.ReasonSelectorMismatch, fmt.Sprintf("Server %s does not match spec.serverSelector", s.Name)
		},
		Remedy: func(s *metalv1alpha1.Server, _ *metalv1alpha1.ServerClaim, sel labels.Selector) string {
			return "label the server so that " + unmetRequirements(s, sel) + ", or widen the claim's selector"
		},
	},
	{
		Name: "state",
		Excludes: func(s *metalv1alpha1.Server, _ *metalv1alpha1.ServerClaim, _ labels.Selector) (string, string) {
			if s.Status.State == metalv1alpha1.ServerStateAvailable {
				return "", ""
			}
			return metalv1alpha1.ReasonServerNotAvailable, fmt.Sprintf("Server %s is %s, not Available", s.Name, stateOf(s)) + ServerCause(s)
		},
		Remedy: func(s *metalv1alpha1.Server, _ *metalv1alpha1.ServerClaim, _ labels.Selector) string {
			switch s.Status.State {
			case metalv1alpha1.ServerStateError:
				return "make its BMC reachable again (see its BMCReachable condition)"
			case metalv1alpha1.ServerStateInitial, metalv1alpha1.ServerStateDiscovery, "":
				return "wait until discovery makes it Available"
			case metalv1alpha1.ServerStateReleased:
				return "clear its claim reference"
			case metalv1alpha1.ServerStateWiping:
				return "wait until its wipe ends (status.lastWipe)"
			}
			return "wait until it is Available"
		},
	},
	{
		Name: "wipe",
		Excludes: func(s *metalv1alpha1.Server, _ *metalv1alpha1.ServerClaim, _ labels.Selector) (string, string) {
			if !WipeOwed(s) {
				return "", ""
			}
			return metalv1alpha1.ReasonServerNotAvailable, fmt.Sprintf("Server %s still holds the last claim's data; it is wiped before it is bound again", s.Name)
		},
		Remedy: func(*metalv1alpha1.Server, *metalv1alpha1.ServerClaim, labels.Selector) string {
			return "wait until its wipe ends (the server controller wipes it, or records that its wipe policy needs none)"
		},
	},
	{
		Name: "power",
		Excludes: func(s *metalv1alpha1.Server, _ *metalv1alpha1.ServerClaim, _ labels.Selector) (string, string) {
			if s.Status.PowerState == metalv1alpha1.ServerOffPowerState {
				return "", ""
			}
			return metalv1alpha1.ReasonServerNotAvailable, fmt.Sprintf("Server %s is powered %s, not Off", s.Name, powerOf(s))
		},
		Remedy: func(*metalv1alpha1.Server, *metalv1alpha1.ServerClaim, labels.Selector) string {
			return "wait until it is powered Off (the server controller powers free servers off)"
		},
	},
	{
		Name: "taints",
		Excludes: func(s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim, _ labels.Selector) (string, string) {
			taint, found := UntoleratedTaint(s.Spec.Taints, c.Spec.Tolerations)
			if !found {
				return "", ""
			}
			return metalv1alpha1.ReasonTaintNotTolerated, fmt.Sprintf("Server %s has taint %s that the claim does not tolerate", s.Name, taintString(taint))
		},
		Remedy: func(s *metalv1alpha1.Server, c *metalv1alpha1.ServerClaim, _ labels.Selector) string {
			var missing []string
			for _, t := range s.Spec.Taints {
				if effectOf(t) == metalv1alpha1.TaintEffectNoBind && !toleratedByAny(t, c.Spec.Tolerations) {
					missing = append(missing, taintString(t))
				}
			}
			return "add a toleration to the claim for " + strings.Join(missing, ", ") + ", or remove the taint from the server"
		},
	},
}

func stateOf(s *metalv1alpha1.Server) string {
	if s.Status.State == "" {
		return "unknown"
	}
	return string(s.Status.State)
}

func taintString(t metalv1alpha1.Taint) string {
	return fmt.Sprintf("%s=%s:%s", t.Key, t.Value, effectOf(t))
}

// unmetRequirements lists the selector's requirements the server's labels do not meet, as
// the selector would print them ("hardwareType=gpu-node and rack in (r1,r2)").
func unmetRequirements(s *metalv1alpha1.Server, sel labels.Selector) string {
	reqs, _ := sel.Requirements()
	var unmet []string
	for _, r := range reqs {
		if !r.Matches(labels.Set(s.Labels)) {
			unmet = append(unmet, requirementString(r))
		}
	}
	if len(unmet) == 0 {
		return sel.String() + " holds"
	}
	return strings.Join(unmet, " and ") + " holds"
}

func requirementString(r labels.Requirement) string {
	if r.Operator() == selection.Equals || r.Operator() == selection.DoubleEquals {
		return r.Key() + "=" + r.ValuesUnsorted()[0]
	}
	return r.String()
}
