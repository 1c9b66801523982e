// Package index holds the field indexes of the manager's cache and their keys. Controllers,
// the boot server and the tools import it; it imports only the API.
package index

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// Field indexes registered on the manager's cache. Watches and reconcilers look objects up
// through them instead of listing everything.
const (
	// ServerPowerOnDomain indexes Servers in a power-on transition (condition PoweringOn
	// True) by their power domain, the value of the power-domain label (SetupPowerOn).
	ServerPowerOnDomain = "powerOnDomain"
	// ServerClaimKey indexes Servers by spec.serverClaimRef as "namespace/name" (a reference
	// with a uid names its claim too: one index finds both).
	ServerClaimKey = "spec.serverClaimRef.key"
	// ServerSystemUUID indexes Servers by lower-cased spec.systemUUID.
	ServerSystemUUID = "spec.systemUUID"
	// ServerBMCRef indexes Servers by spec.bmcRef.name.
	ServerBMCRef = "spec.bmcRef.name"
	// ServerBootConfiguration indexes Servers by spec.bootConfigurationRef as "namespace/name".
	ServerBootConfiguration = "spec.bootConfigurationRef.key"
	// ServerBMCSecret indexes Servers by the BMCSecret of their inline spec.bmc.
	ServerBMCSecret = "spec.bmc.bmcSecretRef.name"
	// ClaimServerRef indexes ServerClaims by spec.serverRef.name.
	ClaimServerRef = "spec.serverRef.name"
	// ClaimUnboundLabel indexes ServerClaims that do not name a server yet by each
	// "key=value" of their selector's matchLabels, or by AnyLabel when the selector has
	// no matchLabels (no selector, or only expressions). A server that becomes free looks up
	// only the claims it might satisfy.
	ClaimUnboundLabel = "unbound.selector.matchLabels"
	// ClaimPlacementGroup indexes ServerClaims by spec.placement.group as "namespace/group":
	// a claim of an anti-affinity group finds the others of its group.
	ClaimPlacementGroup = "spec.placement.group"
	// ClaimSet indexes ServerClaims by the ServerClaimSet that controls them (their
	// controller owner reference) as "namespace/set".
	ClaimSet = "metadata.labels.claimSet"
	// BootConfigurationServer indexes ServerBootConfigurations by spec.serverRef.name.
	BootConfigurationServer = "spec.serverRef.name"
	// BMCSecret indexes BMCs by spec.bmcSecretRef.name.
	BMCSecret = "spec.bmcSecretRef.name"
	// BMCEndpoint indexes BMCs by the deprecated spec.endpointRef.name.
	BMCEndpoint = "spec.endpointRef.name"
	// ServerReadinessRule indexes Servers by the names of the readiness rules whose taint
	// they carry on the rule's account (annotation ReadinessTaintsAnnotation).
	ServerReadinessRule = "metadata.annotations.readinessTaints"
	// BMCUserBMCRef indexes BMCUsers by spec.bmcRef.name.
	BMCUserBMCRef = "spec.bmcRef.name"

	// AnyLabel is the key of unbound claims that any server's labels may satisfy.
	AnyLabel = "*"
)

// LabelKey is the index key of one label pair.
func LabelKey(key, value string) string { return key + "=" + value }

// NamespacedKey is the index key of a namespaced reference.
func NamespacedKey(namespace, name string) string { return namespace + "/" + name }

// ClaimSetOf is the name of the ServerClaimSet that controls a claim, if one does.
func ClaimSetOf(o client.Object) (string, bool) {
	ref := metav1.GetControllerOf(o)
	if ref == nil || ref.Kind != "ServerClaimSet" || ref.APIVersion != fleetv1alpha1.GroupVersion.String() {
		return "", false
	}
	return ref.Name, true
}

// SetAssignment is the server a ServerClaimSet assigned a member claim while the set's
// placement is being taken: the claim names no server yet, carries the annotation
// AssignedServerAnnotation, and a set controls it. The annotation on any other claim means
// nothing.
func SetAssignment(c *metalv1alpha1.ServerClaim) (string, bool) {
	name := c.Annotations[fleetv1alpha1.AssignedServerAnnotation]
	if name == "" || c.Spec.ServerRef != nil {
		return "", false
	}
	if _, ok := ClaimSetOf(c); !ok {
		return "", false
	}
	return name, true
}

