// Package bench measures how fast and how cheaply the operator binds a burst of claims.
//
// It starts the control plane the tests use (kube-apiserver + etcd, with an audit log), a
// Redfish emulator with one system per server, and the operator as a separate process under
// its own user, so that the API server itself counts the operator's requests (from the audit
// log, not from the client) and the operator's CPU time and peak memory are its own. It
// creates N Available, powered-off servers, waits until the operator is idle, creates M
// selector claims at once and measures until every claim that can be bound is Bound and the
// rest are Unbound with a reason.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	fleetv1alpha1 "github.com/metalfleet/metal-operator/api/fleet/v1alpha1"
	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/scheme"
	"github.com/metalfleet/metal-operator/internal/testing/invariants"
	"github.com/metalfleet/metal-operator/internal/tools/controlplane"
	"github.com/metalfleet/metal-operator/internal/tools/procfs"
)

// Config is one benchmark run.
type Config struct {
	Servers, Claims int
	// Racks is the number of racks the servers are spread over (label rack); 0 means 40.
	Racks int
	// Set makes the burst one ServerClaimSet of Claims replicas, at most
	// ceil(Claims/Racks) per rack, instead of Claims independent claims.
	Set bool
	// Floor runs no operator: the harness makes the design's writes per binding itself
	// (bindFloor), as the operator's user, so the case measures the floor of the same burst.
	Floor bool
	// ManagerBinary is the operator command (bin/metal-operator).
	ManagerBinary string
	// ManagerArgs are extra flags for it.
	ManagerArgs []string
	// RootDir is the repository root (CRDs); AssetsDir holds kube-apiserver and etcd.
	RootDir, AssetsDir string
	// WorkDir holds the audit log, kubeconfig and the operator's log.
	WorkDir string
	// Timeout bounds the wait for the burst to settle.
	Timeout time.Duration
	// Quiet is how long the operator must make no request to count as idle, and how long
	// requests are counted after the burst settled.
	Quiet time.Duration
	// Boot runs the boot service: the claims use one image of a local registry, and the case
	// goes on after binding until every boot configuration is Ready, every server On and
	// every booting machine fetched its iPXE script (Result.Boot).
	Boot bool
	// Steady, when positive, keeps the operator running this long after the burst settled
	// and measures what it does meanwhile (Result.Steady).
	Steady time.Duration
	// ResyncInterval is the operator's --server-resync-interval; 0 means 30m.
	ResyncInterval time.Duration
	// ProfilePath, when set, receives a CPU profile of the operator taken during the burst,
	// ProfileSeconds long; ProfilePath + ".apiserver" receives one of the API server.
	ProfilePath    string
	ProfileSeconds int
	// Log receives progress lines.
	Log func(format string, args ...any)
}

// Result is what one run measured.
type Result struct {
	Servers, Claims int
	// Floor says the harness made the floor's writes instead of an operator.
	Floor bool
	// Set says the burst was one ServerClaimSet; MaxPerRack is the most bound claims in one
	// rack, TopologyLimit the set's maxPerDomain (0 without a set).
	Set                       bool
	MaxPerRack, TopologyLimit int
	Bound, Unbound            int
	// AllSettled is the time from the first claim created to the last claim settled.
	AllSettled time.Duration
	// Latency percentiles of creation -> Bound, as seen by a watch.
	P50, P90, P99, Max time.Duration
	// Requests the operator made while the burst settled, by "verb resource[/subresource]",
	// counted by the API server (watches excluded).
	Requests map[string]int
	// RequestsTotal is their sum without events; RequestsPerBind divides it by Bound.
	// Events (events.k8s.io) are counted apart: EventsPerBind.
	RequestsTotal   int
	RequestsPerBind float64
	EventsTotal     int
	EventsPerBind   float64
	// RequestsAfter are the operator's requests during Quiet after the burst settled;
	// RequestsAfterByKind breaks them down like Requests.
	RequestsAfter       int
	RequestsAfterByKind map[string]int
	// MaxStatusWritesPerUnbound is the most status writes any claim left Unbound received.
	MaxStatusWritesPerUnbound int
	// UnboundReasons counts the reasons of the claims left Unbound.
	UnboundReasons map[string]int
	// CPUSeconds is the operator's CPU time while the burst settled; PeakRSSMiB its peak
	// resident memory over the whole run.
	CPUSeconds float64
	PeakRSSMiB float64
	// APIServerCPUSeconds and EtcdCPUSeconds are the control plane's CPU time meanwhile.
	APIServerCPUSeconds, EtcdCPUSeconds float64
	// HarnessCPUSeconds is this process's CPU time meanwhile: creating and watching the
	// claims, and the Redfish emulator, which share the machine with the rest.
	HarnessCPUSeconds float64
	// Boot is the boot case's figures, with Config.Boot.
	Boot *BootResult
	// Steady is what the operator did after the burst, with Config.Steady.
	Steady *SteadyResult
	// Report of the binding invariants at the end.
	Invariants invariants.Report
}

