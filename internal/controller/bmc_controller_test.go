package controller

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/yaml"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

// The BMC controller acts on every BMC of the cluster, and the server controllers of the
// parallel server tests act on every Server: so these tests do not call t.Parallel, which
// keeps them apart from the others (parallel top-level tests run only once the sequential ones
// are done). Cases inside one test share its manager and run in parallel.

// testBMCOptions are short intervals for tests.
func testBMCOptions() BMCOptions {
	return BMCOptions{ResyncInterval: 300 * time.Millisecond, MaxConcurrentReconciles: 4,
		MaxResetsPerHour: 2, ResetWaitingInterval: 3 * time.Second}
}

func setupBMCController(mgr manager.Manager) error {
	return setupBMCControllerWith(mgr, &access.RedfishConnector{Reader: mgr.GetClient(), Timeout: 2 * time.Second})
}

func setupBMCControllerWith(mgr manager.Manager, connector access.ObjectConnector) error {
	return (&BMCReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder("bmc-controller"),
		Connector: connector,
		Options:   testBMCOptions(),
	}).SetupWithManager(mgr)
}

// startBMCController starts a manager running the BMC controller only.
func startBMCController(t *testing.T) manager.Manager {
	t.Helper()
	return startManager(t, setupBMCController)
}

// hostPort splits a base URL into host and port.
func hostPort(t *testing.T, rawURL string) (string, int32) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	host, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatal(err)
	}
	return host, int32(port)
}

// bmcFor returns a BMC object (not created) for the Redfish service at rawURL, over plain HTTP.
func bmcFor(t *testing.T, rawURL, secret string, mutate ...func(*metalv1alpha1.BMC)) *metalv1alpha1.BMC {
	t.Helper()
	host, port := hostPort(t, rawURL)
	obj := &metalv1alpha1.BMC{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bmc-"},
		Spec: metalv1alpha1.BMCSpec{
			Access:       &metalv1alpha1.InlineEndpoint{IP: host},
			Protocol:     metalv1alpha1.Protocol{Name: metalv1alpha1.ProtocolRedfish, Port: port, Scheme: metalv1alpha1.HTTPScheme},
			BMCSecretRef: metalv1alpha1.LocalObjectReference{Name: secret},
		},
	}
	for _, m := range mutate {
		m(obj)
	}
	return obj
}

// createBMC creates the BMC. When the test ends the BMC is deleted first (while the manager
// still runs, so that its finalizer is honoured), then the Servers reached through it: envtest
// has no garbage collector.
func createBMC(t *testing.T, obj *metalv1alpha1.BMC) *metalv1alpha1.BMC {
	t.Helper()
	var name string
	t.Cleanup(func() {
		if name == "" {
			return
		}
		list := &metalv1alpha1.ServerList{}
		if err := env.Client.List(context.Background(), list); err != nil {
			t.Errorf("listing servers: %v", err)
			return
		}
		for i := range list.Items {
			if ref := list.Items[i].Spec.BMCRef; ref != nil && ref.Name == name {
				deleteAndWait(t, &list.Items[i])
			}
		}
	})
	create(t, obj)
	name = obj.Name
	return obj
}

// newSecretNamed creates a BMCSecret with the given name.
func newSecretNamed(t *testing.T, name, username, password string) *metalv1alpha1.BMCSecret {
	t.Helper()
	s := &metalv1alpha1.BMCSecret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Data: map[string][]byte{
			metalv1alpha1.BMCSecretUsernameKey: []byte(username),
			metalv1alpha1.BMCSecretPasswordKey: []byte(password),
		},
	}
	create(t, s)
	return s
}

// serveUpperCaseUUIDs serves the emulator with its system UUIDs in upper case, as some BMCs
// report them.
func serveUpperCaseUUIDs(t *testing.T, em *emulator.Emulator) *httptest.Server {
	t.Helper()
	h := em.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		for _, s := range em.Systems() {
			body = bytes.ReplaceAll(body, []byte(s.UUID), []byte(strings.ToUpper(s.UUID)))
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(em.Close)
	return srv
}

func getBMC(g Gomega, obj *metalv1alpha1.BMC) *metalv1alpha1.BMC {
	cur := &metalv1alpha1.BMC{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), cur)).To(Succeed())
	return cur
}

// expectBMCCondition checks a condition of the BMC and returns it.
func expectBMCCondition(g Gomega, obj *metalv1alpha1.BMC, t string, status metav1.ConditionStatus, reason string) *metav1.Condition {
	c := meta.FindStatusCondition(obj.Status.Conditions, t)
	g.Expect(c).NotTo(BeNil(), "condition %s", t)
	g.Expect(c.Status).To(Equal(status), "condition %s: %s", t, c.Message)
	g.Expect(c.Reason).To(Equal(reason), "condition %s: %s", t, c.Message)
	return c
}

// waitBMC waits until the BMC has the state and the Ready condition's status and reason.
func waitBMC(t *testing.T, obj *metalv1alpha1.BMC, state metalv1alpha1.BMCState, ready metav1.ConditionStatus, reason string) *metalv1alpha1.BMC {
	t.Helper()
	var cur *metalv1alpha1.BMC
	NewWithT(t).Eventually(func(g Gomega) {
		cur = getBMC(g, obj)
		g.Expect(cur.Status.State).To(Equal(state))
		expectBMCCondition(g, cur, metalv1alpha1.BMCReady, ready, reason)
	}).Should(Succeed(), "BMC %s never reached %s/%s", obj.Name, state, reason)
	return cur
}