// Setup registers every field index the controllers use.
func Setup(ctx context.Context, indexer client.FieldIndexer) error {
	indexes := []struct {
		obj   client.Object
		field string
		fn    client.IndexerFunc
	}{
		{&metalv1alpha1.Server{}, ServerClaimKey, func(o client.Object) []string {
			ref := o.(*metalv1alpha1.Server).Spec.ServerClaimRef
			if ref == nil {
				return nil
			}
			return []string{NamespacedKey(ref.Namespace, ref.Name)}
		}},
		{&metalv1alpha1.Server{}, ServerSystemUUID, func(o client.Object) []string {
			return []string{strings.ToLower(o.(*metalv1alpha1.Server).Spec.SystemUUID)}
		}},
		{&metalv1alpha1.Server{}, ServerBMCRef, func(o client.Object) []string {
			ref := o.(*metalv1alpha1.Server).Spec.BMCRef
			if ref == nil {
				return nil
			}
			return []string{ref.Name}
		}},
		{&metalv1alpha1.Server{}, ServerBMCSecret, func(o client.Object) []string {
			b := o.(*metalv1alpha1.Server).Spec.BMC
			if b == nil {
				return nil
			}
			return []string{b.BMCSecretRef.Name}
		}},
		{&metalv1alpha1.Server{}, ServerBootConfiguration, func(o client.Object) []string {
			ref := o.(*metalv1alpha1.Server).Spec.BootConfigurationRef
			if ref == nil {
				return nil
			}
			return []string{NamespacedKey(ref.Namespace, ref.Name)}
		}},
		{&metalv1alpha1.Server{}, ServerReadinessRule, func(o client.Object) []string {
			records := metalv1alpha1.ReadinessTaints(o.GetAnnotations())
			if len(records) == 0 {
				return nil
			}
			return slices.Collect(maps.Keys(records))
		}},
		{&metalv1alpha1.ServerClaim{}, ClaimServerRef, func(o client.Object) []string {
			ref := o.(*metalv1alpha1.ServerClaim).Spec.ServerRef
			if ref == nil {
				return nil
			}
			return []string{ref.Name}
		}},
		{&metalv1alpha1.ServerClaim{}, ClaimUnboundLabel, func(o client.Object) []string {
			c := o.(*metalv1alpha1.ServerClaim)
			if c.Spec.ServerRef != nil || !c.DeletionTimestamp.IsZero() {
				return nil
			}
			if _, ok := SetAssignment(c); ok {
				// A set member waiting for its set takes only the server assigned to it.
				return nil
			}
			sel := c.Spec.ServerSelector
			if sel == nil || len(sel.MatchLabels) == 0 {
				return []string{AnyLabel}
			}
			keys := make([]string, 0, len(sel.MatchLabels))
			for k, v := range sel.MatchLabels {
				keys = append(keys, LabelKey(k, v))
			}
			return keys
		}},
		{&metalv1alpha1.ServerClaim{}, ClaimPlacementGroup, func(o client.Object) []string {
			c := o.(*metalv1alpha1.ServerClaim)
			if c.Spec.Placement == nil || c.Spec.Placement.Group == "" {
				return nil
			}
			return []string{NamespacedKey(c.Namespace, c.Spec.Placement.Group)}
		}},
		{&metalv1alpha1.ServerClaim{}, ClaimSet, func(o client.Object) []string {
			if set, ok := ClaimSetOf(o); ok {
				return []string{NamespacedKey(o.GetNamespace(), set)}
			}
			return nil
		}},
		{&metalv1alpha1.ServerBootConfiguration{}, BootConfigurationServer, func(o client.Object) []string {
			return []string{o.(*metalv1alpha1.ServerBootConfiguration).Spec.ServerRef.Name}
		}},
		{&metalv1alpha1.BMC{}, BMCSecret, func(o client.Object) []string {
			return []string{o.(*metalv1alpha1.BMC).Spec.BMCSecretRef.Name}
		}},
		{&metalv1alpha1.BMC{}, BMCEndpoint, func(o client.Object) []string {
			if ref := o.(*metalv1alpha1.BMC).Spec.EndpointRef; ref != nil {
				return []string{ref.Name}
			}
			return nil
		}},
		{&metalv1alpha1.BMCUser{}, BMCUserBMCRef, func(o client.Object) []string {
			if ref := o.(*metalv1alpha1.BMCUser).Spec.BMCRef; ref != nil {
				return []string{ref.Name}
			}
			return nil
		}},
	}
	for _, ix := range indexes {
		if err := indexer.IndexField(ctx, ix.obj, ix.field, ix.fn); err != nil {
			return fmt.Errorf("registering index %s: %w", ix.field, err)
		}
	}
	return nil
}

