// Package testenv starts the real control plane (kube-apiserver + etcd, built by
// hack/envtest.sh) that the tests of one package share, with this operator's CRDs installed.
//
// Use it from TestMain, one API server per package:
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) { testenv.Main(m, &env) }
//
// and give every test its own namespace with env.Namespace(t).
package testenv

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/metalfleet/metal-operator/internal/scheme"
	"github.com/metalfleet/metal-operator/internal/tools/controlplane"
	"github.com/metalfleet/metal-operator/internal/tools/paths"
)

// Env is a running control plane.
type Env struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is an uncached client: what it reads is what the API server has now.
	Client client.Client
	// Scheme knows the core kinds and this operator's kinds.
	Scheme *runtime.Scheme
	// RootDir is the repository root.
	RootDir string

	env  *envtest.Environment
	stop func() error
}

// NewScheme returns a scheme with the core kinds and this operator's kinds.
func NewScheme() *runtime.Scheme { return scheme.New() }

// RootDir finds the repository root: the nearest parent folder with a go.mod.
func RootDir() (string, error) { return paths.RootDir() }

// AssetsDir is where the control-plane binaries are: $KUBEBUILDER_ASSETS, or bin/k8s.
func AssetsDir(root string) string { return paths.AssetsDir(root) }

// Start starts a control plane with the CRDs of config/crd/bases installed.
func Start() (*Env, error) {
	root, err := RootDir()
	if err != nil {
		return nil, err
	}
	assets := AssetsDir(root)
	if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
		return nil, fmt.Errorf("testenv: no kube-apiserver in %s: run 'make envtest' (or 'make test') first: %w", assets, err)
	}
	s := NewScheme()
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                s,
	}
	cfg, stop, err := controlplane.Start(env)
	if err != nil {
		return nil, fmt.Errorf("testenv: starting the control plane: %w", err)
	}
	// Tests create objects in bursts; the default client rate limit would dominate them.
	cfg.QPS = 1000
	cfg.Burst = 2000
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		_ = stop()
		return nil, err
	}
	return &Env{Config: cfg, Client: c, Scheme: s, RootDir: root, env: env, stop: stop}, nil
}

// Stop stops the control plane.
func (e *Env) Stop() error { return e.stop() }

// Main starts a control plane, runs the package's tests and stops it. It sets *env before
// running the tests.
func Main(m *testing.M, env **Env) {
	if os.Getenv("TESTENV_VERBOSE") != "" {
		logf.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr)))
	} else {
		logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevelError)))
	}
	if fuzzing() {
		// Fuzz targets need no API server, and every fuzz worker process would start its own.
		os.Exit(m.Run())
	}
	e, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: stopping the control plane:", err)
	}
	os.Exit(code)
}

// fuzzing reports whether the test binary runs a fuzz target (-test.fuzz, or as one of its
// workers): then only Fuzz functions run.
func fuzzing() bool {
	flag.Parse()
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// Namespace creates a fresh namespace for one test and deletes it when the test ends.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	if err := e.Client.Create(ctx, ns); err != nil {
		t.Fatalf("creating a test namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.Client.Delete(ctx, ns)
	})
	return ns.Name
}