// serversWithBMCRef lists the servers whose spec.bmcRef names the BMC, by name.
func serversWithBMCRef(g Gomega, bmcName string) map[string]*metalv1alpha1.Server {
	list := &metalv1alpha1.ServerList{}
	g.Expect(env.Client.List(context.Background(), list)).To(Succeed())
	out := map[string]*metalv1alpha1.Server{}
	for i := range list.Items {
		if ref := list.Items[i].Spec.BMCRef; ref != nil && ref.Name == bmcName {
			out[list.Items[i].Name] = &list.Items[i]
		}
	}
	return out
}

// serversWithUUID lists the servers of a system, compared case-insensitively.
func serversWithUUID(g Gomega, uuid string) []metalv1alpha1.Server {
	list := &metalv1alpha1.ServerList{}
	g.Expect(env.Client.List(context.Background(), list)).To(Succeed())
	var out []metalv1alpha1.Server
	for _, s := range list.Items {
		if strings.EqualFold(s.Spec.SystemUUID, uuid) {
			out = append(out, s)
		}
	}
	return out
}

// bmcEvents returns the events about a BMC (cluster-scoped: they land in default).
func bmcEvents(g Gomega, name string) []eventsv1.Event {
	var list eventsv1.EventList
	g.Expect(env.Client.List(context.Background(), &list, client.InNamespace(metav1.NamespaceDefault))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "BMC" && e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// expectBMCEvent waits for an event with the reason about the BMC and returns it.
func expectBMCEvent(t *testing.T, name, eventType, reason string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	NewWithT(t).Eventually(func(g Gomega) {
		var seen []string
		for _, e := range bmcEvents(g, name) {
			if e.Reason == reason && e.Type == eventType {
				found = e
				return
			}
			seen = append(seen, e.Type+"/"+e.Reason)
		}
		g.Expect(false).To(BeTrue(), "no %s event %s for BMC %s (seen: %v)", eventType, reason, name, seen)
	}).Should(Succeed())
	return found
}

// expectNoSecretsShown checks that no condition or event of the BMC contains a password.
func expectNoSecretsShown(g Gomega, obj *metalv1alpha1.BMC, passwords ...string) {
	cur := getBMC(g, obj)
	for _, p := range passwords {
		for _, c := range cur.Status.Conditions {
			g.Expect(c.Message).NotTo(ContainSubstring(p), "condition %s", c.Type)
		}
		for _, e := range bmcEvents(g, obj.Name) {
			g.Expect(e.Note).NotTo(ContainSubstring(p), "event %s", e.Reason)
		}
	}
}

// settle waits until the object's resourceVersion stays the same for a while.
func settle(g Gomega, obj client.Object) {
	g.Eventually(func(g Gomega) {
		get(g, obj)
		rv := obj.GetResourceVersion()
		g.Consistently(func(g Gomega) {
			get(g, obj)
			g.Expect(obj.GetResourceVersion()).To(Equal(rv))
		}).WithTimeout(700 * time.Millisecond).Should(Succeed())
	}).Should(Succeed())
}

// A BMC with three systems: one Server each, named <bmc>-system-<i> in the order of the
// system Ids, controlled by the BMC, with its labels, the lower-cased UUID, the system URI
// and spec.bmcRef; the BMC's status comes from its manager resource. Settled, nothing is
// written; label changes of the BMC reach its Servers (a label dropped from the BMC is
// dropped from them) without removing labels someone else set.
func TestBMCEnrollsSystems(t *testing.T) {
	g := NewWithT(t)
	em := emulator.New(emulator.Options{Systems: 3, Username: testBMCUser, Password: testBMCPassword})
	srv := serveUpperCaseUUIDs(t, em)
	startBMCController(t)
	secret := newBMCSecret(t, testBMCUser, testBMCPassword)
	obj := createBMC(t, bmcFor(t, srv.URL, secret.Name, func(b *metalv1alpha1.BMC) {
		b.Labels = map[string]string{"hardwareType": "gpu-node", "location": "dc-1"}
		b.Spec.Access.MACAddress = "aa:bb:cc:dd:ee:ff"
	}))

	cur := waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
	g.Expect(cur.Finalizers).To(ContainElement(metalv1alpha1.BMCFinalizer))
	g.Expect(cur.Status.Manufacturer).To(Equal(emulator.DefaultManufacturer))
	g.Expect(cur.Status.Model).To(Equal(emulator.DefaultModel + " BMC"))
	g.Expect(cur.Status.SerialNumber).To(HavePrefix("EMUBMC"))
	g.Expect(cur.Status.FirmwareVersion).To(Equal("1.2.3-emu"))
	g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.BMCOnPowerState))
	g.Expect(cur.Status.MACAddress).To(MatchRegexp(macPattern.String()))
	g.Expect(cur.Status.MACAddress).NotTo(Equal("aa:bb:cc:dd:ee:ff"), "the manager's MAC wins over spec.access")
	g.Expect(cur.Status.IP).To(Equal("127.0.0.1"))
	g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
	expectBMCCondition(g, cur, metalv1alpha1.BMCSystemsMissing, metav1.ConditionFalse, metalv1alpha1.ReasonAllSystemsPresent)

	systems := em.Systems()
	g.Expect(systems).To(HaveLen(3))
	yes := true
	servers := serversWithBMCRef(g, obj.Name)
	g.Expect(servers).To(HaveLen(3))
	for i, sys := range systems {
		s := servers[BMCServerName(obj.Name, i)]
		g.Expect(s).NotTo(BeNil(), "server %s", BMCServerName(obj.Name, i))
		g.Expect(s.Spec.SystemUUID).To(Equal(strings.ToLower(sys.UUID)))
		g.Expect(s.Spec.SystemURI).To(Equal(sys.URI))
		g.Expect(s.Spec.BMCRef).To(Equal(&metalv1alpha1.LocalObjectReference{Name: obj.Name}))
		g.Expect(s.Spec.BMC).To(BeNil())
		g.Expect(s.Labels).To(Equal(map[string]string{"hardwareType": "gpu-node", "location": "dc-1"}))
		g.Expect(s.Annotations).To(HaveKeyWithValue(metalv1alpha1.BMCLabelsAnnotation, "hardwareType,location"))
		g.Expect(s.OwnerReferences).To(ConsistOf(metav1.OwnerReference{
			APIVersion: metalv1alpha1.GroupVersion.String(), Kind: "BMC", Name: obj.Name, UID: cur.UID,
			Controller: &yes, BlockOwnerDeletion: &yes,
		}))
	}
	expectBMCEvent(t, obj.Name, "Normal", "Ready")
	// One event for the round that created the three Servers, naming them.
	created := expectBMCEvent(t, obj.Name, "Normal", "ServerCreated")
	g.Expect(created.Note).To(HavePrefix("Created 3 Server(s) for systems of the BMC: "))
	for i := range systems {
		g.Expect(created.Note).To(ContainSubstring(BMCServerName(obj.Name, i)))
	}
	g.Expect(created.Related).To(BeNil())
	n := 0
	for _, e := range bmcEvents(g, obj.Name) {
		if e.Reason == "ServerCreated" {
			n++
		}
	}
	g.Expect(n).To(Equal(1))

	// Settled: the BMC is read every resync, but neither it nor its servers are written.
	settle(g, obj)
	s0 := servers[BMCServerName(obj.Name, 0)]
	rv := s0.ResourceVersion
	g.Consistently(func(g Gomega) {
		get(g, s0)
		g.Expect(s0.ResourceVersion).To(Equal(rv))
	}).Should(Succeed())

	// Someone labels a server; the BMC's labels change.
	patchServer(g, s0, func(o *metalv1alpha1.Server) { o.Labels["team"] = "a" })
	setBMCLabels := func(lbls map[string]string) {
		patchObject(g, obj, func(o *metalv1alpha1.BMC) { o.Labels = lbls })
	}
	setBMCLabels(map[string]string{"location": "dc-2", "rack": "r1"})
	g.Eventually(func(g Gomega) {
		for name, s := range serversWithBMCRef(g, obj.Name) {
			g.Expect(s.Labels).To(HaveKeyWithValue("location", "dc-2"), name)
			g.Expect(s.Labels).To(HaveKeyWithValue("rack", "r1"), name)
			// A label the BMC dropped is removed from its servers; the annotation remembers
			// which labels came from the BMC.
			g.Expect(s.Labels).NotTo(HaveKey("hardwareType"), name)
			g.Expect(s.Annotations).To(HaveKeyWithValue(metalv1alpha1.BMCLabelsAnnotation, "location,rack"), name)
		}
		get(g, s0)
		g.Expect(s0.Labels).To(HaveKeyWithValue("team", "a"))
	}).Should(Succeed())

	// A label a server had before the BMC got the same one is not the BMC's: when the BMC
	// drops it again, that server keeps it and the others lose it.
	patchServer(g, s0, func(o *metalv1alpha1.Server) { o.Labels["zone"] = "z1" })
	setBMCLabels(map[string]string{"location": "dc-2", "rack": "r1", "zone": "z1"})
	g.Eventually(func(g Gomega) {
		for name, s := range serversWithBMCRef(g, obj.Name) {
			g.Expect(s.Labels).To(HaveKeyWithValue("zone", "z1"), name)
			want := "location,rack,zone"
			if name == s0.Name {
				want = "location,rack"
			}
			g.Expect(s.Annotations).To(HaveKeyWithValue(metalv1alpha1.BMCLabelsAnnotation, want), name)
		}
	}).Should(Succeed())
	setBMCLabels(map[string]string{"location": "dc-2", "rack": "r1"})
	g.Eventually(func(g Gomega) {
		for name, s := range serversWithBMCRef(g, obj.Name) {
			if name == s0.Name {
				g.Expect(s.Labels).To(HaveKeyWithValue("zone", "z1"), name)
			} else {
				g.Expect(s.Labels).NotTo(HaveKey("zone"), name)
			}
		}
	}).Should(Succeed())
}

