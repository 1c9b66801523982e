package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/testing/invariants"
)

const rackLabel = "metadata.metal.ironcore.dev/rack"

func testSetOptions() ServerClaimSetOptions {
	o := DefaultServerClaimSetOptions()
	o.RetryMin = 100 * time.Millisecond
	o.RetryMax = time.Second
	o.BindingTimeout = 5 * time.Second
	return o
}

// startSetControllers starts the claim and set controllers on one pool; the test plays the
// server controller's part.
func startSetControllers(t *testing.T) {
	t.Helper()
	startManager(t, func(mgr manager.Manager) error {
		pool := binding.NewPool()
		if err := (&ServerClaimReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
			Recorder: mgr.GetEventRecorder("serverclaim-controller"), Options: testClaimOptions(), Pool: pool}).SetupWithManager(mgr); err != nil {
			return err
		}
		return (&ServerClaimSetReconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme(),
			Recorder: mgr.GetEventRecorder("serverclaimset-controller"), Options: testSetOptions(), Pool: pool}).SetupWithManager(mgr)
	})
}

// setTest starts the claim and set controllers, and makes a namespace and a pool of idle
// servers in racks (perRack servers in rack-<i>).
func setTest(t *testing.T, perRack ...int) (g *WithT, ns, pool string, servers []*metalv1alpha1.Server) {
	startSetControllers(t)
	pool = rand.String(6)
	return NewWithT(t), env.Namespace(t), pool, rackServers(t, pool, perRack...)
}

// rackServers creates idle servers labelled set-pool=<pool>, perRack[i] of them in rack-<i>.
func rackServers(t *testing.T, pool string, perRack ...int) []*metalv1alpha1.Server {
	var out []*metalv1alpha1.Server
	for r, n := range perRack {
		for range n {
			out = append(out, newIdleServer(t, map[string]string{"set-pool": pool, rackLabel: fmt.Sprintf("rack-%d", r)}))
		}
	}
	return out
}

func newSet(t *testing.T, ns, pool string, replicas int32, mutate ...func(*fleetv1alpha1.ServerClaimSet)) *fleetv1alpha1.ServerClaimSet {
	t.Helper()
	set := &fleetv1alpha1.ServerClaimSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "set-" + rand.String(5)},
		Spec: fleetv1alpha1.ServerClaimSetSpec{
			Replicas: replicas,
			Template: metalv1alpha1.ServerClaimSpec{Power: metalv1alpha1.PowerOn, Image: "my-osimage:latest",
				ServerSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"set-pool": pool}}},
			Topology: []fleetv1alpha1.TopologyLevel{{Key: rackLabel, MaxPerDomain: 1}},
		},
	}
	for _, m := range mutate {
		m(set)
	}
	create(t, set)
	return set
}

func getSet(g Gomega, set *fleetv1alpha1.ServerClaimSet) *fleetv1alpha1.ServerClaimSet {
	cur := &fleetv1alpha1.ServerClaimSet{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(set), cur)).To(Succeed())
	return cur
}

// setMembers lists the set's member claims (uncached), by name.
func setMembers(g Gomega, set *fleetv1alpha1.ServerClaimSet) map[string]*metalv1alpha1.ServerClaim {
	list := &metalv1alpha1.ServerClaimList{}
	g.Expect(env.Client.List(context.Background(), list, client.InNamespace(set.Namespace))).To(Succeed())
	out := map[string]*metalv1alpha1.ServerClaim{}
	for i := range list.Items {
		if name, ok := index.ClaimSetOf(&list.Items[i]); ok && name == set.Name {
			out[list.Items[i].Name] = &list.Items[i]
		}
	}
	return out
}