// Field indexes of the boot service.
const (
	// BootConfigurationIgnitionSecret indexes ServerBootConfigurations by
	// spec.ignitionSecretRef.name (the Secret is in the configuration's namespace).
	BootConfigurationIgnitionSecret = "spec.ignitionSecretRef.name"
	// BootConfigurationPinnedIP indexes ServerBootConfigurations by the address their boot
	// credential is pinned to (status.bootCredential.pinnedIP); the metadata service finds
	// its caller with it.
	BootConfigurationPinnedIP = "status.bootCredential.pinnedIP"
	// ServerMACAddress indexes Servers by the MAC addresses of
	// status.networkInterfaces, normalised by NormalizeMAC.
	ServerMACAddress = "status.networkInterfaces.macAddress"
)

// NormalizeMAC returns a MAC address as lower-case hex digits without separators, so that
// "52:54:00:AB:CD:EF", "52-54-00-ab-cd-ef" and "525400abcdef" compare equal.
func NormalizeMAC(mac string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(mac) {
		if (r >= '0' && r <= '9') || (r >= 'a' && r <= 'f') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// SetupBoot registers the field indexes of the boot service: the ServerBootConfiguration
// controller and the boot server. Call it next to Setup.
func SetupBoot(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &metalv1alpha1.ServerBootConfiguration{}, BootConfigurationIgnitionSecret, func(o client.Object) []string {
		ref := o.(*metalv1alpha1.ServerBootConfiguration).Spec.IgnitionSecretRef
		if ref == nil {
			return nil
		}
		return []string{ref.Name}
	}); err != nil {
		return fmt.Errorf("registering index %s: %w", BootConfigurationIgnitionSecret, err)
	}
	if err := indexer.IndexField(ctx, &metalv1alpha1.Server{}, ServerMACAddress, func(o client.Object) []string {
		var macs []string
		for _, nic := range o.(*metalv1alpha1.Server).Status.NetworkInterfaces {
			if mac := NormalizeMAC(nic.MACAddress); mac != "" {
				macs = append(macs, mac)
			}
		}
		return macs
	}); err != nil {
		return fmt.Errorf("registering index %s: %w", ServerMACAddress, err)
	}
	if err := indexer.IndexField(ctx, &metalv1alpha1.ServerBootConfiguration{}, BootConfigurationPinnedIP, func(o client.Object) []string {
		c := o.(*metalv1alpha1.ServerBootConfiguration).Status.BootCredential
		if c == nil || c.PinnedIP == "" {
			return nil
		}
		return []string{c.PinnedIP}
	}); err != nil {
		return fmt.Errorf("registering index %s: %w", BootConfigurationPinnedIP, err)
	}
	return nil
}

// SetupPowerOn registers the index of servers in a power-on transition by power domain: the
// value of label on servers whose PoweringOn condition is True (none for a server without
// the label). Only a manager that staggers power-ons needs it.
func SetupPowerOn(ctx context.Context, indexer client.FieldIndexer, label string) error {
	if err := indexer.IndexField(ctx, &metalv1alpha1.Server{}, ServerPowerOnDomain, func(o client.Object) []string {
		s := o.(*metalv1alpha1.Server)
		domain := s.Labels[label]
		if domain == "" || !meta.IsStatusConditionTrue(s.Status.Conditions, metalv1alpha1.ServerPoweringOn) {
			return nil
		}
		return []string{domain}
	}); err != nil {
		return fmt.Errorf("registering index %s: %w", ServerPowerOnDomain, err)
	}
	return nil
}
