package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// bootHistory is what `boots` prints, and its JSON and YAML shape.
type bootHistory struct {
	Server string `json:"server"`
	State  string `json:"state"`
	Power  string `json:"power"`
	// NetworkBootClaimUID is the claim the server last network-booted for.
	NetworkBootClaimUID string            `json:"networkBootClaimUID,omitempty"`
	BootConfigurations  []bootConfigEntry `json:"bootConfigurations"`
	// LastWipe is the server's status.lastWipe as the API server holds it, when there is one.
	LastWipe any         `json:"lastWipe,omitempty"`
	Events   []bootEvent `json:"events"`
}

type bootConfigEntry struct {
	Name       string                                    `json:"name"`
	State      string                                    `json:"state"`
	Image      string                                    `json:"image,omitempty"`
	Digest     string                                    `json:"digest,omitempty"`
	Credential *metalv1alpha1.BootCredentialStatus       `json:"bootCredential,omitempty"`
	Spec       metalv1alpha1.ServerBootConfigurationSpec `json:"spec"`
}

type bootEvent struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Count   int32     `json:"count,omitempty"`
	Message string    `json:"message"`
}

func newBootsCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:               "boots SERVER",
		Short:             "A server's boot history: its boot configuration, its last wipe and its events",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeServers,
		RunE: g.withClient(func(ctx context.Context, c client.Client, args []string) error {
			h, err := readBootHistory(ctx, c, args[0])
			if err != nil {
				return err
			}
			if ok, err := printStructured(g.streams.Out, output, h); ok {
				return err
			}
			return printBootHistory(g, h)
		}),
	}
	addOutputFlag(cmd, &output, outputJSON, outputYAML)
	return cmd
}

func readBootHistory(ctx context.Context, c client.Client, name string) (*bootHistory, error) {
	s := &metalv1alpha1.Server{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
		return nil, fmt.Errorf("reading Server %s: %w", name, err)
	}
	h := &bootHistory{Server: s.Name, State: stateName(s), Power: powerName(s),
		NetworkBootClaimUID: s.Status.NetworkBootClaimUID, BootConfigurations: []bootConfigEntry{}, Events: []bootEvent{}}

	// The last wipe record is read without the typed API, so that this works with an
	// operator that does not record wipes yet.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(metalv1alpha1.GroupVersion.WithKind("Server"))
	if err := c.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
		return nil, fmt.Errorf("reading Server %s: %w", name, err)
	}
	if wipe, found, _ := unstructured.NestedFieldCopy(u.Object, "status", "lastWipe"); found {
		h.LastWipe = wipe
	}

	sbcs := &metalv1alpha1.ServerBootConfigurationList{}
	if err := c.List(ctx, sbcs); err != nil {
		return nil, fmt.Errorf("listing boot configurations: %w", err)
	}
	for _, b := range sbcs.Items {
		if b.Spec.ServerRef.Name != s.Name {
			continue
		}
		e := bootConfigEntry{Name: b.Namespace + "/" + b.Name, State: string(b.Status.State), Spec: b.Spec,
			Credential: b.Status.BootCredential}
		if e.State == "" {
			e.State = string(metalv1alpha1.ServerBootConfigurationStatePending)
		}
		if img := b.Status.Image; img != nil {
			e.Image, e.Digest = img.Reference, img.Digest
		}
		h.BootConfigurations = append(h.BootConfigurations, e)
	}

	events := &corev1.EventList{}
	sel := fields.AndSelectors(
		fields.OneTermEqualSelector("involvedObject.kind", "Server"),
		fields.OneTermEqualSelector("involvedObject.name", s.Name))
	if err := c.List(ctx, events, client.MatchingFieldsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing the server's events: %w", err)
	}
	for _, ev := range events.Items {
		h.Events = append(h.Events, bootEvent{Time: eventTime(&ev), Type: ev.Type, Reason: ev.Reason,
			Count: eventCount(&ev), Message: ev.Message})
	}
	slices.SortStableFunc(h.Events, func(a, b bootEvent) int { return a.Time.Compare(b.Time) })
	return h, nil
}

// eventTime is when an event (either API's) last happened.
func eventTime(ev *corev1.Event) time.Time {
	switch {
	case ev.Series != nil:
		return ev.Series.LastObservedTime.Time
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return ev.CreationTimestamp.Time
}

func eventCount(ev *corev1.Event) int32 {
	if ev.Series != nil {
		return ev.Series.Count
	}
	return ev.Count
}

func printBootHistory(g *globals, h *bootHistory) error {
	out := g.streams.Out
	fmt.Fprintf(out, "Server %s is %s, powered %s\n", h.Server, h.State, h.Power)
	if h.NetworkBootClaimUID != "" {
		fmt.Fprintf(out, "Last network boot: for claim uid %s\n", h.NetworkBootClaimUID)
	}
	fmt.Fprintln(out)
	if len(h.BootConfigurations) == 0 {
		fmt.Fprintln(out, "Boot configurations: none")
	}
	for _, b := range h.BootConfigurations {
		fmt.Fprintf(out, "Boot configuration %s: %s\n", b.Name, b.State)
		image := b.Spec.Image
		if b.Image != "" {
			image = b.Image + "@" + b.Digest
		}
		fmt.Fprintf(out, "  Image:      %s\n", orDash(image))
		if cr := b.Credential; cr != nil {
			fmt.Fprintf(out, "  Boot window opened %s", cr.WindowOpenedAt.UTC().Format(time.RFC3339))
			if cr.IssuedAt != nil {
				fmt.Fprintf(out, ", credential issued %s to %s", cr.IssuedAt.UTC().Format(time.RFC3339), orDash(cr.PinnedIP))
			}
			fmt.Fprintf(out, ", ignition fetched %d time(s), boot done: %t\n", cr.IgnitionFetches, cr.BootDone)
		}
	}
	fmt.Fprintln(out)
	if h.LastWipe == nil {
		fmt.Fprintln(out, "Last wipe: none recorded")
	} else {
		data, err := yaml.Marshal(h.LastWipe)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, "Last wipe:")
		for line := range strings.SplitSeq(strings.TrimRight(string(data), "\n"), "\n") {
			fmt.Fprintln(out, "  "+line)
		}
	}
	fmt.Fprintln(out)
	if len(h.Events) == 0 {
		fmt.Fprintln(out, "Events: none (the API server keeps events for an hour by default)")
		return nil
	}
	t := newTable(out, "TIME", "TYPE", "REASON", "MESSAGE")
	for _, ev := range h.Events {
		reason := ev.Reason
		if ev.Count > 1 {
			reason += fmt.Sprintf(" (x%d)", ev.Count)
		}
		t.row(ev.Time.UTC().Format(time.RFC3339), ev.Type, reason, ev.Message)
	}
	return t.flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