// With the server and claim controllers: the enrolled servers are discovered through their
// BMC, powered off and Available, and a claim selecting the copied labels binds one of them.
func TestBMCServersAvailableAndClaimable(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	em := newEmulator(t, emulator.Options{
		Systems: 3, Username: testBMCUser, Password: testBMCPassword,
		InitialPower: bmc.PowerStateOn, PowerDelay: 20 * time.Millisecond,
	})
	startManager(t, setupFleetControllers)
	secret := newBMCSecret(t, testBMCUser, testBMCPassword)
	obj := createBMC(t, bmcFor(t, em.URL(), secret.Name, func(b *metalv1alpha1.BMC) {
		b.Labels = map[string]string{"hardwareType": "gpu-node", "fleet": ns}
	}))
	waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)

	for i := range 3 {
		s := &metalv1alpha1.Server{ObjectMeta: metav1.ObjectMeta{Name: BMCServerName(obj.Name, i)}}
		waitState(t, s, metalv1alpha1.ServerStateAvailable)
		g.Eventually(func(g Gomega) {
			get(g, s)
			g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
			g.Expect(s.Status.Manufacturer).To(Equal(emulator.DefaultManufacturer))
		}).Should(Succeed())
		g.Expect(em.PowerState(s.Spec.SystemUUID)).To(Equal(bmc.PowerStateOff))
	}

	// The claim is Bound once the server controller has moved the server it took to Reserved.
	c := newClaim(t, ns, bySelector("hardwareType", "gpu-node", "fleet", ns))
	var bound *metalv1alpha1.ServerClaim
	g.Eventually(func(g Gomega) {
		bound = getClaim(g, c)
		g.Expect(bound.Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
		g.Expect(bound.Spec.ServerRef).NotTo(BeNil())
	}).Should(Succeed())
	s := getServer(g, &metalv1alpha1.Server{ObjectMeta: metav1.ObjectMeta{Name: bound.Spec.ServerRef.Name}})
	g.Expect(s.Name).To(HavePrefix(obj.Name + "-system-"))
	g.Expect(s.Spec.ServerClaimRef).NotTo(BeNil())
	g.Expect(s.Spec.ServerClaimRef.Namespace).To(Equal(ns))
	g.Expect(s.Spec.ServerClaimRef.Name).To(Equal(c.Name))
	g.Expect(s.Spec.ServerClaimRef.UID).To(Equal(string(bound.UID)))
	g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateReserved))
}

