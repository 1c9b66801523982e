package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

func keyOf(obj client.Object) client.ObjectKey { return client.ObjectKeyFromObject(obj) }

func claim(ns, name string, mutate ...func(*metalv1alpha1.ServerClaim)) *metalv1alpha1.ServerClaim {
	c := &metalv1alpha1.ServerClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: name + "-"},
		Spec:       metalv1alpha1.ServerClaimSpec{Power: metalv1alpha1.PowerOn, Image: "my-osimage:latest"},
	}
	for _, m := range mutate {
		m(c)
	}
	return c
}

func server(name string, mutate ...func(*metalv1alpha1.Server)) *metalv1alpha1.Server {
	s := &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-"},
		Spec:       metalv1alpha1.ServerSpec{SystemUUID: "38947555-7742-3448-3784-823347823834"},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func claimSet(ns string, mutate ...func(*fleetv1alpha1.ServerClaimSet)) *fleetv1alpha1.ServerClaimSet {
	s := &fleetv1alpha1.ServerClaimSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "set-"},
		Spec: fleetv1alpha1.ServerClaimSetSpec{
			Replicas: 3,
			Template: metalv1alpha1.ServerClaimSpec{Power: metalv1alpha1.PowerOn, Image: "my-osimage:latest",
				ServerSelector: selector("type", "compute")},
			Topology: []fleetv1alpha1.TopologyLevel{{Key: "rack", MaxPerDomain: 1}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func ref(name string) *metalv1alpha1.LocalObjectReference {
	return &metalv1alpha1.LocalObjectReference{Name: name}
}

func selector(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

// TestValidation is the table of every CEL rule and enum of the API: an object to create,
// optionally an update of it, and the error substring expected ("" = accepted).
func TestValidation(t *testing.T) {
	type testCase struct {
		name string
		// create returns the object to create in namespace ns.
		create func(ns string) client.Object
		// createErr is the expected error substring of the create ("" = must succeed).
		createErr string
		// update, when set, mutates the created object, which is then updated.
		update    func(obj client.Object)
		updateErr string
		// check, when set, inspects the object as stored after the create (and update).
		check func(g Gomega, obj client.Object)
	}
	claimRef := func(ns, name, uid string) *metalv1alpha1.ImmutableObjectReference {
		return &metalv1alpha1.ImmutableObjectReference{Namespace: ns, Name: name, UID: uid}
	}
	cases := []testCase{
		// ServerClaim: enums and required fields.
		{name: "claim: valid minimal", create: func(ns string) client.Object { return claim(ns, "c") }},
		{name: "claim: power must be On or Off", createErr: `spec.power: Unsupported value: "Maybe"`,
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.Power = "Maybe" })
			}},
		{name: "claim: empty power rejected", createErr: `spec.power: Unsupported value: ""`,
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.Power = "" })
			}},
		{name: "claim: empty image rejected", createErr: "spec.image: Invalid value",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.Image = "" })
			}},
		{name: "claim: empty serverRef name rejected", createErr: "spec.serverRef.name: Invalid value",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.ServerRef = ref("") })
			}},
		{name: "claim: toleration operator enum", createErr: `Unsupported value: "Like"`,
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) {
					c.Spec.Tolerations = []metalv1alpha1.Toleration{{Key: "k", Operator: "Like"}}
				})
			}},
		{name: "claim: toleration key required", createErr: "spec.tolerations[0].key",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) {
					c.Spec.Tolerations = []metalv1alpha1.Toleration{{Operator: metalv1alpha1.TolerationOpExists}}
				})
			}},

		// ServerClaim: serverRef may be added later, never changed or removed.
		{name: "claim: serverRef can be added after creation",
			create: func(ns string) client.Object { return claim(ns, "c") },
			update: func(o client.Object) { o.(*metalv1alpha1.ServerClaim).Spec.ServerRef = ref("foo") }},
		{name: "claim: changing serverRef is rejected", updateErr: "serverRef is immutable",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.ServerRef = ref("foo") })
			},
			update: func(o client.Object) { o.(*metalv1alpha1.ServerClaim).Spec.ServerRef = ref("bar") }},
		{name: "claim: removing serverRef is rejected", updateErr: "serverRef is required once set",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.ServerRef = ref("foo") })
			},
			update: func(o client.Object) { o.(*metalv1alpha1.ServerClaim).Spec.ServerRef = nil }},
		{name: "claim: other edits with an unchanged serverRef are allowed",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.ServerRef = ref("foo") })
			},
			update: func(o client.Object) { o.(*metalv1alpha1.ServerClaim).Spec.Power = metalv1alpha1.PowerOff },
			check: func(g Gomega, o client.Object) {
				g.Expect(o.(*metalv1alpha1.ServerClaim).Spec.Power).To(Equal(metalv1alpha1.PowerOff))
			}},

		// ServerClaim: the same for serverSelector.
		{name: "claim: serverSelector can be added after creation",
			create: func(ns string) client.Object { return claim(ns, "c") },
			update: func(o client.Object) { o.(*metalv1alpha1.ServerClaim).Spec.ServerSelector = selector("foo", "bar") }},
		{name: "claim: changing serverSelector is rejected", updateErr: "serverSelector is immutable",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.ServerSelector = selector("foo", "bar") })
			},
			update: func(o client.Object) { o.(*metalv1alpha1.ServerClaim).Spec.ServerSelector = selector("foo", "baz") }},
		{name: "claim: removing serverSelector is rejected", updateErr: "serverSelector is required once set",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.ServerSelector = selector("foo", "bar") })
			},
			update: func(o client.Object) { o.(*metalv1alpha1.ServerClaim).Spec.ServerSelector = nil }},
		{name: "claim: other edits with an unchanged serverSelector are allowed",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.ServerSelector = selector("foo", "bar") })
			},
			update: func(o client.Object) { o.(*metalv1alpha1.ServerClaim).Spec.Image = "other:1" }},
		{name: "claim: adding serverRef to a selector claim is allowed",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.ServerSelector = selector("foo", "bar") })
			},
			update: func(o client.Object) { o.(*metalv1alpha1.ServerClaim).Spec.ServerRef = ref("chosen") }},

		// ServerClaim: leaseDuration is positive, may be added, raised and lowered, never removed.
		{name: "claim: a zero leaseDuration is rejected", createErr: "leaseDuration must be positive",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.LeaseDuration = &metav1.Duration{} })
			}},
		{name: "claim: leaseDuration can be added and raised",
			create: func(ns string) client.Object { return claim(ns, "c") },
			update: func(o client.Object) {
				o.(*metalv1alpha1.ServerClaim).Spec.LeaseDuration = &metav1.Duration{Duration: 48 * time.Hour}
			}},
		{name: "claim: removing leaseDuration is rejected", updateErr: "leaseDuration cannot be removed once set",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.LeaseDuration = &metav1.Duration{Duration: time.Hour} })
			},
			update: func(o client.Object) { o.(*metalv1alpha1.ServerClaim).Spec.LeaseDuration = nil }},

		// Server: enums and defaults.
		{name: "server: defaults reclaimPolicy, unclaimable and taint effect",
			create: func(string) client.Object {
				return server("s", func(s *metalv1alpha1.Server) {
					s.Spec.Taints = []metalv1alpha1.Taint{{Key: "dedicated"}}
				})
			},
			check: func(g Gomega, o client.Object) {
				s := o.(*metalv1alpha1.Server)
				g.Expect(s.Spec.ReclaimPolicy).To(Equal(metalv1alpha1.ReclaimPolicyRecycle))
				g.Expect(s.Spec.Unclaimable).To(BeFalse())
				g.Expect(s.Spec.Taints[0].Effect).To(Equal(metalv1alpha1.TaintEffectNoBind))
			}},
		{name: "server: reclaimPolicy Retain accepted",
			create: func(string) client.Object {
				return server("s", func(s *metalv1alpha1.Server) { s.Spec.ReclaimPolicy = metalv1alpha1.ReclaimPolicyRetain })
			}},
		{name: "server: unknown reclaimPolicy rejected", createErr: `spec.reclaimPolicy: Unsupported value: "Delete"`,
			create: func(string) client.Object {
				return server("s", func(s *metalv1alpha1.Server) { s.Spec.ReclaimPolicy = "Delete" })
			}},
		{name: "server: unknown taint effect rejected", createErr: `Unsupported value: "NoSchedule"`,
			create: func(string) client.Object {
				return server("s", func(s *metalv1alpha1.Server) {
					s.Spec.Taints = []metalv1alpha1.Taint{{Key: "k", Effect: "NoSchedule"}}
				})
			}},
		{name: "server: systemUUID required", createErr: "spec.systemUUID",
			create: func(string) client.Object {
				return server("s", func(s *metalv1alpha1.Server) { s.Spec.SystemUUID = "" })
			}},
		{name: "server: unknown power rejected", createErr: `spec.power: Unsupported value: "Sleep"`,
			create: func(string) client.Object {
				return server("s", func(s *metalv1alpha1.Server) { s.Spec.Power = "Sleep" })
			}},
		{name: "server: BMC protocol name enum", createErr: `Unsupported value: "Telnet"`,
			create: func(string) client.Object {
				return server("s", func(s *metalv1alpha1.Server) {
					s.Spec.BMC = &metalv1alpha1.BMCAccess{Protocol: metalv1alpha1.Protocol{Name: "Telnet", Port: 23},
						Address: "10.0.0.1", BMCSecretRef: metalv1alpha1.LocalObjectReference{Name: "x"}}
				})
			}},

		// Server: the claim reference can be set, cleared, but not edited in place.
		{name: "server: editing serverClaimRef.name in place is rejected", updateErr: "cannot be edited in place",
			create: func(string) client.Object {
				return server("s", func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef = claimRef("ns", "a", "") })
			},
			update: func(o client.Object) { o.(*metalv1alpha1.Server).Spec.ServerClaimRef.Name = "b" }},
		{name: "server: editing serverClaimRef.namespace in place is rejected", updateErr: "cannot be edited in place",
			create: func(string) client.Object {
				return server("s", func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef = claimRef("ns", "a", "") })
			},
			update: func(o client.Object) { o.(*metalv1alpha1.Server).Spec.ServerClaimRef.Namespace = "other" }},
		{name: "server: changing serverClaimRef.uid in place is rejected", updateErr: "uid cannot be changed",
			create: func(string) client.Object {
				return server("s", func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef = claimRef("ns", "a", "u1") })
			},
			update: func(o client.Object) { o.(*metalv1alpha1.Server).Spec.ServerClaimRef.UID = "u2" }},
		{name: "server: clearing serverClaimRef is allowed",
			create: func(string) client.Object {
				return server("s", func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef = claimRef("ns", "a", "u1") })
			},
			update: func(o client.Object) { o.(*metalv1alpha1.Server).Spec.ServerClaimRef = nil },
			check: func(g Gomega, o client.Object) {
				g.Expect(o.(*metalv1alpha1.Server).Spec.ServerClaimRef).To(BeNil())
			}},
		{name: "server: setting serverClaimRef on a free server is allowed",
			create: func(string) client.Object { return server("s") },
			update: func(o client.Object) { o.(*metalv1alpha1.Server).Spec.ServerClaimRef = claimRef("ns", "a", "u1") }},
		{name: "server: serverClaimRef namespace required", createErr: "spec.serverClaimRef.namespace",
			create: func(string) client.Object {
				return server("s", func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef = claimRef("", "a", "") })
			}},

		// ServerBootConfiguration.
		{name: "boot configuration: serverRef required", createErr: "spec.serverRef.name",
			create: func(ns string) client.Object {
				return &metalv1alpha1.ServerBootConfiguration{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "b"}}
			}},

		// BMC.
		{name: "bmc: access or endpointRef, not both", createErr: "exactly one of access or endpointRef",
			create: func(string) client.Object {
				b := bmc()
				b.Spec.EndpointRef = ref("ep")
				return b
			}},
		{name: "bmc: neither access nor endpointRef", createErr: "exactly one of access or endpointRef",
			create: func(string) client.Object {
				b := bmc()
				b.Spec.Access = nil
				return b
			}},
		{name: "bmc: access is immutable", updateErr: "access is immutable",
			create: func(string) client.Object { return bmc() },
			update: func(o client.Object) { o.(*metalv1alpha1.BMC).Spec.Access.IP = "10.0.0.2" }},
		{name: "bmc: malformed MAC rejected", createErr: "spec.access.macAddress",
			create: func(string) client.Object {
				b := bmc()
				b.Spec.Access.MACAddress = "not-a-mac"
				return b
			}},

		// BMCSecret: immutable as for a core Secret.
		{name: "bmcsecret: mutable data can change",
			create: func(string) client.Object { return bmcSecret(false) },
			update: func(o client.Object) { o.(*metalv1alpha1.BMCSecret).Data["password"] = []byte("new") }},
		{name: "bmcsecret: mutable secret can become immutable",
			create: func(string) client.Object { return bmcSecret(false) },
			update: func(o client.Object) { o.(*metalv1alpha1.BMCSecret).Immutable = ptr.To(true) }},
		{name: "bmcsecret: immutable data cannot change", updateErr: "data is immutable while immutable is true",
			create: func(string) client.Object { return bmcSecret(true) },
			update: func(o client.Object) { o.(*metalv1alpha1.BMCSecret).Data["password"] = []byte("new") }},
		{name: "bmcsecret: immutable data cannot be removed", updateErr: "data is immutable while immutable is true",
			create: func(string) client.Object { return bmcSecret(true) },
			update: func(o client.Object) { o.(*metalv1alpha1.BMCSecret).Data = nil }},
		{name: "bmcsecret: immutable stringData cannot be added", updateErr: "stringData is immutable while immutable is true",
			create: func(string) client.Object { return bmcSecret(true) },
			update: func(o client.Object) {
				o.(*metalv1alpha1.BMCSecret).StringData = map[string]string{"password": "new"}
			}},
		{name: "bmcsecret: immutable cannot be unset", updateErr: "immutable cannot be unset once true",
			create: func(string) client.Object { return bmcSecret(true) },
			update: func(o client.Object) { o.(*metalv1alpha1.BMCSecret).Immutable = nil }},
		{name: "bmcsecret: immutable cannot be set false", updateErr: "immutable cannot be unset once true",
			create: func(string) client.Object { return bmcSecret(true) },
			update: func(o client.Object) { o.(*metalv1alpha1.BMCSecret).Immutable = ptr.To(false) }},
		{name: "bmcsecret: immutable secret keeps its labels editable",
			create: func(string) client.Object { return bmcSecret(true) },
			update: func(o client.Object) { o.SetLabels(map[string]string{"rotated": "no"}) }},

		// ServerReadinessRule: required fields, enums, lengths and every CEL message.
		{name: "rule: valid minimal", create: func(string) client.Object { return rule() },
			check: func(g Gomega, o client.Object) {
				g.Expect(o.(*metalv1alpha1.ServerReadinessRule).Spec.Taint.Effect).To(Equal(metalv1alpha1.TaintEffectNoBind))
			}},
		{name: "rule: empty selector accepted", create: func(string) client.Object {
			r := rule()
			r.Spec.ServerSelector = metav1.LabelSelector{}
			return r
		}},
		{name: "rule: conditions required", createErr: "spec.conditions",
			create: func(string) client.Object {
				r := rule()
				r.Spec.Conditions = nil
				return r
			}},
		{name: "rule: at most 32 conditions", createErr: "spec.conditions: Too many",
			create: func(string) client.Object {
				r := rule()
				r.Spec.Conditions = nil
				for i := range 33 {
					r.Spec.Conditions = append(r.Spec.Conditions, metalv1alpha1.ConditionRequirement{
						Type: fmt.Sprintf("C%d", i), RequiredStatus: metav1.ConditionTrue})
				}
				return r
			}},
		{name: "rule: condition types are unique", createErr: "Duplicate value",
			create: func(string) client.Object {
				r := rule()
				r.Spec.Conditions = append(r.Spec.Conditions, r.Spec.Conditions[0])
				return r
			}},
		{name: "rule: empty condition type rejected", createErr: "spec.conditions[0].type",
			create: func(string) client.Object {
				r := rule()
				r.Spec.Conditions[0].Type = ""
				return r
			}},
		{name: "rule: condition type at most 316 characters", createErr: "spec.conditions[0].type: Too long",
			create: func(string) client.Object {
				r := rule()
				r.Spec.Conditions[0].Type = strings.Repeat("a", 317)
				return r
			}},
		{name: "rule: requiredStatus enum", createErr: `spec.conditions[0].requiredStatus: Unsupported value: "Maybe"`,
			create: func(string) client.Object {
				r := rule()
				r.Spec.Conditions[0].RequiredStatus = "Maybe"
				return r
			}},
		{name: "rule: enforcementMode enum", createErr: `spec.enforcementMode: Unsupported value: "Sometimes"`,
			create: func(string) client.Object {
				r := rule()
				r.Spec.EnforcementMode = "Sometimes"
				return r
			}},
		{name: "rule: taint key required", createErr: "spec.taint.key",
			create: func(string) client.Object {
				r := rule()
				r.Spec.Taint.Key = ""
				return r
			}},
		{name: "rule: taint key of 253 characters accepted",
			create: func(string) client.Object {
				r := rule()
				r.Spec.Taint.Key = strings.Repeat("k", 253)
				return r
			}},
		{name: "rule: taint key longer than 253 characters", createErr: "taint key length must be at most 253 characters",
			create: func(string) client.Object {
				r := rule()
				r.Spec.Taint.Key = strings.Repeat("k", 254)
				return r
			}},
		{name: "rule: taint effect enum", createErr: `spec.taint.effect: Unsupported value: "NoSchedule"`,
			create: func(string) client.Object {
				r := rule()
				r.Spec.Taint.Effect = "NoSchedule"
				return r
			}},
		{name: "rule: conditions is immutable", updateErr: "conditions is immutable",
			create: func(string) client.Object { return rule() },
			update: func(o client.Object) {
				o.(*metalv1alpha1.ServerReadinessRule).Spec.Conditions[0].RequiredStatus = metav1.ConditionFalse
			}},
		{name: "rule: enforcementMode is immutable", updateErr: "enforcementMode is immutable",
			create: func(string) client.Object { return rule() },
			update: func(o client.Object) {
				o.(*metalv1alpha1.ServerReadinessRule).Spec.EnforcementMode = metalv1alpha1.EnforcementModeBootstrapOnly
			}},
		{name: "rule: taint key is immutable", updateErr: "taint key is immutable",
			create: func(string) client.Object { return rule() },
			update: func(o client.Object) { o.(*metalv1alpha1.ServerReadinessRule).Spec.Taint.Key = "other" }},
		{name: "rule: taint effect is immutable", updateErr: "taint effect is immutable",
			create: func(string) client.Object { return rule() },
			update: func(o client.Object) {
				o.(*metalv1alpha1.ServerReadinessRule).Spec.Taint.Effect = metalv1alpha1.TaintEffectEvict
			}},
		{name: "rule: taint value is immutable", updateErr: "taint value is immutable",
			create: func(string) client.Object { return rule() },
			update: func(o client.Object) { o.(*metalv1alpha1.ServerReadinessRule).Spec.Taint.Value = "other" }},
		{name: "rule: taint value cannot be removed", updateErr: "taint value is immutable",
			create: func(string) client.Object { return rule() },
			update: func(o client.Object) { o.(*metalv1alpha1.ServerReadinessRule).Spec.Taint.Value = "" }},
		{name: "rule: serverSelector is immutable", updateErr: "serverSelector is immutable",
			create: func(string) client.Object { return rule() },
			update: func(o client.Object) {
				o.(*metalv1alpha1.ServerReadinessRule).Spec.ServerSelector = *selector("rack", "r2")
			}},
		{name: "rule: labels and annotations may change",
			create: func(string) client.Object { return rule() },
			update: func(o client.Object) { o.SetLabels(map[string]string{"team": "infra"}) }},

		// ServerClaim: spec.placement.
		{name: "claim: placement policy defaults to Spread",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.Placement = &metalv1alpha1.Placement{} })
			},
			check: func(g Gomega, o client.Object) {
				g.Expect(o.(*metalv1alpha1.ServerClaim).Spec.Placement.Policy).To(Equal(metalv1alpha1.PlacementSpread))
			}},
		{name: "claim: placement policy is Spread or Pack", createErr: `spec.placement.policy: Unsupported value: "Scatter"`,
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.Placement = &metalv1alpha1.Placement{Policy: "Scatter"} })
			}},
		{name: "claim: placement group needs a topology key", createErr: "placement.group needs placement.topologyKey",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) { c.Spec.Placement = &metalv1alpha1.Placement{Group: "etcd"} })
			}},
		{name: "claim: Pack with an anti-affinity group",
			create: func(ns string) client.Object {
				return claim(ns, "c", func(c *metalv1alpha1.ServerClaim) {
					c.Spec.Placement = &metalv1alpha1.Placement{Policy: metalv1alpha1.PlacementPack, Group: "etcd", TopologyKey: "rack"}
				})
			}},

		// ServerClaimSet.
		{name: "set: valid, whenUnsatisfiable defaults to DoNotBind",
			create: func(ns string) client.Object { return claimSet(ns) },
			check: func(g Gomega, o client.Object) {
				g.Expect(o.(*fleetv1alpha1.ServerClaimSet).Spec.WhenUnsatisfiable).To(Equal(fleetv1alpha1.DoNotBind))
			}},
		{name: "set: template.serverRef is refused", createErr: "template.serverRef cannot be set: every replica gets a server of its own",
			create: func(ns string) client.Object {
				return claimSet(ns, func(s *fleetv1alpha1.ServerClaimSet) { s.Spec.Template.ServerRef = ref("s1") })
			}},
		{name: "set: template.placement is refused", createErr: "template.placement cannot be set: the set places its replicas by spec.topology",
			create: func(ns string) client.Object {
				return claimSet(ns, func(s *fleetv1alpha1.ServerClaimSet) {
					s.Spec.Template.Placement = &metalv1alpha1.Placement{Policy: metalv1alpha1.PlacementPack}
				})
			}},
		{name: "set: topology keys are unique", createErr: "topology keys must be unique: each label is one level",
			create: func(ns string) client.Object {
				return claimSet(ns, func(s *fleetv1alpha1.ServerClaimSet) {
					s.Spec.Topology = append(s.Spec.Topology, fleetv1alpha1.TopologyLevel{Key: "rack", MaxPerDomain: 2})
				})
			}},
		{name: "set: maxPerDomain is at least 1", createErr: "spec.topology[0].maxPerDomain: Invalid value: 0: spec.topology[0].maxPerDomain in body should be greater than or equal to 1",
			create: func(ns string) client.Object {
				return claimSet(ns, func(s *fleetv1alpha1.ServerClaimSet) { s.Spec.Topology[0].MaxPerDomain = 0 })
			}},
		{name: "set: replicas are not negative", createErr: "spec.replicas in body should be greater than or equal to 0",
			create: func(ns string) client.Object {
				return claimSet(ns, func(s *fleetv1alpha1.ServerClaimSet) { s.Spec.Replicas = -1 })
			}},
		{name: "set: whenUnsatisfiable is DoNotBind or BestEffort", createErr: `spec.whenUnsatisfiable: Unsupported value: "Maybe"`,
			create: func(ns string) client.Object {
				return claimSet(ns, func(s *fleetv1alpha1.ServerClaimSet) { s.Spec.WhenUnsatisfiable = "Maybe" })
			}},
		{name: "set: the name leaves room for the members' index", createErr: "the name may have at most 247 characters",
			create: func(ns string) client.Object {
				return claimSet(ns, func(s *fleetv1alpha1.ServerClaimSet) { s.GenerateName, s.Name = "", strings.Repeat("a", 248) })
			}},
		{name: "set: the template's selector is immutable", updateErr: "serverSelector is immutable",
			create: func(ns string) client.Object { return claimSet(ns) },
			update: func(o client.Object) {
				o.(*fleetv1alpha1.ServerClaimSet).Spec.Template.ServerSelector = selector("rack", "r2")
			}},
		{name: "set: replicas may change",
			create: func(ns string) client.Object { return claimSet(ns) },
			update: func(o client.Object) { o.(*fleetv1alpha1.ServerClaimSet).Spec.Replicas = 5 }},
	}

	ns := env.Namespace(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := t.Context()
			obj := tc.create(ns)
			err := env.Client.Create(ctx, obj)
			if tc.createErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.createErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
			if tc.update != nil {
				tc.update(obj)
				err := env.Client.Update(ctx, obj)
				if tc.updateErr != "" {
					g.Expect(err).To(MatchError(ContainSubstring(tc.updateErr)))
					return
				}
				g.Expect(err).NotTo(HaveOccurred())
			}
			if tc.check != nil {
				stored := obj.DeepCopyObject().(client.Object)
				g.Expect(env.Client.Get(ctx, keyOf(obj), stored)).To(Succeed())
				tc.check(g, stored)
			}
		})
	}
}