// operatorUser is the user the operator runs as, so the audit log tells its requests apart.
const operatorUser = "metal-operator-bench"

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
`

// Run performs one benchmark run.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	logf := cfg.logf()
	pl, err := startPlane(cfg, logf)
	if err != nil {
		return res, err
	}
	defer pl.stop()
	c, restCfg, audit := pl.client, pl.restCfg, pl.audit

	emOpts := emulator.Options{Systems: cfg.Servers, UUIDSeed: "bench", Username: "bench", Password: "bench-password"}
	image := "my-osimage:latest"
	var reg *countedRegistry
	var machines *bootingMachines
	if cfg.Boot {
		if cfg.Floor {
			return res, errors.New("a boot case has no floor")
		}
		if reg, err = startRegistry(); err != nil {
			return res, err
		}
		defer reg.close()
		bootAddr, err := freeAddr()
		if err != nil {
			return res, err
		}
		machines = newBootingMachines(ctx, bootAddr)
		emOpts.OnBoot = machines.onBoot
		image = reg.host + "/" + bootImage
		cfg.ManagerArgs = append(bootArgs(bootAddr, reg.host), cfg.ManagerArgs...)
	}
	em, err := startCountedBMC(emOpts)
	if err != nil {
		return res, err
	}
	defer em.close()
	logf("creating %d servers", cfg.Servers)
	if cfg.Racks <= 0 {
		cfg.Racks = 40
	}
	if err := createServers(ctx, c, em, cfg.Servers, cfg.Racks); err != nil {
		return res, err
	}
	pid, floorClient, op, err := pl.startWriter(ctx, cfg, logf)
	if err != nil {
		return res, err
	}
	var profileFrom string
	if op != nil {
		defer op.stop()
		if cfg.ProfilePath != "" {
			profileFrom = "http://" + op.pprofAddr
		}
	}
	baseline := audit.offset()

	watch, err := watchClaims(ctx, restCfg)
	if err != nil {
		return res, err
	}
	defer watch.stop()

	cpuBefore, err := cpuSeconds(pid)
	if err != nil {
		return res, err
	}
	apiBefore, etcdBefore := childCPU("kube-apiserver"), childCPU("etcd")
	harnessBefore, err := cpuSeconds(os.Getpid())
	if err != nil {
		return res, err
	}
	var profileDone chan error
	profiles := 0
	if cfg.ProfilePath != "" {
		// The floor has no operator: its API server's profile is the comparison.
		apiClient, err := rest.HTTPClientFor(restCfg)
		if err != nil {
			return res, err
		}
		profileDone = make(chan error, 2)
		if profileFrom != "" {
			profiles++
			go func() {
				profileDone <- fetchProfile(ctx, http.DefaultClient, profileFrom, cfg.ProfileSeconds, cfg.ProfilePath)
			}()
		}
		profiles++
		go func() {
			profileDone <- fetchProfile(ctx, apiClient, restCfg.Host, cfg.ProfileSeconds, cfg.ProfilePath+".apiserver")
		}()
	}
	registryBefore := 0
	if reg != nil {
		registryBefore = reg.count()
	}
	logf("creating %d claims", cfg.Claims)
	start := time.Now()
	var created map[string]time.Time
	if cfg.Set {
		res.TopologyLimit = (cfg.Claims + cfg.Racks - 1) / cfg.Racks
		created, err = createSet(ctx, c, cfg.Claims, res.TopologyLimit, image)
	} else {
		created, err = createClaims(ctx, c, cfg.Claims, image)
	}
	if err != nil {
		return res, err
	}
	floorDone := make(chan error, 1)
	if cfg.Floor {
		go func() { floorDone <- bindFloor(ctx, c, floorClient, cfg.Claims) }()
	}
	wantBound := min(cfg.Servers, cfg.Claims)
	logf("waiting for %d claims Bound and %d Unbound", wantBound, cfg.Claims-wantBound)
	settledAt, err := watch.waitSettled(ctx, wantBound, cfg.Claims, cfg.Timeout)
	if err != nil {
		return res, err
	}
	if cfg.Floor {
		if err := <-floorDone; err != nil {
			return res, fmt.Errorf("the floor's writes: %w", err)
		}
	}
	cpuAfter, err := cpuSeconds(pid)
	if err != nil {
		return res, err
	}
	res.APIServerCPUSeconds = childCPU("kube-apiserver") - apiBefore
	res.EtcdCPUSeconds = childCPU("etcd") - etcdBefore
	if harnessAfter, err := cpuSeconds(os.Getpid()); err == nil {
		res.HarnessCPUSeconds = harnessAfter - harnessBefore
	}
	if profileDone != nil {
		for range profiles {
			if err := <-profileDone; err != nil {
				return res, fmt.Errorf("profiling: %w", err)
			}
		}
	}
	res.Servers, res.Claims, res.Set, res.Floor = cfg.Servers, cfg.Claims, cfg.Set, cfg.Floor
	res.AllSettled = settledAt.Sub(start)
	res.CPUSeconds = cpuAfter - cpuBefore
	res.P50, res.P90, res.P99, res.Max = watch.latencies(created)
	if cfg.Boot {
		logf("waiting for %d boot configurations Ready, servers On and iPXE scripts fetched", wantBound)
		ready, on, scripts, err := waitBooted(ctx, c, machines, wantBound, cfg.Timeout, logf)
		if err != nil {
			return res, err
		}
		_, _, local := machines.fetched()
		res.Boot = &BootResult{AllBound: res.AllSettled, AllReady: ready.Sub(start), AllPoweredOn: on.Sub(start),
			AllScripts: scripts.Sub(start), RegistryRequests: reg.count() - registryBefore, Scripts: wantBound, LocalAnswers: local}
	}

	// Let the audit batch flush, then count what the operator asked for until it settled,
	// and during Quiet after.
	time.Sleep(cfg.Quiet)
	events, err := audit.read(baseline)
	if err != nil {
		return res, err
	}
	res.Requests = map[string]int{}
	res.RequestsAfterByKind = map[string]int{}
	statusWrites := map[string]int{}
	for _, e := range events {
		if e.User.Username != operatorUser || e.Verb == "watch" {
			continue
		}
		key := requestKey(e)
		if e.RequestReceivedTimestamp.After(settledAt) {
			res.RequestsAfter++
			res.RequestsAfterByKind[key]++
			continue
		}
		res.Requests[key]++
		if e.ObjectRef.Resource == "events" {
			res.EventsTotal++
		} else {
			res.RequestsTotal++
		}
		if e.ObjectRef.Resource == "serverclaims" && e.ObjectRef.Subresource == "status" {
			statusWrites[e.ObjectRef.Name]++
		}
	}
	if !cfg.Floor {
		rss, err := peakRSSMiB(pid)
		if err != nil {
			return res, err
		}
		res.PeakRSSMiB = rss
	}
	if profileFrom != "" {
		// What the operator holds once the case settled (live objects of the caches, ...).
		if err := fetchPprof(ctx, http.DefaultClient, profileFrom+"/debug/pprof/heap", cfg.ProfilePath+".heap"); err != nil {
			return res, fmt.Errorf("heap profile: %w", err)
		}
	}

	claims := &metalv1alpha1.ServerClaimList{}
	if err := c.List(ctx, claims, client.InNamespace(benchNamespace)); err != nil {
		return res, err
	}
	servers := &metalv1alpha1.ServerList{}
	if err := c.List(ctx, servers); err != nil {
		return res, err
	}
	rackOf := map[string]string{}
	for _, s := range servers.Items {
		rackOf[s.Name] = s.Labels["rack"]
	}
	perRack := map[string]int{}
	res.UnboundReasons = map[string]int{}
	for _, cl := range claims.Items {
		if cl.Status.Phase == metalv1alpha1.PhaseBound {
			res.Bound++
			if cl.Spec.ServerRef != nil {
				perRack[rackOf[cl.Spec.ServerRef.Name]]++
			}
			continue
		}
		res.Unbound++
		reason := "none"
		if cond := meta.FindStatusCondition(cl.Status.Conditions, metalv1alpha1.ServerClaimBound); cond != nil {
			reason = cond.Reason
		}
		res.UnboundReasons[reason]++
		res.MaxStatusWritesPerUnbound = max(res.MaxStatusWritesPerUnbound, statusWrites[cl.Name])
	}
	if res.Bound > 0 {
		res.RequestsPerBind = float64(res.RequestsTotal) / float64(res.Bound)
		res.EventsPerBind = float64(res.EventsTotal) / float64(res.Bound)
	}
	for _, n := range perRack {
		res.MaxPerRack = max(res.MaxPerRack, n)
	}
	if cfg.Set && res.MaxPerRack > res.TopologyLimit {
		return res, fmt.Errorf("the set's topology is broken: %d members in one rack, at most %d allowed", res.MaxPerRack, res.TopologyLimit)
	}
	if cfg.Steady > 0 && !cfg.Floor {
		logf("keeping the operator running for %s", cfg.Steady)
		st, err := measureSteady(ctx, cfg, audit, []*countedBMC{em}, pid, cfg.Servers)
		if err != nil {
			return res, err
		}
		res.Steady = &st
	}
	res.Invariants, err = checkInvariants(ctx, c)
	return res, err
}

// checkInvariants checks the binding invariants and fails on a broken one.
func checkInvariants(ctx context.Context, c client.Client) (invariants.Report, error) {
	rep, err := invariants.Check(ctx, c, benchNamespace)
	if err != nil {
		return rep, err
	}
	if len(rep.Violations) > 0 || len(rep.Unsettled) > 0 {
		return rep, fmt.Errorf("binding invariants broken: %s", rep)
	}
	return rep, nil
}

// plane is the control plane of one case, with the operator's user and the audit log.
type plane struct {
	env            *envtest.Environment
	restCfg        *rest.Config
	client         client.Client
	kubeconfig     []byte
	kubeconfigPath string
	audit          *auditReader
	stop           func()
}

// startPlane starts kube-apiserver and etcd with an audit log, and adds the operator's user.
func startPlane(cfg Config, logf func(string, ...any)) (*plane, error) {
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, err
	}
	auditLog := filepath.Join(cfg.WorkDir, "audit.log")
	policy := filepath.Join(cfg.WorkDir, "audit-policy.yaml")
	_ = os.Remove(auditLog)
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		return nil, err
	}

	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(cfg.RootDir, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: cfg.AssetsDir,
		Scheme:                scheme.New(),
	}
	args := env.ControlPlane.GetAPIServer().Configure()
	args.Set("audit-policy-file", policy)
	args.Set("audit-log-path", auditLog)
	args.Set("audit-log-format", "json")
	args.Set("audit-log-mode", "batch")
	args.Set("audit-log-batch-max-wait", "1s")
	args.Set("audit-log-maxsize", "100000") // in MB: no rotation, the count reads one file
	args.Set("max-requests-inflight", "2000")
	args.Set("max-mutating-requests-inflight", "1000")
	logf("starting the control plane")
	restCfg, stopControlPlane, err := controlplane.Start(env)
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	pl := &plane{env: env, restCfg: restCfg, audit: &auditReader{path: auditLog}, stop: func() { _ = stopControlPlane() }}
	restCfg.QPS, restCfg.Burst = 5000, 10000
	if pl.client, err = client.New(restCfg, client.Options{Scheme: env.Scheme}); err != nil {
		pl.stop()
		return nil, err
	}
	user, err := env.AddUser(envtest.User{Name: operatorUser, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		pl.stop()
		return nil, err
	}
	if pl.kubeconfig, err = user.KubeConfig(); err != nil {
		pl.stop()
		return nil, err
	}
	pl.kubeconfigPath = filepath.Join(cfg.WorkDir, "kubeconfig")
	if err := os.WriteFile(pl.kubeconfigPath, pl.kubeconfig, 0o600); err != nil {
		pl.stop()
		return nil, err
	}
	return pl, nil
}

// logf is cfg.Log, or a logger that drops the lines.
func (cfg Config) logf() func(string, ...any) {
	if cfg.Log == nil {
		return func(string, ...any) {}
	}
	return cfg.Log
}

// startWriter starts what makes a case's writes: the operator, once idle (its pid, and the
// process to stop), or for a floor a client that writes as the operator's user (the
// harness's pid), after the operator settled what exists and was stopped again.
func (pl *plane) startWriter(ctx context.Context, cfg Config, logf func(string, ...any)) (int, client.Client, *operatorProcess, error) {
	op, err := startOperator(cfg, pl.kubeconfigPath)
	if err != nil {
		return 0, nil, nil, err
	}
	logf("waiting for the operator to be idle")
	if err := waitIdle(ctx, pl.audit, cfg.Quiet, 5*time.Minute); err != nil {
		op.stop()
		return 0, nil, nil, fmt.Errorf("operator never went idle: %w", err)
	}
	if cfg.Floor {
		// The floor writes on the objects the operator leaves before a burst (finalizers,
		// the conditions of an observed server): the same writes on the same objects, only
		// without the operator.
		op.stop()
		c, err := pl.operatorClient(ctx, cfg.Quiet)
		return os.Getpid(), c, nil, err
	}
	return op.cmd.Process.Pid, nil, op, nil
}

// operatorClient is a client that writes as the operator's user (for a floor), its API
// discovery done and the audit log idle before it returns.
func (pl *plane) operatorClient(ctx context.Context, quiet time.Duration) (client.Client, error) {
	opCfg, err := clientcmd.RESTConfigFromKubeConfig(pl.kubeconfig)
	if err != nil {
		return nil, err
	}
	opCfg.QPS, opCfg.Burst = pl.restCfg.QPS, pl.restCfg.Burst
	c, err := client.New(opCfg, client.Options{Scheme: pl.env.Scheme})
	if err != nil {
		return nil, err
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "warm-up"}, &metalv1alpha1.Server{}); err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	return c, waitIdle(ctx, pl.audit, quiet, time.Minute)
}

const benchNamespace = "default"

// createServers creates one Server per emulated system, with the status of an Available,
// powered-off server (as after discovery), in parallel.
func createServers(ctx context.Context, c client.Client, em *countedBMC, n, racks int) error {
	secret := &metalv1alpha1.BMCSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-bmc"},
		Data: map[string][]byte{
			metalv1alpha1.BMCSecretUsernameKey: []byte("bench"),
			metalv1alpha1.BMCSecretPasswordKey: []byte("bench-password"),
		},
	}
	if err := c.Create(ctx, secret); err != nil {
		return err
	}
	host, port := em.host, em.port
	systems := em.Systems()
	return parallel(ctx, n, 32, func(i int) error {
		s := &metalv1alpha1.Server{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("server-%05d", i),
				Labels: map[string]string{
					"hardwareType": "gpu-node", "location": "datacenter-1", "rack": fmt.Sprintf("rack-%02d", i%racks),
				},
			},
			Spec: metalv1alpha1.ServerSpec{
				SystemUUID: systems[i].UUID,
				SystemURI:  systems[i].URI,
				BMC: &metalv1alpha1.BMCAccess{
					Protocol:     metalv1alpha1.Protocol{Name: metalv1alpha1.ProtocolRedfishLocal, Port: port, Scheme: metalv1alpha1.HTTPScheme},
					Address:      host,
					BMCSecretRef: metalv1alpha1.LocalObjectReference{Name: secret.Name},
				},
			},
		}
		if err := c.Create(ctx, s); err != nil {
			return err
		}
		s.Status.State = metalv1alpha1.ServerStateAvailable
		s.Status.PowerState = metalv1alpha1.ServerOffPowerState
		s.Status.Manufacturer = "Emulated"
		return c.Status().Update(ctx, s)
	})
}

// createClaims creates n selector claims as fast as the API server takes them and returns
// the time each was created at.
func createClaims(ctx context.Context, c client.Client, n int, image string) (map[string]time.Time, error) {
	var mu sync.Mutex
	created := make(map[string]time.Time, n)
	err := parallel(ctx, n, 64, func(i int) error {
		cl := &metalv1alpha1.ServerClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: fmt.Sprintf("claim-%05d", i)},
			Spec: metalv1alpha1.ServerClaimSpec{
				Power: metalv1alpha1.PowerOn, Image: image,
				ServerSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"hardwareType": "gpu-node"}},
			},
		}
		at := time.Now()
		if err := c.Create(ctx, cl); err != nil {
			return err
		}
		mu.Lock()
		created[cl.Name] = at
		mu.Unlock()
		return nil
	})
	return created, err
}

// createSet creates one ServerClaimSet of n replicas of the claims' template, at most
// perRack in one rack, and returns the creation time of its members-to-be.
func createSet(ctx context.Context, c client.Client, n, perRack int, image string) (map[string]time.Time, error) {
	set := &fleetv1alpha1.ServerClaimSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "bench"},
		Spec: fleetv1alpha1.ServerClaimSetSpec{
			Replicas: int32(n),
			Template: metalv1alpha1.ServerClaimSpec{
				Power: metalv1alpha1.PowerOn, Image: image,
				ServerSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"hardwareType": "gpu-node"}},
			},
			Topology: []fleetv1alpha1.TopologyLevel{{Key: "rack", MaxPerDomain: int32(perRack)}},
		},
	}
	at := time.Now()
	if err := c.Create(ctx, set); err != nil {
		return nil, err
	}
	created := make(map[string]time.Time, n)
	for i := range n {
		created[fmt.Sprintf("%s-%d", set.Name, i)] = at
	}
	return created, nil
}

func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return errors.Join(<-errs, ctx.Err())
}

// operatorProcess is the operator running as a child process.
type operatorProcess struct {
	cmd       *exec.Cmd
	done      chan struct{}
	pprofAddr string
}

// fetchProfile takes a CPU profile through the pprof endpoint under base (the operator's,
// or the API server's).
func fetchProfile(ctx context.Context, hc *http.Client, base string, seconds int, path string) error {
	return fetchPprof(ctx, hc, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(base, "/"), seconds), path)
}

// fetchPprof saves what a pprof URL answers to path.
func fetchPprof(ctx context.Context, hc *http.Client, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof answered %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func startOperator(cfg Config, kubeconfig string) (*operatorProcess, error) {
	logFile, err := os.Create(filepath.Join(cfg.WorkDir, "operator.log"))
	if err != nil {
		return nil, err
	}
	resync := cfg.ResyncInterval
	if resync <= 0 {
		resync = 30 * time.Minute
	}
	pprofAddr := ""
	if cfg.ProfilePath != "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		pprofAddr = ln.Addr().String()
		_ = ln.Close()
	}
	args := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--pprof-bind-address=" + pprofAddr,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
		"--leader-elect=false",
		"--server-resync-interval=" + resync.String(),
		"--enable-boot-service=false",
	}, cfg.ManagerArgs...)
	cmd := exec.Command(cfg.ManagerBinary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cfg.ManagerBinary, err)
	}
	p := &operatorProcess{cmd: cmd, done: make(chan struct{}), pprofAddr: pprofAddr}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *operatorProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// cpuSeconds is a process's user+system CPU time, from /proc.
func cpuSeconds(pid int) (float64, error) {
	st, err := procfs.ReadStat(pid)
	return st.CPUSeconds, err
}

// childCPU is the CPU time of this process's child with the given command name (the
// control plane envtest started), 0 when there is none.
func childCPU(comm string) float64 {
	self := os.Getpid()
	for _, pid := range procfs.Processes() {
		if st, err := procfs.ReadStat(pid); err == nil && st.Comm == comm && st.PPID == self {
			return st.CPUSeconds
		}
	}
	return 0
}

// peakRSSMiB is a process's peak resident set size, from /proc.
func peakRSSMiB(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// auditEvent is the part of an audit event the benchmark reads.
type auditEvent struct {
	Verb                     string    `json:"verb"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
	User                     struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Name        string `json:"name"`
	} `json:"objectRef"`
}