// An existing Server of one of the systems (its UUID in another case) is adopted, not
// duplicated; one that belongs to another BMC is left alone and reported.
func TestBMCAdoptsExistingServer(t *testing.T) {
	g := NewWithT(t)
	em := newEmulator(t, emulator.Options{Systems: 3, Username: testBMCUser, Password: testBMCPassword})
	startBMCController(t)
	secret := newBMCSecret(t, testBMCUser, testBMCPassword)
	systems := em.Systems()

	mine := &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "handmade-", Labels: map[string]string{"team": "a"}},
		Spec:       metalv1alpha1.ServerSpec{SystemUUID: strings.ToUpper(systems[0].UUID)},
	}
	create(t, mine)
	foreign := &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "foreign-"},
		Spec: metalv1alpha1.ServerSpec{
			SystemUUID: systems[1].UUID,
			BMCRef:     &metalv1alpha1.LocalObjectReference{Name: "another-bmc"},
		},
	}
	create(t, foreign)

	obj := createBMC(t, bmcFor(t, em.URL(), secret.Name, func(b *metalv1alpha1.BMC) {
		b.Labels = map[string]string{"location": "dc-1"}
	}))
	cur := waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
	ready := meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.BMCReady)
	g.Expect(ready.Message).To(ContainSubstring("2 of 3 systems enrolled"))
	g.Expect(ready.Message).To(ContainSubstring(foreign.Name))

	yes := true
	g.Eventually(func(g Gomega) {
		get(g, mine)
		g.Expect(mine.OwnerReferences).To(ConsistOf(metav1.OwnerReference{
			APIVersion: metalv1alpha1.GroupVersion.String(), Kind: "BMC", Name: obj.Name, UID: cur.UID,
			Controller: &yes, BlockOwnerDeletion: &yes,
		}))
		g.Expect(mine.Spec.BMCRef).To(Equal(&metalv1alpha1.LocalObjectReference{Name: obj.Name}))
		g.Expect(mine.Spec.SystemURI).To(Equal(systems[0].URI))
		g.Expect(mine.Labels).To(Equal(map[string]string{"team": "a", "location": "dc-1"}))
	}).Should(Succeed())
	expectBMCEvent(t, obj.Name, "Normal", "ServerAdopted")

	// One server per system, for good; the third system's server takes its position's name.
	g.Consistently(func(g Gomega) {
		g.Expect(serversWithUUID(g, systems[0].UUID)).To(HaveLen(1))
		g.Expect(serversWithUUID(g, systems[1].UUID)).To(HaveLen(1))
		g.Expect(serversWithUUID(g, systems[2].UUID)).To(HaveLen(1))
	}).Should(Succeed())
	get(g, foreign)
	g.Expect(foreign.OwnerReferences).To(BeEmpty())
	g.Expect(foreign.Spec.BMCRef.Name).To(Equal("another-bmc"))
	third := serversWithUUID(g, systems[2].UUID)[0]
	g.Expect(third.Name).To(Equal(BMCServerName(obj.Name, 2)))
}

