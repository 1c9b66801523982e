// Package racetest drives the ServerClaim controller through bursts, manager restarts and
// claims re-created under the same names, and checks the binding invariants by identity
// throughout. It has its own API server, since it starts and stops managers at will.
package racetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmanager "sigs.k8s.io/controller-runtime/pkg/manager"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/controller"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/testing/invariants"
	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

const rounds = 3

// manager is a running claim controller that can be stopped mid-test.
type manager struct {
	cancel context.CancelFunc
	done   chan error
}

func startManager(t *testing.T) *manager {
	t.Helper()
	return startManagerWith(t, nil, nil)
}

// startManagerWith starts the claim controller and whatever extra registers, writing
// through the gate when one is given.
func startManagerWith(t *testing.T, g *gate, extra func(ctrlmanager.Manager, client.Client) error) *manager {
	t.Helper()
	mgr := env.NewManager(t)
	c := mgr.GetClient()
	if g != nil {
		c = gatedClient{Client: c, gate: g}
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	opts := controller.DefaultServerClaimOptions()
	opts.MaxConcurrentReconciles = 8
	opts.UnboundRetryMin = 100 * time.Millisecond
	opts.UnboundRetryMax = time.Second
	opts.ServerReservedGrace = time.Hour // servers stay idle here: no status churn
	err := (&controller.ServerClaimReconciler{
		Client: c, APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("serverclaim-controller"), Options: opts,
	}).SetupWithManager(mgr)
	if err != nil {
		t.Fatal(err)
	}
	if extra != nil {
		if err := extra(mgr, c); err != nil {
			t.Fatal(err)
		}
	}
	m := &manager{cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- mgr.Start(ctx) }()
	return m
}

func (m *manager) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	if err := <-m.done; err != nil {
		t.Errorf("manager: %v", err)
	}
}

// watchViolations checks the hard invariants every few milliseconds until stopped, and
// returns every violation seen. Every claim here is a selector claim, so a server named by
// two claims is a violation too.
func watchViolations(t *testing.T, ns string) (stop func() []string) {
	return sample(func(ctx context.Context) []string {
		r, err := invariants.Check(ctx, env.Client, ns)
		if err != nil {
			return nil
		}
		return append(r.Violations, r.SharedServerRefs...)
	})
}

// sample runs check every 20 ms until stopped, and returns everything it reported.
func sample(check func(ctx context.Context) []string) (stop func() []string) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var seen []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if found := check(ctx); len(found) > 0 {
				mu.Lock()
				seen = append(seen, found...)
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() []string {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// eachRound runs body once per round, each in its own namespace and with its own pool of
// servers (label race=<prefix>-<round>).
func eachRound(t *testing.T, prefix string, body func(t *testing.T, g *WithT, round int, ns, pool string)) {
	for round := range rounds {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			body(t, NewWithT(t), round, env.Namespace(t), fmt.Sprintf("%s-%d", prefix, round))
		})
	}
}

func newClaim(name, ns, pool string) *metalv1alpha1.ServerClaim {
	return &metalv1alpha1.ServerClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: metalv1alpha1.ServerClaimSpec{
			Power: metalv1alpha1.PowerOn, Image: "my-osimage:latest",
			ServerSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"race": pool}},
		},
	}
}