// auditReader reads the API server's audit log.
type auditReader struct{ path string }

func (a *auditReader) offset() int64 {
	fi, err := os.Stat(a.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (a *auditReader) read(from int64) ([]auditEvent, error) {
	f, err := os.Open(a.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(from, 0); err != nil {
		return nil, err
	}
	var events []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err == nil {
			events = append(events, e)
		}
	}
	return events, sc.Err()
}

// operatorRequests counts the operator's non-watch requests in the log from an offset.
func (a *auditReader) operatorRequests(from int64) (int, error) {
	events, err := a.read(from)
	n := 0
	for _, e := range events {
		if e.User.Username == operatorUser && e.Verb != "watch" {
			n++
		}
	}
	return n, err
}

// waitIdle waits until the operator has made no request for quiet.
func waitIdle(ctx context.Context, a *auditReader, quiet, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	// The operator must have started talking first (its informers' lists).
	for {
		n, _ := a.operatorRequests(0)
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the operator made no request")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		from := a.offset()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(quiet + time.Second): // + the audit batch's max wait
		}
		n, err := a.operatorRequests(from)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still %d requests per %s", n, quiet)
		}
	}
}

// claimWatch records when each claim was first seen Bound or Unbound-with-a-reason.
type claimWatch struct {
	cancel  context.CancelFunc
	mu      sync.Mutex
	bound   map[string]time.Time
	unbound map[string]time.Time
	changed chan struct{}
}