// A system that disappears from the BMC: its Server is kept and reported by SystemsMissing;
// a system that appears afterwards gets a fresh name, not the missing one's.
func TestBMCSystemRemovedIsReportedNotDeleted(t *testing.T) {
	g := NewWithT(t)
	em := newEmulator(t, emulator.Options{Systems: 3, Username: testBMCUser, Password: testBMCPassword})
	startBMCController(t)
	secret := newBMCSecret(t, testBMCUser, testBMCPassword)
	obj := createBMC(t, bmcFor(t, em.URL(), secret.Name))
	waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
	g.Eventually(func(g Gomega) { g.Expect(serversWithBMCRef(g, obj.Name)).To(HaveLen(3)) }).Should(Succeed())

	removed := em.Systems()[1]
	g.Expect(em.RemoveSystem(removed.UUID)).To(BeTrue())
	gone := BMCServerName(obj.Name, 1)
	g.Eventually(func(g Gomega) {
		cur := getBMC(g, obj)
		c := expectBMCCondition(g, cur, metalv1alpha1.BMCSystemsMissing, metav1.ConditionTrue, metalv1alpha1.ReasonSystemsMissing)
		g.Expect(c.Message).To(ContainSubstring(gone))
		g.Expect(c.Message).To(ContainSubstring(removed.UUID))
		g.Expect(cur.Status.State).To(Equal(metalv1alpha1.BMCStateEnabled))
		expectBMCCondition(g, cur, metalv1alpha1.BMCReady, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
	}).Should(Succeed())
	ev := expectBMCEvent(t, obj.Name, "Warning", "SystemsMissing")
	g.Expect(ev.Note).To(ContainSubstring(gone))
	s := &metalv1alpha1.Server{ObjectMeta: metav1.ObjectMeta{Name: gone}}
	g.Consistently(func(g Gomega) {
		get(g, s)
		g.Expect(s.DeletionTimestamp).To(BeNil())
	}).Should(Succeed())

	// A new system sorts at position 2, whose name the third system's server holds.
	added := em.AddSystem()
	g.Eventually(func(g Gomega) {
		list := serversWithUUID(g, added.UUID)
		g.Expect(list).To(HaveLen(1))
		g.Expect(list[0].Name).To(Equal(BMCServerName(obj.Name, 3)))
	}).Should(Succeed())
	g.Expect(serversWithBMCRef(g, obj.Name)).To(HaveLen(4))
	cur := getBMC(g, obj)
	expectBMCCondition(g, cur, metalv1alpha1.BMCSystemsMissing, metav1.ConditionTrue, metalv1alpha1.ReasonSystemsMissing)
}

// Each way a BMC cannot be used gives its reason on Ready (state Pending while the BMC never
// answered, Error once it did), never shows a password, and recovers once fixed.
func TestBMCFailuresAndRecovery(t *testing.T) {
	startBMCController(t)
	const wrongPassword = "wr0ng-bmc-password"

	t.Run("wrong credentials", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		em := newEmulator(t, emulator.Options{Username: testBMCUser, Password: testBMCPassword})
		secret := newBMCSecret(t, testBMCUser, wrongPassword)
		obj := createBMC(t, bmcFor(t, em.URL(), secret.Name))
		waitBMC(t, obj, metalv1alpha1.BMCStateError, metav1.ConditionFalse, metalv1alpha1.ReasonBMCUnauthorized)
		expectBMCEvent(t, obj.Name, "Warning", metalv1alpha1.ReasonBMCUnauthorized)
		expectNoSecretsShown(g, obj, wrongPassword, testBMCPassword)
		g.Expect(serversWithBMCRef(g, obj.Name)).To(BeEmpty())

		g.Eventually(func() error {
			cur := &metalv1alpha1.BMCSecret{}
			if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(secret), cur); err != nil {
				return err
			}
			cur.Data[metalv1alpha1.BMCSecretPasswordKey] = []byte(testBMCPassword)
			return env.Client.Update(t.Context(), cur)
		}).Should(Succeed())
		waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
		g.Eventually(func(g Gomega) { g.Expect(serversWithBMCRef(g, obj.Name)).To(HaveLen(1)) }).Should(Succeed())
		expectBMCEvent(t, obj.Name, "Normal", "Ready")
		expectNoSecretsShown(g, obj, wrongPassword, testBMCPassword)
	})

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		em := newEmulator(t, emulator.Options{Username: testBMCUser, Password: testBMCPassword})
		em.SetUnavailable(true)
		secret := newBMCSecret(t, testBMCUser, testBMCPassword)
		obj := createBMC(t, bmcFor(t, em.URL(), secret.Name))
		// Never reached: Pending.
		waitBMC(t, obj, metalv1alpha1.BMCStatePending, metav1.ConditionFalse, metalv1alpha1.ReasonBMCUnreachable)

		em.SetUnavailable(false)
		waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
		name := BMCServerName(obj.Name, 0)
		g.Eventually(func(g Gomega) { g.Expect(serversWithBMCRef(g, obj.Name)).To(HaveKey(name)) }).Should(Succeed())

		// Reached before: Error; the server stays.
		em.SetUnavailable(true)
		waitBMC(t, obj, metalv1alpha1.BMCStateError, metav1.ConditionFalse, metalv1alpha1.ReasonBMCUnreachable)
		s := &metalv1alpha1.Server{ObjectMeta: metav1.ObjectMeta{Name: name}}
		get(g, s)
		g.Expect(s.DeletionTimestamp).To(BeNil())
		em.SetUnavailable(false)
		waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
		g.Eventually(func(g Gomega) {
			var n int
			for _, e := range bmcEvents(g, obj.Name) {
				if e.Reason == metalv1alpha1.ReasonBMCUnreachable {
					n++
				}
			}
			g.Expect(n).To(Equal(2), "one event per failure, not per attempt")
		}).Should(Succeed())
	})

	t.Run("missing secret", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		em := newEmulator(t, emulator.Options{Username: testBMCUser, Password: testBMCPassword})
		secretName := "later-" + strings.ToLower(env.Namespace(t))
		obj := createBMC(t, bmcFor(t, em.URL(), secretName))
		waitBMC(t, obj, metalv1alpha1.BMCStatePending, metav1.ConditionFalse, metalv1alpha1.ReasonSecretNotFound)
		g.Expect(em.RequestCount()).To(BeZero())

		newSecretNamed(t, secretName, testBMCUser, testBMCPassword)
		waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
	})

	t.Run("no systems", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		em := newEmulator(t, emulator.Options{Systems: -1, Username: testBMCUser, Password: testBMCPassword})
		secret := newBMCSecret(t, testBMCUser, testBMCPassword)
		obj := createBMC(t, bmcFor(t, em.URL(), secret.Name))
		cur := waitBMC(t, obj, metalv1alpha1.BMCStateError, metav1.ConditionFalse, metalv1alpha1.ReasonNoSystems)
		// The manager was read all the same.
		g.Expect(cur.Status.FirmwareVersion).NotTo(BeEmpty())
		g.Expect(serversWithBMCRef(g, obj.Name)).To(BeEmpty())

		sys := em.AddSystem()
		waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
		g.Eventually(func(g Gomega) {
			servers := serversWithBMCRef(g, obj.Name)
			g.Expect(servers).To(HaveKey(BMCServerName(obj.Name, 0)))
			g.Expect(servers[BMCServerName(obj.Name, 0)].Spec.SystemUUID).To(Equal(sys.UUID))
		}).Should(Succeed())
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		em := emulator.New(emulator.Options{Username: testBMCUser, Password: testBMCPassword})
		srv := httptest.NewTLSServer(em.Handler())
		t.Cleanup(srv.Close)
		t.Cleanup(em.Close)
		secret := newBMCSecret(t, testBMCUser, testBMCPassword)
		obj := createBMC(t, bmcFor(t, srv.URL, secret.Name, func(b *metalv1alpha1.BMC) {
			b.Spec.Protocol.Scheme = metalv1alpha1.HTTPSScheme
		}))
		waitBMC(t, obj, metalv1alpha1.BMCStateError, metav1.ConditionFalse, metalv1alpha1.ReasonBMCTLSError)
		expectNoSecretsShown(NewWithT(t), obj, testBMCPassword)
	})

	t.Run("configuration", func(t *testing.T) {
		t.Parallel()
		em := newEmulator(t, emulator.Options{Username: testBMCUser, Password: testBMCPassword})
		secret := newBMCSecret(t, testBMCUser, testBMCPassword)
		ipmi := createBMC(t, bmcFor(t, em.URL(), secret.Name, func(b *metalv1alpha1.BMC) {
			b.Spec.Protocol.Name = metalv1alpha1.ProtocolIPMI
		}))
		emptyEndpoint := "empty-" + strings.ToLower(env.Namespace(t))
		create(t, &metalv1alpha1.Endpoint{ObjectMeta: metav1.ObjectMeta{Name: emptyEndpoint},
			Spec: metalv1alpha1.EndpointSpec{MACAddress: "aa:bb:cc:dd:ee:01"}})
		noAddress := createBMC(t, bmcFor(t, em.URL(), secret.Name, func(b *metalv1alpha1.BMC) {
			b.Spec.Access = nil
			b.Spec.EndpointRef = &metalv1alpha1.LocalObjectReference{Name: emptyEndpoint}
		}))
		waitBMC(t, ipmi, metalv1alpha1.BMCStatePending, metav1.ConditionFalse, metalv1alpha1.ReasonUnsupportedProtocol)
		waitBMC(t, noAddress, metalv1alpha1.BMCStatePending, metav1.ConditionFalse, metalv1alpha1.ReasonNoAddress)
		NewWithT(t).Expect(em.RequestCount()).To(BeZero())
	})

	// The deprecated way to give a BMC its address: spec.endpointRef names an Endpoint. A
	// missing Endpoint is a reason; once it is created, the BMC is reached at its IP.
	t.Run("endpoint", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		em := newEmulator(t, emulator.Options{Username: testBMCUser, Password: testBMCPassword})
		secret := newBMCSecret(t, testBMCUser, testBMCPassword)
		name := "ep-" + strings.ToLower(env.Namespace(t))
		obj := createBMC(t, bmcFor(t, em.URL(), secret.Name, func(b *metalv1alpha1.BMC) {
			b.Spec.Access = nil
			b.Spec.EndpointRef = &metalv1alpha1.LocalObjectReference{Name: name}
		}))
		cur := waitBMC(t, obj, metalv1alpha1.BMCStatePending, metav1.ConditionFalse, metalv1alpha1.ReasonEndpointNotFound)
		g.Expect(bmcCondition(cur, metalv1alpha1.BMCReady).Message).To(ContainSubstring(name))
		g.Expect(em.RequestCount()).To(BeZero())

		host, _ := hostPort(t, em.URL())
		create(t, &metalv1alpha1.Endpoint{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: metalv1alpha1.EndpointSpec{IP: host, MACAddress: "aa:bb:cc:dd:ee:02"}})
		cur = waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
		g.Expect(cur.Status.IP).To(Equal(host))
		g.Eventually(func(g Gomega) { g.Expect(serversWithBMCRef(g, obj.Name)).To(HaveLen(1)) }).Should(Succeed())
	})
}

