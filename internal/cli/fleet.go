package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
)

// Pool membership of a server, as the claim controller sees it.
const (
	poolFree      = "free"
	poolClaimed   = "claimed"
	poolOutOfPool = "out-of-pool"
)

// fleetReport is what `fleet` prints, and its JSON and YAML shape.
type fleetReport struct {
	Total   int            `json:"total"`
	ByPool  map[string]int `json:"byPool"`
	ByState map[string]int `json:"byState"`
	// GroupLabel is the label servers are grouped by; servers without it are in group "".
	GroupLabel string        `json:"groupLabel"`
	Groups     []fleetGroup  `json:"groups"`
	Servers    []fleetServer `json:"servers,omitempty"`
}

type fleetGroup struct {
	Value     string `json:"value"`
	Total     int    `json:"total"`
	Free      int    `json:"free"`
	Claimed   int    `json:"claimed"`
	OutOfPool int    `json:"outOfPool"`
}

type fleetServer struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Power string `json:"power"`
	Pool  string `json:"pool"`
	// Claim is namespace/name of the claim the server is bound to.
	Claim string `json:"claim,omitempty"`
	Group string `json:"group,omitempty"`
	// Why says why a server out of the pool is out.
	Why string `json:"why,omitempty"`
}

func newFleetCommand(g *globals) *cobra.Command {
	var by, selector, output string
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Servers by state, by a label (rack, hardware type), free vs claimed vs out of pool",
		Example: `  kubectl metal fleet
  kubectl metal fleet --by hardwareType -o wide
  kubectl metal fleet -l metadata.metal.ironcore.dev/location=FRA-B1 -o json`,
		Args: cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c client.Client, _ []string) error {
			sel, err := labels.Parse(selector)
			if err != nil {
				return fmt.Errorf("invalid --selector: %w", err)
			}
			list := &metalv1alpha1.ServerList{}
			if err := c.List(ctx, list, client.MatchingLabelsSelector{Selector: sel}); err != nil {
				return fmt.Errorf("listing servers: %w", err)
			}
			report := buildFleetReport(list.Items, by, output == outputWide || output == outputJSON || output == outputYAML)
			if ok, err := printStructured(g.streams.Out, output, report); ok {
				return err
			}
			return printFleet(g, report, output == outputWide)
		}),
	}
	cmd.Flags().StringVar(&by, "by", metalv1alpha1.RackLabel, "Group servers by this label.")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "Only servers matching this label selector.")
	addOutputFlag(cmd, &output, outputWide, outputJSON, outputYAML)
	return cmd
}

// poolOf says whether the claim controller may hand the server to a claim, and if it may
// not, why (the first binding rule that keeps every claim off it).
func poolOf(s *metalv1alpha1.Server) (pool, why string) {
	switch {
	case s.Spec.ServerClaimRef != nil:
		return poolClaimed, ""
	case binding.IsFree(s):
		return poolFree, ""
	}
	// A server that is not free fails a rule that comes before the claim's own (selector,
	// taints): any claim gives the same answer.
	if _, msg := binding.Check(s, &metalv1alpha1.ServerClaim{}, nil); msg != "" {
		return poolOutOfPool, msg
	}
	return poolOutOfPool, ""
}

func buildFleetReport(servers []metalv1alpha1.Server, by string, withServers bool) fleetReport {
	r := fleetReport{Total: len(servers), GroupLabel: by,
		ByPool:  map[string]int{poolFree: 0, poolClaimed: 0, poolOutOfPool: 0},
		ByState: map[string]int{}}
	groups := map[string]*fleetGroup{}
	for i := range servers {
		s := &servers[i]
		pool, why := poolOf(s)
		state := stateName(s)
		r.ByPool[pool]++
		r.ByState[state]++
		value := s.Labels[by]
		gr := groups[value]
		if gr == nil {
			gr = &fleetGroup{Value: value}
			groups[value] = gr
		}
		gr.Total++
		switch pool {
		case poolFree:
			gr.Free++
		case poolClaimed:
			gr.Claimed++
		default:
			gr.OutOfPool++
		}
		if withServers {
			fs := fleetServer{Name: s.Name, State: state, Power: powerName(s), Pool: pool, Group: value, Why: why}
			if ref := s.Spec.ServerClaimRef; ref != nil {
				fs.Claim = ref.Namespace + "/" + ref.Name
			}
			r.Servers = append(r.Servers, fs)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(groups)) {
		r.Groups = append(r.Groups, *groups[v])
	}
	slices.SortFunc(r.Servers, func(a, b fleetServer) int { return strings.Compare(a.Name, b.Name) })
	return r
}

func printFleet(g *globals, r fleetReport, wide bool) error {
	out := g.streams.Out
	fmt.Fprintf(out, "%d servers: %d free, %d claimed, %d out of pool\n\n",
		r.Total, r.ByPool[poolFree], r.ByPool[poolClaimed], r.ByPool[poolOutOfPool])
	t := newTable(out, "STATE", "SERVERS")
	for _, st := range slices.Sorted(maps.Keys(r.ByState)) {
		t.row(st, strconv.Itoa(r.ByState[st]))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	t = newTable(out, strings.ToUpper(labelShortName(r.GroupLabel)), "SERVERS", "FREE", "CLAIMED", "OUT-OF-POOL")
	for _, gr := range r.Groups {
		value := gr.Value
		if value == "" {
			value = "<none>"
		}
		t.row(value, strconv.Itoa(gr.Total), strconv.Itoa(gr.Free), strconv.Itoa(gr.Claimed), strconv.Itoa(gr.OutOfPool))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if !wide {
		return nil
	}
	fmt.Fprintln(out)
	t = newTable(out, "NAME", "STATE", "POWER", "POOL", "CLAIM", strings.ToUpper(labelShortName(r.GroupLabel)), "WHY")
	for _, s := range r.Servers {
		t.row(s.Name, s.State, s.Power, s.Pool, s.Claim, s.Group, s.Why)
	}
	return t.flush()
}

// labelShortName is the part of a label key after its prefix: "rack" for
// metadata.metal.ironcore.dev/rack.
func labelShortName(key string) string {
	if i := strings.LastIndex(key, "/"); i >= 0 {
		return key[i+1:]
	}
	return key
}

func stateName(s *metalv1alpha1.Server) string {
	if s.Status.State == "" {
		return "Unknown"
	}
	return string(s.Status.State)
}

func powerName(s *metalv1alpha1.Server) string {
	if s.Status.PowerState == "" {
		return "Unknown"
	}
	return string(s.Status.PowerState)
}