// createClaims creates claims name-0..name-(n-1) concurrently, as a burst.
func createClaims(t *testing.T, ns, pool string, from, to int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, to-from)
	for i := from; i < to; i++ {
		wg.Go(func() {
			if err := env.Client.Create(context.Background(), newClaim(fmt.Sprintf("claim-%d", i), ns, pool)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func settled(g Gomega, ns string, wantBound int) {
	r, err := invariants.Check(context.Background(), env.Client, ns)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Violations).To(BeEmpty())
	g.Expect(r.Unsettled).To(BeEmpty(), r.String())
	g.Expect(r.Bound).To(Equal(wantBound), r.String())
}

// staysSettled waits for the namespace's claims to settle with wantBound bound, and checks
// that they stay so for a second.
func staysSettled(g Gomega, ns string, wantBound int) {
	g.Eventually(func(g Gomega) { settled(g, ns, wantBound) }, 60*time.Second, 100*time.Millisecond).Should(Succeed())
	g.Consistently(func(g Gomega) { settled(g, ns, wantBound) }, time.Second, 100*time.Millisecond).Should(Succeed())
}

func bound(g Gomega, ns string) int {
	r, err := invariants.Check(context.Background(), env.Client, ns)
	g.Expect(err).NotTo(HaveOccurred())
	return r.Bound
}

func servers(t *testing.T, n int, pool string) {
	for range n {
		env.IdleServer(t, map[string]string{"race": pool})
	}
}

// cleanupClaims deletes every claim of the namespace while a manager runs.
func cleanupClaims(t *testing.T, ns string) {
	t.Helper()
	g := NewWithT(t)
	g.Expect(env.Client.DeleteAllOf(context.Background(), &metalv1alpha1.ServerClaim{}, client.InNamespace(ns))).To(Succeed())
	g.Eventually(func(g Gomega) {
		list := &metalv1alpha1.ServerClaimList{}
		g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(BeEmpty())
	}, 30*time.Second, 50*time.Millisecond).Should(Succeed())
}

// 200 selector claims against 100 servers, bound by several workers at once.
func TestBurstOversubscribed(t *testing.T) {
	eachRound(t, "burst", func(t *testing.T, g *WithT, round int, ns, pool string) {
		m := startManager(t)
		defer m.stop(t)
		servers(t, 100, pool)
		stop := watchViolations(t, ns)
		createClaims(t, ns, pool, 0, 200)
		staysSettled(g, ns, 100)
		g.Expect(stop()).To(BeEmpty())
		cleanupClaims(t, ns)
	})
}

// The manager is stopped while the burst is being bound and a new one takes over.
func TestManagerRestartMidBurst(t *testing.T) {
	eachRound(t, "restart", func(t *testing.T, g *WithT, round int, ns, pool string) {
		servers(t, 100, pool)
		stop := watchViolations(t, ns)
		first := startManager(t)
		createClaims(t, ns, pool, 0, 200)
		g.Eventually(func(g Gomega) {
			g.Expect(bound(g, ns)).To(BeNumerically(">=", 10+round*20))
		}, 60*time.Second, 5*time.Millisecond).Should(Succeed())
		first.stop(t)
		second := startManager(t)
		defer second.stop(t)
		staysSettled(g, ns, 100)
		g.Expect(stop()).To(BeEmpty())
		cleanupClaims(t, ns)
	})
}

// Claims are deleted and created again under the same names while the burst is bound: the
// new claims never inherit the old ones' servers, and every server ends up held by a live
// claim.
func TestClaimsRecreatedSameNames(t *testing.T) {
	eachRound(t, "recreate", func(t *testing.T, g *WithT, round int, ns, pool string) {
		m := startManager(t)
		defer m.stop(t)
		servers(t, 100, pool)
		stop := watchViolations(t, ns)
		createClaims(t, ns, pool, 0, 150)
		g.Eventually(func(g Gomega) {
			g.Expect(bound(g, ns)).To(BeNumerically(">=", 50))
		}, 60*time.Second, 5*time.Millisecond).Should(Succeed())

		var oldUIDs []string
		for i := range 50 {
			c := &metalv1alpha1.ServerClaim{}
			g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("claim-%d", i)}, c)).To(Succeed())
			oldUIDs = append(oldUIDs, string(c.UID))
			g.Expect(env.Client.Delete(context.Background(), c)).To(Succeed())
		}
		g.Eventually(func(g Gomega) {
			list := &metalv1alpha1.ServerClaimList{}
			g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
			g.Expect(list.Items).To(HaveLen(100))
		}, 30*time.Second, 20*time.Millisecond).Should(Succeed())
		createClaims(t, ns, pool, 0, 50)

		g.Eventually(func(g Gomega) { settled(g, ns, 100) }, 60*time.Second, 100*time.Millisecond).Should(Succeed())
		list := &metalv1alpha1.ServerList{}
		g.Expect(env.Client.List(context.Background(), list)).To(Succeed())
		for _, s := range list.Items {
			if ref := s.Spec.ServerClaimRef; ref != nil {
				g.Expect(oldUIDs).NotTo(ContainElement(ref.UID), "server %s still holds a deleted claim", s.Name)
			}
		}
		g.Expect(stop()).To(BeEmpty())
		cleanupClaims(t, ns)
	})
}