// Deleting a BMC whose server is claimed waits, saying why, until the claim is gone from the
// server; an unclaimed server does not hold it.
func TestBMCDeletionWaitsForClaims(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	em := newEmulator(t, emulator.Options{Systems: 2, Username: testBMCUser, Password: testBMCPassword})
	startBMCController(t)
	secret := newBMCSecret(t, testBMCUser, testBMCPassword)
	obj := createBMC(t, bmcFor(t, em.URL(), secret.Name))
	waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
	g.Eventually(func(g Gomega) { g.Expect(serversWithBMCRef(g, obj.Name)).To(HaveLen(2)) }).Should(Succeed())

	claimed := &metalv1alpha1.Server{ObjectMeta: metav1.ObjectMeta{Name: BMCServerName(obj.Name, 0)}}
	patchServer(g, claimed, func(s *metalv1alpha1.Server) {
		s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: ns, Name: "held", UID: "0b1c2d3e"}
	})
	g.Expect(env.Client.Delete(t.Context(), obj)).To(Succeed())
	g.Eventually(func(g Gomega) {
		cur := getBMC(g, obj)
		c := expectBMCCondition(g, cur, metalv1alpha1.BMCDeletionBlocked, metav1.ConditionTrue, metalv1alpha1.ReasonServersClaimed)
		g.Expect(c.Message).To(ContainSubstring(claimed.Name))
		g.Expect(c.Message).To(ContainSubstring(ns + "/held"))
		g.Expect(c.Message).NotTo(ContainSubstring(BMCServerName(obj.Name, 1)))
	}).Should(Succeed())
	expectBMCEvent(t, obj.Name, "Warning", "DeletionBlocked")
	g.Consistently(func(g Gomega) {
		cur := getBMC(g, obj)
		g.Expect(cur.Finalizers).To(ContainElement(metalv1alpha1.BMCFinalizer))
	}).Should(Succeed())

	patchServer(g, claimed, func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef = nil })
	g.Eventually(func() bool {
		err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), &metalv1alpha1.BMC{})
		return apierrors.IsNotFound(err)
	}).Should(BeTrue())
	// The servers are left to the garbage collector (not part of envtest), owned by the BMC.
	get(g, claimed)
	g.Expect(metav1.GetControllerOf(claimed).Name).To(Equal(obj.Name))
}