func watchClaims(ctx context.Context, cfg *rest.Config) (*claimWatch, error) {
	w := &claimWatch{bound: map[string]time.Time{}, unbound: map[string]time.Time{}, changed: make(chan struct{}, 1)}
	cancel, err := observeAll(ctx, cfg, &metalv1alpha1.ServerClaim{}, func(obj any) {
		cl, ok := obj.(*metalv1alpha1.ServerClaim)
		if !ok {
			return
		}
		now := time.Now()
		w.mu.Lock()
		switch cl.Status.Phase {
		case metalv1alpha1.PhaseBound:
			if _, seen := w.bound[cl.Name]; !seen {
				w.bound[cl.Name] = now
			}
			delete(w.unbound, cl.Name)
		case metalv1alpha1.PhaseUnbound:
			if _, seen := w.unbound[cl.Name]; !seen {
				w.unbound[cl.Name] = now
			}
		}
		w.mu.Unlock()
		notify(w.changed)
	})
	w.cancel = cancel
	return w, err
}

// observeAll calls observe with every object of obj's kind as it is added or updated, from
// an informer that runs until the returned cancel is called.
func observeAll(ctx context.Context, cfg *rest.Config, obj client.Object, observe func(any)) (context.CancelFunc, error) {
	ctx, cancel := context.WithCancel(ctx)
	ca, err := cache.New(cfg, cache.Options{Scheme: scheme.New()})
	if err != nil {
		cancel()
		return nil, err
	}
	inf, err := ca.GetInformer(ctx, obj)
	if err != nil {
		cancel()
		return nil, err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
	}); err != nil {
		cancel()
		return nil, err
	}
	go func() { _ = ca.Start(ctx) }()
	if !ca.WaitForCacheSync(ctx) {
		cancel()
		return nil, fmt.Errorf("the watch of %T did not sync", obj)
	}
	return cancel, nil
}