// reserveRecorded plays the server controller: every server of the pool whose claim names it
// turns Reserved. It returns the rack of each member's server, by member name.
func reserveRecorded(g Gomega, set *fleetv1alpha1.ServerClaimSet, servers []*metalv1alpha1.Server) map[string]string {
	members := setMembers(g, set)
	racks := map[string]string{}
	for _, s := range servers {
		cur := getServer(g, s)
		ref := cur.Spec.ServerClaimRef
		if ref == nil || ref.Namespace != set.Namespace {
			continue
		}
		m, ok := members[ref.Name]
		if !ok || !binding.Confirmed(cur, m) {
			continue
		}
		racks[m.Name] = cur.Labels[rackLabel]
		if cur.Status.State != metalv1alpha1.ServerStateReserved {
			setServerStatus(g, cur, metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerOnPowerState)
		}
	}
	return racks
}

func setCond(set *fleetv1alpha1.ServerClaimSet, t string) *metav1.Condition {
	return meta.FindStatusCondition(set.Status.Conditions, t)
}

// heldServers are the servers of the pool that reference any claim.
func heldPoolServers(g Gomega, servers []*metalv1alpha1.Server) []string {
	var held []string
	for _, s := range servers {
		if getServer(g, s).Spec.ServerClaimRef != nil {
			held = append(held, s.Name)
		}
	}
	return held
}

