package controller

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

// One API server for the whole package; each test starts its own manager with the
// controllers it needs, and its own namespace and BMC emulator.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

const (
	eventuallyTimeout = 20 * time.Second
	pollInterval      = 20 * time.Millisecond
	// consistentlyFor is how long a "never happens" assertion watches.
	consistentlyFor = 1 * time.Second
)

func init() {
	SetDefaultEventuallyTimeout(eventuallyTimeout)
	SetDefaultEventuallyPollingInterval(pollInterval)
	SetDefaultConsistentlyDuration(consistentlyFor)
	SetDefaultConsistentlyPollingInterval(50 * time.Millisecond)
}

// startManager starts a manager with the field indexes and whatever register adds, and
// stops it when the test ends (after the test's own cleanups, which run first).
func startManager(t *testing.T, register func(mgr manager.Manager) error) manager.Manager {
	t.Helper()
	mgr, stop := startStoppableManager(t, register)
	t.Cleanup(stop)
	return mgr
}

// startStoppableManager is startManager with a stop function that stops the manager and waits
// for it, and that the caller must call (a test can restart its controllers: a second manager
// with the same registration).
func startStoppableManager(t *testing.T, register func(mgr manager.Manager) error) (_ manager.Manager, stop func()) {
	t.Helper()
	mgr := env.NewManager(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	if err := register(mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		})
	}
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		stop()
		t.Fatal("cache did not sync")
	}
	return mgr, stop
}

// newEmulator starts a Redfish emulator for one test.
func newEmulator(t *testing.T, opts emulator.Options) *emulator.Emulator {
	t.Helper()
	if opts.Username == "" {
		opts.Username, opts.Password = "admin", "secret-password"
	}
	em, err := emulator.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(em.Close)
	return em
}

// create creates obj and deletes it (waiting until it is gone) when the test ends.
func create(t *testing.T, obj client.Object) { env.Create(t, obj) }

// newBMCSecret creates a BMCSecret with the emulator's credentials.
func newBMCSecret(t *testing.T, username, password string) *metalv1alpha1.BMCSecret {
	t.Helper()
	s := &metalv1alpha1.BMCSecret{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bmc-secret-"},
		Data: map[string][]byte{
			metalv1alpha1.BMCSecretUsernameKey: []byte(username),
			metalv1alpha1.BMCSecretPasswordKey: []byte(password),
		},
	}
	create(t, s)
	return s
}

// emulatorAccess returns inline BMC access to the emulator.
func emulatorAccess(t *testing.T, em *emulator.Emulator, secret string) *metalv1alpha1.BMCAccess {
	t.Helper()
	host, port, err := em.HostPort()
	if err != nil {
		t.Fatal(err)
	}
	return &metalv1alpha1.BMCAccess{
		Protocol:     metalv1alpha1.Protocol{Name: metalv1alpha1.ProtocolRedfishLocal, Port: port, Scheme: metalv1alpha1.HTTPScheme},
		Address:      host,
		BMCSecretRef: metalv1alpha1.LocalObjectReference{Name: secret},
	}
}

// newServer creates a Server for the emulator's system with inline BMC access.
func newServer(t *testing.T, em *emulator.Emulator, secret *metalv1alpha1.BMCSecret, systemIndex int, mutate ...func(*metalv1alpha1.Server)) *metalv1alpha1.Server {
	t.Helper()
	systems := em.Systems()
	if systemIndex >= len(systems) {
		t.Fatalf("emulator has %d systems, want index %d", len(systems), systemIndex)
	}
	s := &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{GenerateName: fmt.Sprintf("server-%d-", systemIndex)},
		Spec: metalv1alpha1.ServerSpec{
			SystemUUID: systems[systemIndex].UUID,
			BMC:        emulatorAccess(t, em, secret.Name),
		},
	}
	for _, m := range mutate {
		m(s)
	}
	create(t, s)
	return s
}

// get reads obj's current state from the API server (uncached).
func get(g Gomega, obj client.Object) client.Object {
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	return obj
}

// deleteAndWait deletes obj and waits until it is gone.
func deleteAndWait(t *testing.T, obj client.Object) { env.DeleteAndWait(t, obj) }
