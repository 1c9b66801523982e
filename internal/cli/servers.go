package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
)

// newCordonCommand is cordon (on) or uncordon: spec.unclaimable, as the reference's metalctl
// sets it. A cordoned server keeps its claim; no new claim binds it.
func newCordonCommand(g *globals, on bool) *cobra.Command {
	verb, done := "cordon", "cordoned"
	short := "Mark servers unclaimable (spec.unclaimable): no new claim binds them"
	if !on {
		verb, done = "uncordon", "uncordoned"
		short = "Mark servers claimable again"
	}
	return g.serverCommand(verb, short, func(ctx context.Context, c client.Client, s *metalv1alpha1.Server, opts []client.PatchOption) (string, error) {
		if s.Spec.Unclaimable == on {
			return "already " + done, nil
		}
		base := s.DeepCopy()
		s.Spec.Unclaimable = on
		return done, c.Patch(ctx, s, client.MergeFrom(base), opts...)
	})
}

// newParkCommand is park (on) or unpark: the operation annotation. The server controller
// powers a parked server off and keeps it out of service; unpark returns it.
func newParkCommand(g *globals, on bool) *cobra.Command {
	verb, op := "park", metalv1alpha1.OperationAnnotationPark
	short := "Ask the server controller to power servers off and park them (out of service, claims keep their binding)"
	if !on {
		verb, op = "unpark", metalv1alpha1.OperationAnnotationUnpark
		short = "Return parked servers to service"
	}
	return g.serverCommand(verb, short, func(ctx context.Context, c client.Client, s *metalv1alpha1.Server, opts []client.PatchOption) (string, error) {
		pending := s.Annotations[metalv1alpha1.OperationAnnotation]
		parked := binding.HasParkedMarker(s) || s.Status.State == metalv1alpha1.ServerStateParked
		switch {
		case pending == op:
			return verb + " already requested", nil
		case pending != "":
			return "", fmt.Errorf("server %s has operation %q pending; wait for it or remove annotation %s",
				s.Name, pending, metalv1alpha1.OperationAnnotation)
		case on && parked:
			return "already parked", nil
		case !on && !parked:
			return "not parked", nil
		}
		base := s.DeepCopy()
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[metalv1alpha1.OperationAnnotation] = op
		return verb + " requested", c.Patch(ctx, s, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}), opts...)
	})
}

// serverChange changes one server with the patch options given (a dry run or none) and
// says what became of it.
type serverChange func(ctx context.Context, c client.Client, s *metalv1alpha1.Server, opts []client.PatchOption) (string, error)

// serverCommand is a command VERB SERVER... that applies change to each server named, with
// --dry-run. It prints "server/NAME <outcome>" per server, goes on after a failure and
// returns the failures together.
func (g *globals) serverCommand(verb, short string, change serverChange) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:               verb + " SERVER...",
		Short:             short,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: g.completeServers,
		RunE: g.withClient(func(ctx context.Context, c client.Client, args []string) error {
			var opts []client.PatchOption
			suffix := ""
			if dryRun {
				opts, suffix = []client.PatchOption{client.DryRunAll}, " (server dry run)"
			}
			var errs []error
			for _, name := range args {
				s := &metalv1alpha1.Server{}
				if err := c.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
					errs = append(errs, fmt.Errorf("reading Server %s: %w", name, err))
					continue
				}
				outcome, err := change(ctx, c, s, opts)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(g.streams.Out, "server/%s %s%s\n", name, outcome, suffix)
			}
			return errors.Join(errs...)
		}),
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "Ask the API server to check the change without making it.")
	return cmd
}

// newReleaseCommand clears the claim reference of a Released server: one whose claim is
// gone and whose reclaim policy Retain kept it off and out of the pool until someone looked.
func newReleaseCommand(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:               "release SERVER",
		Short:             "Clear a Released server's claim reference, returning it to the pool",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeServers,
		RunE: g.withClient(func(ctx context.Context, c client.Client, args []string) error {
			s := &metalv1alpha1.Server{}
			if err := c.Get(ctx, client.ObjectKey{Name: args[0]}, s); err != nil {
				return fmt.Errorf("reading Server %s: %w", args[0], err)
			}
			ref := s.Spec.ServerClaimRef
			if s.Status.State != metalv1alpha1.ServerStateReleased || ref == nil {
				return fmt.Errorf("server %s is %s, not Released: only a server whose claim is gone and that was retained is released by hand", s.Name, stateName(s))
			}
			if live, err := claimExists(ctx, c, ref); err != nil {
				return err
			} else if live {
				return fmt.Errorf("server %s still belongs to claim %s/%s, which exists: delete the claim instead", s.Name, ref.Namespace, ref.Name)
			}
			if !yes {
				fmt.Fprintf(g.streams.Out, "Server %s was retained for claim %s/%s, which is gone. Clear its claim reference and return it to the pool? [y/N] ",
					s.Name, ref.Namespace, ref.Name)
				if !confirmed(g.streams.In) {
					fmt.Fprintln(g.streams.Out, "Not released.")
					return nil
				}
			}
			base := s.DeepCopy()
			s.Spec.ServerClaimRef = nil
			if err := c.Patch(ctx, s, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
				if apierrors.IsConflict(err) {
					return fmt.Errorf("server %s changed meanwhile; look again: %w", s.Name, err)
				}
				return fmt.Errorf("releasing server %s: %w", s.Name, err)
			}
			fmt.Fprintf(g.streams.Out, "server/%s released\n", s.Name)
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "Do not ask for confirmation.")
	return cmd
}

// claimExists reports whether the claim a reference names still exists (by uid when the
// reference has one).
func claimExists(ctx context.Context, c client.Client, ref *metalv1alpha1.ImmutableObjectReference) (bool, error) {
	claim := &metalv1alpha1.ServerClaim{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, claim)
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading ServerClaim %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	return ref.UID == "" || types.UID(ref.UID) == claim.UID, nil
}

// confirmed reads one answer line: y or yes (any case) confirms.
func confirmed(in interface{ Read([]byte) (int, error) }) bool {
	line, _ := bufio.NewReader(in).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}

// completeServers completes server names.
func (g *globals) completeServers(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	return g.completeNames(cmd, prefix, &metalv1alpha1.ServerList{}, false)
}

// completeClaims completes claim names of the namespace.
func (g *globals) completeClaims(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	return g.completeNames(cmd, prefix, &metalv1alpha1.ServerClaimList{}, true)
}

func (g *globals) completeNames(cmd *cobra.Command, prefix string, list client.ObjectList, namespaced bool) ([]string, cobra.ShellCompDirective) {
	c, err := g.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var opts []client.ListOption
	if namespaced {
		ns, err := g.ns()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		opts = append(opts, client.InNamespace(ns))
	}
	if err := c.List(cmd.Context(), list, opts...); err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var names []string
	_ = meta.EachListItem(list, func(o runtime.Object) error {
		if name := o.(client.Object).GetName(); strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
		return nil
	})
	return names, cobra.ShellCompDirectiveNoFileComp
}