func TestServerClaimSetOnePerRack(t *testing.T) {
	g, ns, pool, servers := setTest(t, 2, 2, 2, 2)
	set := newSet(t, ns, pool, 3)

	var racks map[string]string
	g.Eventually(func(g Gomega) {
		racks = reserveRecorded(g, set, servers)
		g.Expect(racks).To(HaveLen(3))
	}).Should(Succeed())
	distinct := map[string]bool{}
	for _, r := range racks {
		distinct[r] = true
	}
	g.Expect(distinct).To(HaveLen(3), "one replica per rack: %v", racks)
	for i := range 3 {
		g.Expect(racks).To(HaveKey(fmt.Sprintf("%s-%d", set.Name, i)))
	}

	g.Eventually(func(g Gomega) {
		cur := getSet(g, set)
		g.Expect(cur.Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
		g.Expect(cur.Status.Replicas).To(BeEquivalentTo(3))
		g.Expect(cur.Status.Bound).To(BeEquivalentTo(3))
		g.Expect(cur.Status.Domains).To(HaveLen(3))
		for _, d := range cur.Status.Domains {
			g.Expect(d.Replicas).To(BeEquivalentTo(1), d.Domain)
		}
		c := setCond(cur, fleetv1alpha1.ServerClaimSetBound)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
	}).Should(Succeed())
	g.Expect(heldPoolServers(g, servers)).To(HaveLen(3), "the fourth rack's servers stay free")
	report, err := invariants.Check(t.Context(), env.Client, ns)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(report.Violations).To(BeEmpty())
	g.Expect(report.SharedServerRefs).To(BeEmpty())
}

func TestServerClaimSetDoNotBindWaitsWithReason(t *testing.T) {
	g, ns, pool, servers := setTest(t, 3, 3)
	set := newSet(t, ns, pool, 3)

	g.Eventually(func(g Gomega) {
		c := setCond(getSet(g, set), fleetv1alpha1.ServerClaimSetBound)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(fleetv1alpha1.ReasonInsufficientCapacity))
		g.Expect(c.Message).To(ContainSubstring("hold 2 under the topology"))
		g.Expect(c.Message).To(ContainSubstring(rackLabel + "=rack-0: 1"))
	}).Should(Succeed())
	g.Expect(getSet(g, set).Status.Phase).To(Equal(metalv1alpha1.PhaseUnbound))
	g.Consistently(func(g Gomega) {
		g.Expect(setMembers(g, set)).To(BeEmpty())
		g.Expect(heldPoolServers(g, servers)).To(BeEmpty(), "nothing is held while the set waits")
	}).Should(Succeed())
	expectSetEvent(t, set, corev1.EventTypeWarning, fleetv1alpha1.ReasonInsufficientCapacity)

	// A third rack turns up: the set is placed whole.
	servers = append(servers, rackServers(t, pool, 0, 0, 1)...)
	g.Eventually(func(g Gomega) {
		g.Expect(reserveRecorded(g, set, servers)).To(HaveLen(3))
		g.Expect(getSet(g, set).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
	}).Should(Succeed())
}

func TestServerClaimSetBestEffortAndScaling(t *testing.T) {
	g, ns, pool, servers := setTest(t, 3, 3)
	set := newSet(t, ns, pool, 3, func(s *fleetv1alpha1.ServerClaimSet) { s.Spec.WhenUnsatisfiable = fleetv1alpha1.BestEffort })

	g.Eventually(func(g Gomega) {
		g.Expect(reserveRecorded(g, set, servers)).To(HaveLen(3))
		cur := getSet(g, set)
		g.Expect(cur.Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
		g.Expect(cur.Status.Domains).To(ConsistOf(
			fleetv1alpha1.DomainStatus{Domain: "rack-0", Replicas: 2}, fleetv1alpha1.DomainStatus{Domain: "rack-1", Replicas: 1}))
	}).Should(Succeed())
	expectSetEvent(t, set, corev1.EventTypeWarning, fleetv1alpha1.ReasonTopologyRelaxed)

	// Scale up by one: the new member goes to the rack with fewer members.
	scaleSet(g, set, 4)
	g.Eventually(func(g Gomega) {
		g.Expect(reserveRecorded(g, set, servers)).To(HaveLen(4))
		cur := getSet(g, set)
		g.Expect(cur.Status.Bound).To(BeEquivalentTo(4))
		g.Expect(cur.Status.Domains).To(ConsistOf(
			fleetv1alpha1.DomainStatus{Domain: "rack-0", Replicas: 2}, fleetv1alpha1.DomainStatus{Domain: "rack-1", Replicas: 2}))
	}).Should(Succeed())

	// Scale down to one: the highest indices go.
	scaleSet(g, set, 1)
	g.Eventually(func(g Gomega) {
		members := setMembers(g, set)
		g.Expect(members).To(HaveLen(1))
		g.Expect(members).To(HaveKey(set.Name + "-0"))
		cur := getSet(g, set)
		g.Expect(cur.Status.Replicas).To(BeEquivalentTo(1))
		g.Expect(cur.Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
	}).Should(Succeed())

	// Deleting the set deletes its members, then the set.
	deleteAndWait(t, set)
	g.Expect(setMembers(g, set)).To(BeEmpty())
}

// TestServerClaimSetLetsGoOfAConflictingPlacement stages a placement one of whose servers
// went to another claim before the member took it (as after a race with another manager):
// the set deletes the placement's members, which lets the server its other member took go,
// and places again.
func TestServerClaimSetLetsGoOfAConflictingPlacement(t *testing.T) {
	g, ns, pool, servers := setTest(t, 2, 2)
	other := newClaim(t, ns, byRef(servers[0].Name))
	g.Eventually(func(g Gomega) {
		g.Expect(getServer(g, servers[0]).Spec.ServerClaimRef).NotTo(BeNil())
	}).Should(Succeed())

	set := newSet(t, ns, pool, 2, func(s *fleetv1alpha1.ServerClaimSet) {
		s.Annotations = map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationIgnore}
	})
	set = stageMembers(t, set, []string{servers[0].Name, servers[2].Name}, "p1", "p1")
	// The member assigned the free server takes it, as a proposal it does not record.
	g.Eventually(func(g Gomega) {
		ref := getServer(g, servers[2]).Spec.ServerClaimRef
		g.Expect(ref).NotTo(BeNil())
		g.Expect(ref.Name).To(Equal(set.Name + "-1"))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(getServer(g, servers[2]).Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
		g.Expect(setMembers(g, set)[set.Name+"-1"].Spec.ServerRef).To(BeNil(), "a proposal, not recorded")
	}, 300*time.Millisecond).Should(Succeed())

	unignore(g, set)
	expectSetEvent(t, set, corev1.EventTypeWarning, fleetv1alpha1.ReasonPlacementConflict)
	g.Eventually(func(g Gomega) {
		racks := reserveRecorded(g, set, servers)
		g.Expect(racks).To(HaveLen(2))
		g.Expect(racks).To(ContainElements("rack-0", "rack-1"))
		g.Expect(getSet(g, set).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
	}).Should(Succeed())
	g.Expect(getServer(g, servers[0]).Spec.ServerClaimRef.UID).To(Equal(string(getClaim(g, other).UID)), "the other claim keeps its server")
}

// Members of two placement decisions (two managers deciding at once) are never recorded
// together, even when each holds its server: the set lets them go and places again.
func TestServerClaimSetNeverMixesPlacements(t *testing.T) {
	g, ns, pool, servers := setTest(t, 2, 2)
	set := newSet(t, ns, pool, 2, func(s *fleetv1alpha1.ServerClaimSet) {
		s.Annotations = map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationIgnore}
	})
	// Both in rack-0: each decision alone was fine, together they break maxPerDomain.
	set = stageMembers(t, set, []string{servers[0].Name, servers[1].Name}, "manager-a", "manager-b")
	g.Eventually(func(g Gomega) {
		g.Expect(heldPoolServers(g, servers)).To(HaveLen(2))
	}).Should(Succeed())
	unignore(g, set)
	expectSetEvent(t, set, corev1.EventTypeWarning, fleetv1alpha1.ReasonPlacementConflict)
	g.Eventually(func(g Gomega) {
		racks := reserveRecorded(g, set, servers)
		g.Expect(racks).To(HaveLen(2))
		g.Expect(racks).To(ContainElements("rack-0", "rack-1"))
	}).Should(Succeed())
}

// stageMembers creates the set's members as a placement would, member i assigned servers[i]
// under placement identity ids[i], and returns the set as stored.
func stageMembers(t *testing.T, set *fleetv1alpha1.ServerClaimSet, servers []string, ids ...string) *fleetv1alpha1.ServerClaimSet {
	t.Helper()
	g := NewWithT(t)
	set = getSet(g, set)
	for i, server := range servers {
		m := &metalv1alpha1.ServerClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: set.Namespace, Name: fmt.Sprintf("%s-%d", set.Name, i),
				Annotations: map[string]string{fleetv1alpha1.AssignedServerAnnotation: server, fleetv1alpha1.PlacementAnnotation: ids[i]},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: fleetv1alpha1.GroupVersion.String(), Kind: "ServerClaimSet",
					Name: set.Name, UID: set.UID, Controller: ptr.To(true)}}},
			Spec: set.Spec.Template,
		}
		// Not deleted by the test: the set deletes its members when it goes.
		g.Expect(env.Client.Create(t.Context(), m)).To(Succeed())
	}
	return set
}