// notify wakes up a waiter on ch without blocking.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (w *claimWatch) stop() { w.cancel() }

// waitSettled waits until wantBound claims are Bound and the others Unbound, and returns
// when the last of them settled.
func (w *claimWatch) waitSettled(ctx context.Context, wantBound, total int, timeout time.Duration) (time.Time, error) {
	return waitFor(ctx, w.changed, timeout, nil, func() (time.Time, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		b, u := len(w.bound), len(w.unbound)
		var last time.Time
		if b >= wantBound && b+u >= total {
			for _, t := range w.bound {
				last = later(last, t)
			}
			for _, t := range w.unbound {
				last = later(last, t)
			}
		}
		return last, fmt.Sprintf("%d Bound, %d Unbound of %d", b, u, total)
	})
}

// waitFor calls done when changed fires, and every 100 ms, until it returns a time, and
// returns that time. done also says where things stand: logged every 10 s (with a logf),
// and in the error after timeout.
func waitFor(ctx context.Context, changed <-chan struct{}, timeout time.Duration, logf func(string, ...any), done func() (time.Time, string)) (time.Time, error) {
	deadline := time.After(timeout)
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	for {
		at, state := done()
		if !at.IsZero() {
			return at, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-deadline:
			return time.Time{}, fmt.Errorf("timed out: %s", state)
		case <-progress.C:
			if logf != nil {
				logf("%s", state)
			}
		case <-changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// latencies returns the percentiles of creation -> Bound.
func (w *claimWatch) latencies(created map[string]time.Time) (p50, p90, p99, maxLatency time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ds []time.Duration
	for name, t := range w.bound {
		if c, ok := created[name]; ok {
			ds = append(ds, t.Sub(c))
		}
	}
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return at(0.50), at(0.90), at(0.99), ds[len(ds)-1]
}

// Markdown renders results as a table.
func Markdown(results []Result) string {
	var b strings.Builder
	b.WriteString("| servers / claims | all settled | p50 / p90 / p99 / max bind | bound / unbound | operator requests per bind (events) | requests after settled | max status writes per unbound claim | operator CPU | CPU per claim | peak RSS | API server / etcd / harness CPU |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		what := fmt.Sprintf("%d / %d", r.Servers, r.Claims)
		if r.Set {
			what += fmt.Sprintf(" (one set, at most %d per rack: %d)", r.TopologyLimit, r.MaxPerRack)
		}
		if r.Floor {
			what += " floor (no operator; CPU is the harness's)"
		}
		if r.Boot != nil {
			what += " (boot service on)"
		}
		fmt.Fprintf(&b, "| %s | %.2f s | %s / %s / %s / %s | %d / %d | %.2f (+%.2f) | %d | %d | %.2f s | %.2f ms | %.0f MiB | %.1f s / %.1f s / %.1f s |\n",
			what, r.AllSettled.Seconds(), ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max),
			r.Bound, r.Unbound, r.RequestsPerBind, r.EventsPerBind, r.RequestsAfter, r.MaxStatusWritesPerUnbound,
			r.CPUSeconds, 1000*r.CPUSeconds/float64(max(r.Claims, 1)), r.PeakRSSMiB, r.APIServerCPUSeconds, r.EtcdCPUSeconds, r.HarnessCPUSeconds)
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// RequestBreakdown renders the requests by verb and resource.
func RequestBreakdown(r Result) string {
	keys := make([]string, 0, len(r.Requests))
	for k := range r.Requests {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d (%.2f/bind)", k, r.Requests[k], float64(r.Requests[k])/float64(max(r.Bound, 1))))
	}
	return strings.Join(parts, ", ")
}