// The whole lifecycle with the real server controller and an emulated BMC per fleet: a
// burst of claims is bound (servers Reserved), the manager restarts, the claims are deleted,
// and every server returns to Available: no server stays Reserved without a live claim.
func TestLifecycleWithServerController(t *testing.T) {
	const servers, claims = 30, 60
	g := NewWithT(t)
	ns := env.Namespace(t)
	first := startFullManager(t, nil)
	emulatedFleet(t, servers, "life")

	stop := watchViolations(t, ns)
	createClaims(t, ns, "life", 0, claims)
	g.Eventually(func(g Gomega) { g.Expect(bound(g, ns)).To(BeNumerically(">=", servers/3)) }, 60*time.Second, 5*time.Millisecond).Should(Succeed())
	first.stop(t)
	second := startFullManager(t, nil)
	defer second.stop(t)
	g.Eventually(func(g Gomega) {
		settled(g, ns, servers)
		list := &metalv1alpha1.ServerClaimList{}
		g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
		phases := map[metalv1alpha1.Phase]int{}
		for _, c := range list.Items {
			phases[c.Status.Phase]++
		}
		g.Expect(phases).To(Equal(map[metalv1alpha1.Phase]int{metalv1alpha1.PhaseBound: servers, metalv1alpha1.PhaseUnbound: claims - servers}))
	}, 60*time.Second, 100*time.Millisecond).Should(Succeed())

	// Delete every claim: every server is released (Recycle) and none stays Reserved.
	g.Expect(env.Client.DeleteAllOf(context.Background(), &metalv1alpha1.ServerClaim{}, client.InNamespace(ns))).To(Succeed())
	serversSettle(g, "life", metalv1alpha1.ServerStateAvailable)
	g.Expect(stop()).To(BeEmpty())

	deleteFleet(g, "life")
}

// deleteFleet deletes the pool's servers. They carry the server controller's finalizer:
// call it while a server controller still runs.
func deleteFleet(g Gomega, pool string) {
	g.Expect(env.Client.DeleteAllOf(context.Background(), &metalv1alpha1.Server{}, client.MatchingLabels{"race": pool})).To(Succeed())
	g.Eventually(func(g Gomega) {
		list := &metalv1alpha1.ServerList{}
		g.Expect(env.Client.List(context.Background(), list, client.MatchingLabels{"race": pool})).To(Succeed())
		g.Expect(list.Items).To(BeEmpty())
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
}

// emulatedFleet creates n servers labelled race=pool, each a system of one emulated BMC,
// and waits until a running server controller has made them all Available.
func emulatedFleet(t *testing.T, n int, pool string) {
	t.Helper()
	g := NewWithT(t)
	em, err := emulator.Start(emulator.Options{Systems: n, Username: "admin", Password: "pw", PowerDelay: 10 * time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(em.Close)
	secret := &metalv1alpha1.BMCSecret{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "race-bmc-"},
		Data:       map[string][]byte{"username": []byte("admin"), "password": []byte("pw")},
	}
	env.Create(t, secret)
	host, port, err := em.HostPort()
	g.Expect(err).NotTo(HaveOccurred())
	for i, sys := range em.Systems() {
		env.Create(t, &metalv1alpha1.Server{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%02d", pool, i), Labels: map[string]string{"race": pool}},
			Spec: metalv1alpha1.ServerSpec{SystemUUID: sys.UUID, BMC: &metalv1alpha1.BMCAccess{
				Protocol: metalv1alpha1.Protocol{Name: metalv1alpha1.ProtocolRedfishLocal, Port: port, Scheme: metalv1alpha1.HTTPScheme},
				Address:  host, BMCSecretRef: metalv1alpha1.LocalObjectReference{Name: secret.Name},
			}},
		})
	}
	serversSettle(g, pool, metalv1alpha1.ServerStateAvailable)
}

// serversSettle waits until every server of the pool is in state, and holds no claim when
// that state is Available.
func serversSettle(g Gomega, pool string, state metalv1alpha1.ServerState) {
	g.Eventually(func(g Gomega) {
		list := &metalv1alpha1.ServerList{}
		g.Expect(env.Client.List(context.Background(), list, client.MatchingLabels{"race": pool})).To(Succeed())
		for _, s := range list.Items {
			g.Expect(s.Status.State).To(Equal(state), s.Name)
			if state == metalv1alpha1.ServerStateAvailable {
				g.Expect(s.Spec.ServerClaimRef).To(BeNil(), s.Name)
			}
		}
	}, 60*time.Second, 100*time.Millisecond).Should(Succeed())
}

// startFullManager runs the claim and server controllers together, writing through the
// gate when one is given.
func startFullManager(t *testing.T, g *gate) *manager {
	t.Helper()
	return startManagerWith(t, g, func(mgr ctrlmanager.Manager, c client.Client) error {
		opts := controller.DefaultServerOptions()
		opts.ResyncInterval = time.Second
		opts.PowerOffTimeout = time.Second
		opts.TransitionPollInterval = 50 * time.Millisecond
		opts.BMCRequestTimeout = 2 * time.Second
		return (&controller.ServerReconciler{
			Client: c, APIReader: mgr.GetAPIReader(),
			Connector: &access.RedfishConnector{Reader: mgr.GetClient(), Timeout: opts.BMCRequestTimeout},
			Recorder:  mgr.GetEventRecorder("server-controller"), Options: opts,
		}).SetupWithManager(mgr)
	})
}