// unignore removes the ignore annotation from the set: its controller takes it up.
func unignore(g Gomega, set *fleetv1alpha1.ServerClaimSet) {
	g.Eventually(func(g Gomega) {
		cur := getSet(g, set)
		delete(cur.Annotations, metalv1alpha1.OperationAnnotation)
		g.Expect(env.Client.Update(context.Background(), cur)).To(Succeed())
	}).Should(Succeed())
}

// scaleSet sets the set's replicas.
func scaleSet(g Gomega, set *fleetv1alpha1.ServerClaimSet, replicas int32) {
	g.Eventually(func(g Gomega) {
		cur := getSet(g, set)
		cur.Spec.Replicas = replicas
		g.Expect(env.Client.Update(context.Background(), cur)).To(Succeed())
	}).Should(Succeed())
}

// expectSetEvent waits for an event of the type and reason about the set.
func expectSetEvent(t *testing.T, set *fleetv1alpha1.ServerClaimSet, eventType, reason string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) []string {
		var list eventsv1.EventList
		g.Expect(env.Client.List(context.Background(), &list, client.InNamespace(set.Namespace))).To(Succeed())
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind == "ServerClaimSet" && e.Regarding.Name == set.Name {
				seen = append(seen, e.Type+"/"+e.Reason)
			}
		}
		return seen
	}).Should(ContainElement(eventType + "/" + reason))
}
