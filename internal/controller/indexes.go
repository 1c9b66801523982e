package controller

import (
	"context"
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// Field indexes registered on the manager's cache. Watches and reconcilers look objects up
// through them instead of listing everything.
const (
	// IndexServerClaimUID indexes Servers by spec.serverClaimRef.uid.
	IndexServerClaimUID = "spec.serverClaimRef.uid"
	// IndexServerClaimKey indexes Servers by spec.serverClaimRef as "namespace/name".
	IndexServerClaimKey = "spec.serverClaimRef.key"
	// IndexServerSystemUUID indexes Servers by lower-cased spec.systemUUID.
	IndexServerSystemUUID = "spec.systemUUID"
	// IndexServerBMCRef indexes Servers by spec.bmcRef.name.
	IndexServerBMCRef = "spec.bmcRef.name"
	// IndexServerBootConfiguration indexes Servers by spec.bootConfigurationRef as "namespace/name".
	IndexServerBootConfiguration = "spec.bootConfigurationRef.key"
	// IndexServerBMCSecret indexes Servers by the BMCSecret of their inline spec.bmc.
	IndexServerBMCSecret = "spec.bmc.bmcSecretRef.name"
	// IndexClaimServerRef indexes ServerClaims by spec.serverRef.name.
	IndexClaimServerRef = "spec.serverRef.name"
	// IndexClaimUnboundLabel indexes ServerClaims that do not name a server yet by each
	// "key=value" of their selector's matchLabels, or by IndexAnyLabel when the selector has
	// no matchLabels (no selector, or only expressions). A server that becomes free looks up
	// only the claims it might satisfy.
	IndexClaimUnboundLabel = "unbound.selector.matchLabels"
	// IndexBootConfigurationServer indexes ServerBootConfigurations by spec.serverRef.name.
	IndexBootConfigurationServer = "spec.serverRef.name"
	// IndexBMCSecret indexes BMCs by spec.bmcSecretRef.name.
	IndexBMCSecret = "spec.bmcSecretRef.name"
	// IndexBMCEndpoint indexes BMCs by the deprecated spec.endpointRef.name.
	IndexBMCEndpoint = "spec.endpointRef.name"

	// IndexAnyLabel is the key of unbound claims that any server's labels may satisfy.
	IndexAnyLabel = "*"
)

// LabelKey is the index key of one label pair.
func LabelKey(key, value string) string { return key + "=" + value }

// NamespacedKey is the index key of a namespaced reference.
func NamespacedKey(namespace, name string) string { return namespace + "/" + name }

// SetupIndexes registers every field index the controllers use.
func SetupIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	indexes := []struct {
		obj   client.Object
		field string
		fn    client.IndexerFunc
	}{
		{&metalv1alpha1.Server{}, IndexServerClaimUID, func(o client.Object) []string {
			ref := o.(*metalv1alpha1.Server).Spec.ServerClaimRef
			if ref == nil || ref.UID == "" {
				return nil
			}
			return []string{ref.UID}
		}},
		{&metalv1alpha1.Server{}, IndexServerClaimKey, func(o client.Object) []string {
			ref := o.(*metalv1alpha1.Server).Spec.ServerClaimRef
			if ref == nil {
				return nil
			}
			return []string{NamespacedKey(ref.Namespace, ref.Name)}
		}},
		{&metalv1alpha1.Server{}, IndexServerSystemUUID, func(o client.Object) []string {
			return []string{strings.ToLower(o.(*metalv1alpha1.Server).Spec.SystemUUID)}
		}},
		{&metalv1alpha1.Server{}, IndexServerBMCRef, func(o client.Object) []string {
			ref := o.(*metalv1alpha1.Server).Spec.BMCRef
			if ref == nil {
				return nil
			}
			return []string{ref.Name}
		}},
		{&metalv1alpha1.Server{}, IndexServerBMCSecret, func(o client.Object) []string {
			b := o.(*metalv1alpha1.Server).Spec.BMC
			if b == nil {
				return nil
			}
			return []string{b.BMCSecretRef.Name}
		}},
		{&metalv1alpha1.Server{}, IndexServerBootConfiguration, func(o client.Object) []string {
			ref := o.(*metalv1alpha1.Server).Spec.BootConfigurationRef
			if ref == nil {
				return nil
			}
			return []string{NamespacedKey(ref.Namespace, ref.Name)}
		}},
		{&metalv1alpha1.ServerClaim{}, IndexClaimServerRef, func(o client.Object) []string {
			ref := o.(*metalv1alpha1.ServerClaim).Spec.ServerRef
			if ref == nil {
				return nil
			}
			return []string{ref.Name}
		}},
		{&metalv1alpha1.ServerClaim{}, IndexClaimUnboundLabel, func(o client.Object) []string {
			c := o.(*metalv1alpha1.ServerClaim)
			if c.Spec.ServerRef != nil || !c.DeletionTimestamp.IsZero() {
				return nil
			}
			sel := c.Spec.ServerSelector
			if sel == nil || len(sel.MatchLabels) == 0 {
				return []string{IndexAnyLabel}
			}
			keys := make([]string, 0, len(sel.MatchLabels))
			for k, v := range sel.MatchLabels {
				keys = append(keys, LabelKey(k, v))
			}
			return keys
		}},
		{&metalv1alpha1.ServerBootConfiguration{}, IndexBootConfigurationServer, func(o client.Object) []string {
			return []string{o.(*metalv1alpha1.ServerBootConfiguration).Spec.ServerRef.Name}
		}},
		{&metalv1alpha1.BMC{}, IndexBMCSecret, func(o client.Object) []string {
			return []string{o.(*metalv1alpha1.BMC).Spec.BMCSecretRef.Name}
		}},
		{&metalv1alpha1.BMC{}, IndexBMCEndpoint, func(o client.Object) []string {
			if ref := o.(*metalv1alpha1.BMC).Spec.EndpointRef; ref != nil {
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