// sampleBMC creates, from YAML, a BMCSecret (base64 data) and a BMC in the reference's
// published sample shape – access.ip, bmcSecretRef, protocol {name: Redfish, port} and no
// scheme – changed only in the names (suffix), the port (the emulator's) and its labels
// (hardwareType: gpu-node, location: suffix).
func sampleBMC(t *testing.T, em *emulator.Emulator, suffix string) *metalv1alpha1.BMC {
	t.Helper()
	g := NewWithT(t)
	_, port, err := em.HostPort()
	g.Expect(err).NotTo(HaveOccurred())
	secretYAML := fmt.Sprintf(`apiVersion: metal.ironcore.dev/v1alpha1
kind: BMCSecret
metadata:
  name: my-bmc-secret-%s
data:
  username: %s
  password: %s
`, suffix, base64.StdEncoding.EncodeToString([]byte(testBMCUser)), base64.StdEncoding.EncodeToString([]byte(testBMCPassword)))
	bmcYAML := fmt.Sprintf(`apiVersion: metal.ironcore.dev/v1alpha1
kind: BMC
metadata:
  name: my-bmc-%s
  labels:
    hardwareType: gpu-node
    location: %s
spec:
  access:
    ip: 127.0.0.1
  bmcSecretRef:
    name: my-bmc-secret-%s
  protocol:
    name: Redfish
    port: %d
`, suffix, suffix, suffix, port)
	secret := &metalv1alpha1.BMCSecret{}
	g.Expect(yaml.UnmarshalStrict([]byte(secretYAML), secret)).To(Succeed())
	create(t, secret)
	obj := &metalv1alpha1.BMC{}
	g.Expect(yaml.UnmarshalStrict([]byte(bmcYAML), obj)).To(Succeed())
	g.Expect(obj.Spec.Protocol.Scheme).To(BeEmpty())
	return createBMC(t, obj)
}

// The reference's published sample shape applies unchanged. Without a scheme Redfish is
// spoken over https (bmcaccess.go): a BMC with a self-signed certificate reports TLSError,
// saying what to do, until the manager runs with --bmc-insecure-skip-verify; then the BMC
// enrolls its systems, they become Available, and the published selector claim on the BMC's
// labels ends Bound with its server Reserved. A plain-HTTP BMC needs scheme http.
func TestBMCPublishedSampleShape(t *testing.T) {
	t.Run("certificates verified", func(t *testing.T) {
		startBMCController(t)

		t.Run("self-signed certificate", func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			em := newEmulator(t, emulator.Options{TLS: true, Username: testBMCUser, Password: testBMCPassword})
			obj := sampleBMC(t, em, strings.TrimPrefix(env.Namespace(t), "test-"))

			cur := waitBMC(t, obj, metalv1alpha1.BMCStateError, metav1.ConditionFalse, metalv1alpha1.ReasonBMCTLSError)
			msg := meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.BMCReady).Message
			g.Expect(msg).To(ContainSubstring("certificate signed by unknown authority"))
			g.Expect(msg).To(ContainSubstring("--bmc-insecure-skip-verify"))
			ev := expectBMCEvent(t, obj.Name, "Warning", metalv1alpha1.ReasonBMCTLSError)
			g.Expect(ev.Note).To(ContainSubstring("--bmc-insecure-skip-verify"))
			expectNoSecretsShown(g, obj, testBMCPassword)
			g.Expect(em.RequestCount()).To(BeZero(), "no request, no credentials, before the handshake")
			g.Expect(serversWithBMCRef(g, obj.Name)).To(BeEmpty())
		})

		t.Run("plain HTTP", func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			em := newEmulator(t, emulator.Options{Username: testBMCUser, Password: testBMCPassword})
			obj := sampleBMC(t, em, strings.TrimPrefix(env.Namespace(t), "test-"))

			cur := waitBMC(t, obj, metalv1alpha1.BMCStateError, metav1.ConditionFalse, metalv1alpha1.ReasonBMCTLSError)
			msg := meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.BMCReady).Message
			g.Expect(msg).To(ContainSubstring("HTTPS"))
			g.Expect(msg).NotTo(ContainSubstring("--bmc-insecure-skip-verify"), "skipping verification would not help")

			patchObject(g, obj, func(o *metalv1alpha1.BMC) { o.Spec.Protocol.Scheme = metalv1alpha1.HTTPScheme })
			waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
			g.Eventually(func(g Gomega) {
				s := serversWithBMCRef(g, obj.Name)[obj.Name+"-system-0"]
				g.Expect(s).NotTo(BeNil())
				g.Expect(s.Spec.SystemUUID).To(Equal(em.Systems()[0].UUID))
			}).Should(Succeed())
		})
	})

	t.Run("insecure skip verify ends bound", func(t *testing.T) {
		g := NewWithT(t)
		ns := env.Namespace(t)
		suffix := strings.TrimPrefix(ns, "test-")
		em := newEmulator(t, emulator.Options{
			TLS: true, Systems: 2, Username: testBMCUser, Password: testBMCPassword,
			InitialPower: bmc.PowerStateOn, PowerDelay: 20 * time.Millisecond,
		})
		startManager(t, func(mgr manager.Manager) error {
			opts := testServerOptions()
			// What the manager builds with --bmc-insecure-skip-verify: one connector for both.
			connector := &access.RedfishConnector{Reader: mgr.GetClient(), Timeout: opts.BMCRequestTimeout, InsecureSkipVerify: true}
			if err := setupBMCControllerWith(mgr, connector); err != nil {
				return err
			}
			if err := (&ServerReconciler{
				Client:    mgr.GetClient(),
				APIReader: mgr.GetAPIReader(),
				Connector: connector,
				Recorder:  mgr.GetEventRecorder("server-controller"),
				Options:   opts,
			}).SetupWithManager(mgr); err != nil {
				return err
			}
			return setupClaimController(mgr, testClaimOptions())
		})
		obj := sampleBMC(t, em, suffix)
		waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)

		for i, sys := range em.Systems() {
			s := &metalv1alpha1.Server{ObjectMeta: metav1.ObjectMeta{Name: BMCServerName(obj.Name, i)}}
			waitState(t, s, metalv1alpha1.ServerStateAvailable)
			g.Eventually(func(g Gomega) {
				get(g, s)
				g.Expect(s.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
			}).Should(Succeed())
			g.Expect(s.Spec.BMCRef).To(Equal(&metalv1alpha1.LocalObjectReference{Name: obj.Name}))
			g.Expect(s.Spec.BMC).To(BeNil())
			g.Expect(s.Spec.SystemUUID).To(Equal(sys.UUID))
			g.Expect(s.Labels).To(HaveKeyWithValue("location", suffix))
			expectCondition(g, s, metalv1alpha1.ServerBMCReachable, metav1.ConditionTrue, metalv1alpha1.ReasonBMCReachable)
			g.Expect(em.PowerState(sys.UUID)).To(Equal(bmc.PowerStateOff))
		}

		claimYAML := fmt.Sprintf(`apiVersion: metal.ironcore.dev/v1alpha1
kind: ServerClaim
metadata:
  name: selector-server-claim
  namespace: %s
spec:
  power: "On"
  serverSelector:
    matchLabels:
      hardwareType: gpu-node
      location: %s
  image: my-osimage:latest
  ignitionSecretRef:
    name: my-ignition-secret
`, ns, suffix)
		c := &metalv1alpha1.ServerClaim{}
		g.Expect(yaml.UnmarshalStrict([]byte(claimYAML), c)).To(Succeed())
		create(t, c)

		var bound *metalv1alpha1.ServerClaim
		g.Eventually(func(g Gomega) {
			bound = getClaim(g, c)
			g.Expect(bound.Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
			g.Expect(bound.Spec.ServerRef).NotTo(BeNil())
		}).Should(Succeed())
		s := getServer(g, &metalv1alpha1.Server{ObjectMeta: metav1.ObjectMeta{Name: bound.Spec.ServerRef.Name}})
		g.Expect(s.Name).To(HavePrefix(obj.Name + "-system-"))
		g.Expect(s.Status.State).To(Equal(metalv1alpha1.ServerStateReserved))
		g.Expect(s.Spec.ServerClaimRef).To(Equal(&metalv1alpha1.ImmutableObjectReference{
			Namespace: ns, Name: c.Name, UID: string(bound.UID),
		}))
	})
}

