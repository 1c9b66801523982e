package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
)

// Verdicts of explain, per server.
const (
	verdictBindable = "bindable"
	verdictHeld     = "held"
	verdictExcluded = "excluded"
)

// explanation is what `explain claim` prints, and its JSON and YAML shape.
type explanation struct {
	Claim string `json:"claim"`
	Phase string `json:"phase"`
	// Bound is the claim's Bound condition as the controller last wrote it.
	Bound   string `json:"bound,omitempty"`
	Problem string `json:"problem,omitempty"`
	// Servers are the servers the claim could have taken: the one it names, else all.
	Servers []serverVerdict `json:"servers"`
}

type serverVerdict struct {
	Server  string `json:"server"`
	Verdict string `json:"verdict"`
	// Rule, Reason and Message are the first rule that excludes the server, as the claim
	// controller would report it.
	Rule    string `json:"rule,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// ToBind lists what would lift every rule that excludes the server.
	ToBind []string `json:"toBind,omitempty"`
}

func newExplainCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "explain",
		Short: "Explain why an object is as it is",
	}
	var output string
	claim := &cobra.Command{
		Use:   "claim NAME",
		Short: "For every server the claim could take, the rule that excludes it and what would make it bindable",
		Example: `  kubectl metal explain claim my-claim -n tenant-a
  kubectl metal explain claim my-claim -o yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeClaims,
		RunE: g.withClient(func(ctx context.Context, c client.Client, args []string) error {
			ns, err := g.ns()
			if err != nil {
				return err
			}
			e, err := explainClaim(ctx, c, ns, args[0])
			if err != nil {
				return err
			}
			if ok, err := printStructured(g.streams.Out, output, e); ok {
				return err
			}
			return printExplanation(g, e)
		}),
	}
	addOutputFlag(claim, &output, outputJSON, outputYAML)
	cmd.AddCommand(claim)
	return cmd
}

// explainClaim applies the binding rules to the claim and every server it could take.
func explainClaim(ctx context.Context, c client.Client, ns, name string) (*explanation, error) {
	claim := &metalv1alpha1.ServerClaim{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, claim); err != nil {
		return nil, fmt.Errorf("reading ServerClaim %s/%s: %w", ns, name, err)
	}
	e := &explanation{Claim: ns + "/" + name, Phase: string(claim.Status.Phase), Servers: []serverVerdict{}}
	if e.Phase == "" {
		e.Phase = string(metalv1alpha1.PhaseUnbound)
	}
	if cond := meta.FindStatusCondition(claim.Status.Conditions, metalv1alpha1.ServerClaimBound); cond != nil {
		e.Bound = fmt.Sprintf("%s=%s (%s): %s", cond.Type, cond.Status, cond.Reason, cond.Message)
	}
	var sel labels.Selector
	if claim.Spec.ServerSelector != nil {
		var err error
		if sel, err = metav1.LabelSelectorAsSelector(claim.Spec.ServerSelector); err != nil {
			e.Problem = fmt.Sprintf("%s: spec.serverSelector is invalid: %v", metalv1alpha1.ReasonInvalidSelector, err)
			return e, nil
		}
	}
	var servers []metalv1alpha1.Server
	if ref := claim.Spec.ServerRef; ref != nil {
		s := &metalv1alpha1.Server{}
		err := c.Get(ctx, client.ObjectKey{Name: ref.Name}, s)
		switch {
		case apierrors.IsNotFound(err):
			e.Problem = fmt.Sprintf("%s: Server %s does not exist", metalv1alpha1.ReasonServerNotFound, ref.Name)
			return e, nil
		case err != nil:
			return nil, fmt.Errorf("reading Server %s: %w", ref.Name, err)
		}
		servers = []metalv1alpha1.Server{*s}
	} else {
		list := &metalv1alpha1.ServerList{}
		if err := c.List(ctx, list); err != nil {
			return nil, fmt.Errorf("listing servers: %w", err)
		}
		servers = list.Items
	}
	for i := range servers {
		e.Servers = append(e.Servers, judge(&servers[i], claim, sel))
	}
	slices.SortFunc(e.Servers, func(a, b serverVerdict) int { return strings.Compare(a.Server, b.Server) })
	return e, nil
}

// judge applies every binding rule to one server.
func judge(s *metalv1alpha1.Server, claim *metalv1alpha1.ServerClaim, sel labels.Selector) serverVerdict {
	if binding.HeldBy(s, claim) {
		// The claim's own server: what is left is the controller's to finish (or undo).
		return serverVerdict{Server: s.Name, Verdict: verdictHeld,
			Message: fmt.Sprintf("Server %s holds this claim's binding and is %s", s.Name, stateName(s))}
	}
	v := serverVerdict{Server: s.Name, Verdict: verdictBindable}
	for _, r := range binding.Rules() {
		reason, msg := r.Excludes(s, claim, sel)
		if reason == "" {
			continue
		}
		if v.Verdict == verdictBindable {
			v.Verdict, v.Rule, v.Reason, v.Message = verdictExcluded, r.Name, reason, msg
		}
		v.ToBind = append(v.ToBind, r.Remedy(s, claim, sel))
	}
	return v
}

func printExplanation(g *globals, e *explanation) error {
	out := g.streams.Out
	fmt.Fprintf(out, "ServerClaim %s is %s\n", e.Claim, e.Phase)
	if e.Bound != "" {
		fmt.Fprintf(out, "  %s\n", e.Bound)
	}
	if e.Problem != "" {
		fmt.Fprintf(out, "  %s\n", e.Problem)
		return nil
	}
	counts := map[string]int{}
	for _, v := range e.Servers {
		counts[v.Verdict]++
	}
	fmt.Fprintf(out, "%d servers considered: %d bindable, %d held by this claim, %d excluded\n\n",
		len(e.Servers), counts[verdictBindable], counts[verdictHeld], counts[verdictExcluded])
	if len(e.Servers) == 0 {
		return nil
	}
	t := newTable(out, "SERVER", "VERDICT", "REASON", "WHY", "TO BIND")
	for _, v := range e.Servers {
		t.row(v.Server, v.Verdict, v.Reason, v.Message, strings.Join(v.ToBind, "; "))
	}
	return t.flush()
}
