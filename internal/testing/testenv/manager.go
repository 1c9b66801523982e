package testenv

import (
	"context"
	"testing"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// NewManager builds a manager for one test: no metrics or probe endpoints, and controller
// names not checked for uniqueness (every test registers its controllers anew).
func (e *Env) NewManager(t testing.TB) manager.Manager {
	t.Helper()
	skip := true
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 e.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}

// RunManager starts mgr, waits until its cache is synced, and stops it when the test ends
// (after the cleanups registered later, which run first).
func RunManager(t testing.TB, ctx context.Context, cancel context.CancelFunc, mgr manager.Manager) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
}