// Table tests for the pure helpers.
func TestBMCSystemOrder(t *testing.T) {
	g := NewWithT(t)
	systems := []bmc.System{
		{URI: "/redfish/v1/Systems/10"}, {URI: "/redfish/v1/Systems/Self"}, {URI: "/redfish/v1/Systems/2"},
		{URI: "/redfish/v1/Systems/1/"}, {URI: "/redfish/v1/Systems/System.Embedded.1"},
	}
	slices.SortFunc(systems, bmc.CompareSystems)
	var uris []string
	for _, s := range systems {
		uris = append(uris, s.URI)
	}
	g.Expect(uris).To(Equal([]string{
		"/redfish/v1/Systems/1/", "/redfish/v1/Systems/2", "/redfish/v1/Systems/10",
		"/redfish/v1/Systems/Self", "/redfish/v1/Systems/System.Embedded.1",
	}))
	g.Expect(BMCServerName("rack1-bmc", 0)).To(Equal("rack1-bmc-system-0"))
}

func TestBMCFailureReason(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		reason   string
		answered bool
	}{
		{"secret", access.NewError(metalv1alpha1.ReasonSecretNotFound, "BMCSecret x does not exist"), metalv1alpha1.ReasonSecretNotFound, false},
		{"unauthorized", fmt.Errorf("GET: %w", bmc.ErrUnauthorized), metalv1alpha1.ReasonBMCUnauthorized, true},
		{"tls", fmt.Errorf("GET: %w", bmc.ErrTLS), metalv1alpha1.ReasonBMCTLSError, true},
		{"unreachable", fmt.Errorf("GET: %w", bmc.ErrUnavailable), metalv1alpha1.ReasonBMCUnreachable, false},
		{"not found", fmt.Errorf("GET: %w", bmc.ErrNotFound), metalv1alpha1.ReasonBMCError, true},
		{"cancelled", context.Canceled, "", false},
		{"other BMC error", errors.New("redfish: decode GET /redfish/v1/Managers: unexpected end of JSON input"), metalv1alpha1.ReasonBMCError, true},
		{"API server error is not the BMC", apierrors.NewServiceUnavailable("etcd is down"), "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reason, answered := bmcFailureReason(context.Background(), tc.err)
			NewWithT(t).Expect(reason).To(Equal(tc.reason))
			NewWithT(t).Expect(answered).To(Equal(tc.answered))
		})
	}
}

func TestBMCSetupRejectsMissingDependencies(t *testing.T) {
	g := NewWithT(t)
	g.Expect((&BMCReconciler{}).SetupWithManager(nil)).To(MatchError(ContainSubstring("Client")))
	g.Expect((&BMCReconciler{Client: env.Client, APIReader: env.Client}).SetupWithManager(nil)).To(MatchError(ContainSubstring("Scheme")))
	g.Expect((&BMCReconciler{Client: env.Client, APIReader: env.Client, Scheme: env.Scheme}).SetupWithManager(nil)).
		To(MatchError(ContainSubstring("Connector")))
	g.Expect((&BMCReconciler{Client: env.Client, APIReader: env.Client, Scheme: env.Scheme, Connector: &access.RedfishConnector{}}).
		SetupWithManager(nil)).To(MatchError(ContainSubstring("Recorder")))
}