func rule() *metalv1alpha1.ServerReadinessRule {
	return &metalv1alpha1.ServerReadinessRule{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "rule-"},
		Spec: metalv1alpha1.ServerReadinessRuleSpec{
			Conditions: []metalv1alpha1.ConditionRequirement{
				{Type: metalv1alpha1.ServerDiscovered, RequiredStatus: metav1.ConditionTrue},
			},
			EnforcementMode: metalv1alpha1.EnforcementModeContinuous,
			Taint:           metalv1alpha1.Taint{Key: "readiness.example.com/discovered", Value: "no"},
			ServerSelector:  *selector("rack", "r1"),
		},
	}
}

func bmc() *metalv1alpha1.BMC {
	return &metalv1alpha1.BMC{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bmc-"},
		Spec: metalv1alpha1.BMCSpec{
			Access:       &metalv1alpha1.InlineEndpoint{IP: "10.0.0.1", MACAddress: "aa:bb:cc:dd:ee:ff"},
			BMCSecretRef: metalv1alpha1.LocalObjectReference{Name: "secret"},
			Protocol:     metalv1alpha1.Protocol{Name: metalv1alpha1.ProtocolRedfish, Port: 443},
		},
	}
}

// bmcSecret returns a BMCSecret with credentials, immutable or not.
func bmcSecret(immutable bool) *metalv1alpha1.BMCSecret {
	return &metalv1alpha1.BMCSecret{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "secret-"},
		Immutable:  ptr.To(immutable),
		Data:       map[string][]byte{"username": []byte("admin"), "password": []byte("old")},
	}
}
