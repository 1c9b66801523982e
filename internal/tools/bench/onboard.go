package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

// OnboardConfig is an onboarding case: BMCs BMC objects, each reaching its own emulator of
// SystemsPerBMC systems, enrolled until every Server is Available.
type OnboardConfig struct {
	BMCs, SystemsPerBMC int
}

// OnboardResult is what an onboarding case measured.
type OnboardResult struct {
	BMCs, Servers int
	// Floor says the harness made the floor's writes instead of an operator.
	Floor bool
	// AllAvailable is the time from the first BMC created to the last Server seen Available.
	AllAvailable time.Duration
	// RequestTally is what the operator sent to the API server meanwhile.
	RequestTally
	// Redfish is the requests the BMCs received meanwhile; RedfishByShape by method and path.
	Redfish        int
	RedfishByShape map[string]int
	// CPUSeconds is the operator's (the harness's for the floor) CPU time meanwhile; PeakRSSMiB
	// the operator's peak memory.
	CPUSeconds, APIServerCPUSeconds, EtcdCPUSeconds, PeakRSSMiB float64
}

// WritesPerServer is the writes (events apart) per Server.
func (o OnboardResult) WritesPerServer() float64 {
	return float64(o.Writes) / float64(max(o.Servers, 1))
}

// RunOnboard performs one onboarding case: with cfg.Floor the harness makes the floor's
// writes itself (onboardFloor), else the operator enrols the BMCs.
func RunOnboard(ctx context.Context, cfg Config, oc OnboardConfig) (res OnboardResult, err error) {
	logf := cfg.logf()
	pl, err := startPlane(cfg, logf)
	if err != nil {
		return res, err
	}
	defer pl.stop()
	c, audit := pl.client, pl.audit
	res.BMCs, res.Servers, res.Floor = oc.BMCs, oc.BMCs*oc.SystemsPerBMC, cfg.Floor

	bmcs := make([]*countedBMC, 0, oc.BMCs)
	defer func() {
		for _, b := range bmcs {
			b.close()
		}
	}()
	objs := make([]*metalv1alpha1.BMC, 0, oc.BMCs)
	for i := range oc.BMCs {
		user, password := fmt.Sprintf("bench-%d", i), fmt.Sprintf("bench-password-%d", i)
		b, err := startCountedBMC(emulator.Options{Systems: oc.SystemsPerBMC, UUIDSeed: fmt.Sprintf("onboard-%d", i), Username: user, Password: password})
		if err != nil {
			return res, err
		}
		bmcs = append(bmcs, b)
		secret := &metalv1alpha1.BMCSecret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bmc-%02d", i)},
			Data: map[string][]byte{
				metalv1alpha1.BMCSecretUsernameKey: []byte(user),
				metalv1alpha1.BMCSecretPasswordKey: []byte(password),
			},
		}
		if err := c.Create(ctx, secret); err != nil {
			return res, err
		}
		objs = append(objs, &metalv1alpha1.BMC{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bmc-%02d", i), Labels: map[string]string{"rack": fmt.Sprintf("rack-%02d", i)}},
			Spec: metalv1alpha1.BMCSpec{
				Access:       &metalv1alpha1.InlineEndpoint{IP: b.host},
				Protocol:     metalv1alpha1.Protocol{Name: metalv1alpha1.ProtocolRedfish, Port: b.port, Scheme: metalv1alpha1.HTTPScheme},
				BMCSecretRef: metalv1alpha1.LocalObjectReference{Name: secret.Name},
			},
		})
	}

	pid, floorClient, op, err := pl.startWriter(ctx, cfg, logf)
	if err != nil {
		return res, err
	}
	if op != nil {
		defer op.stop()
	}
	watch, err := watchServers(ctx, pl.restCfg)
	if err != nil {
		return res, err
	}
	defer watch.stop()

	baseline := audit.offset()
	redfishBefore := countAll(bmcs)
	cpu, err := startCPU(pid)
	if err != nil {
		return res, err
	}

	logf("creating %d BMCs of %d systems", oc.BMCs, oc.SystemsPerBMC)
	start := time.Now()
	if err := parallel(ctx, len(objs), len(objs), func(i int) error { return c.Create(ctx, objs[i]) }); err != nil {
		return res, err
	}
	floorDone := make(chan error, 1)
	if cfg.Floor {
		go func() { floorDone <- onboardFloor(ctx, floorClient, objs, bmcs) }()
	}
	logf("waiting for %d servers Available", res.Servers)
	last, err := watch.waitAvailable(ctx, res.Servers, cfg.Timeout, logf)
	if err != nil {
		return res, err
	}
	if cfg.Floor {
		if err := <-floorDone; err != nil {
			return res, fmt.Errorf("the floor's writes: %w", err)
		}
	}
	res.AllAvailable = last.Sub(start)
	if res.CPUSeconds, res.APIServerCPUSeconds, res.EtcdCPUSeconds, err = cpu.read(); err != nil {
		return res, err
	}
	rf := countAll(bmcs).since(redfishBefore)
	res.Redfish, res.RedfishByShape = rf.total, rf.byShape

	// Let the audit batch flush, then count what the operator asked for until the last
	// server was Available.
	time.Sleep(cfg.Quiet)
	events, err := audit.read(baseline)
	if err != nil {
		return res, err
	}
	for _, e := range events {
		if !e.RequestReceivedTimestamp.After(last) {
			res.add(e)
		}
	}
	if !cfg.Floor {
		if res.PeakRSSMiB, err = peakRSSMiB(pid); err != nil {
			return res, err
		}
	}
	if _, err := checkInvariants(ctx, c); err != nil {
		return res, err
	}
	return res, nil
}

// onboardFloor is the floor of onboarding: without the operator, the harness makes, as the
// operator's user, exactly the writes the design needs, 2 per BMC and 5 per Server:
//
//	per BMC:    finalizer (patch), status Enabled with the manager's facts (status patch)
//	per Server: create (with the BMC reference, owner and labels), finalizer (patch),
//	            status Initial, status Discovery (system found, power observed),
//	            status Available with the inventory (three status patches)
//
// It reads nothing from the API server and sends no Redfish request: the inventory it writes
// is built from the emulator's system list, so what is left is the cost of the writes.
func onboardFloor(ctx context.Context, c client.Client, objs []*metalv1alpha1.BMC, bmcs []*countedBMC) error {
	type job struct {
		owner *metalv1alpha1.BMC
		pos   int
		uuid  string
		uri   string
	}
	var jobs []job
	err := parallel(ctx, len(objs), floorWorkers, func(i int) error {
		b := objs[i]
		base := b.DeepCopy()
		controllerutil.AddFinalizer(b, metalv1alpha1.BMCFinalizer)
		if err := c.Patch(ctx, b, client.MergeFrom(base)); err != nil {
			return err
		}
		base = b.DeepCopy()
		b.Status.State = metalv1alpha1.BMCStateEnabled
		b.Status.IP = b.Spec.Access.IP
		b.Status.Manufacturer, b.Status.Model = emulator.DefaultManufacturer, emulator.DefaultModel
		meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{Type: metalv1alpha1.BMCReady, Status: metav1.ConditionTrue,
			Reason: metalv1alpha1.ReasonEnrolled, Message: fmt.Sprintf("%d of %d systems enrolled as Servers", len(bmcs[i].Systems()), len(bmcs[i].Systems()))})
		return c.Status().Patch(ctx, b, client.MergeFrom(base))
	})
	if err != nil {
		return err
	}
	for i, b := range bmcs {
		for pos, sys := range b.Systems() {
			jobs = append(jobs, job{owner: objs[i], pos: pos, uuid: strings.ToLower(sys.UUID), uri: sys.URI})
		}
	}
	memory := resource.NewQuantity(64<<30, resource.BinarySI)
	return parallel(ctx, len(jobs), floorWorkers, func(i int) error {
		j := jobs[i]
		s := &metalv1alpha1.Server{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-system-%d", j.owner.Name, j.pos), Labels: j.owner.Labels},
			Spec: metalv1alpha1.ServerSpec{
				SystemUUID: j.uuid, SystemURI: j.uri,
				BMCRef: &metalv1alpha1.LocalObjectReference{Name: j.owner.Name},
			},
		}
		if err := controllerutil.SetControllerReference(j.owner, s, c.Scheme()); err != nil {
			return err
		}
		if err := c.Create(ctx, s); err != nil {
			return err
		}
		base := s.DeepCopy()
		controllerutil.AddFinalizer(s, metalv1alpha1.ServerFinalizer)
		if err := c.Patch(ctx, s, client.MergeFrom(base)); err != nil {
			return err
		}
		steps := []func(st *metalv1alpha1.ServerStatus){
			func(st *metalv1alpha1.ServerStatus) { st.State = metalv1alpha1.ServerStateInitial },
			func(st *metalv1alpha1.ServerStatus) {
				st.State = metalv1alpha1.ServerStateDiscovery
				st.PowerState = metalv1alpha1.ServerOffPowerState
				meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: metalv1alpha1.ServerBMCReachable, Status: metav1.ConditionTrue,
					Reason: metalv1alpha1.ReasonBMCReachable, Message: "The BMC answered"})
			},
			func(st *metalv1alpha1.ServerStatus) {
				st.State = metalv1alpha1.ServerStateAvailable
				st.Manufacturer, st.Model = emulator.DefaultManufacturer, emulator.DefaultModel
				st.SerialNumber = j.uuid[:12]
				st.TotalSystemMemory = memory
				st.Processors = []metalv1alpha1.Processor{{ID: "CPU1"}, {ID: "CPU2"}}
				meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: metalv1alpha1.ServerDiscovered, Status: metav1.ConditionTrue,
					Reason: metalv1alpha1.ReasonInventoryRead, Message: "The inventory was read from the BMC"})
			},
		}
		for _, step := range steps {
			base := s.DeepCopy()
			step(&s.Status)
			if err := c.Status().Patch(ctx, s, client.MergeFrom(base)); err != nil {
				return err
			}
		}
		return nil
	})
}

// serverWatch records when each Server was first seen Available.
type serverWatch struct {
	cancel    context.CancelFunc
	mu        sync.Mutex
	available map[string]time.Time
	changed   chan struct{}
}

func watchServers(ctx context.Context, cfg *rest.Config) (*serverWatch, error) {
	w := &serverWatch{available: map[string]time.Time{}, changed: make(chan struct{}, 1)}
	cancel, err := observeAll(ctx, cfg, &metalv1alpha1.Server{}, func(obj any) {
		s, ok := obj.(*metalv1alpha1.Server)
		if !ok || s.Status.State != metalv1alpha1.ServerStateAvailable {
			return
		}
		now := time.Now()
		w.mu.Lock()
		if _, seen := w.available[s.Name]; !seen {
			w.available[s.Name] = now
		}
		w.mu.Unlock()
		notify(w.changed)
	})
	w.cancel = cancel
	return w, err
}

func (w *serverWatch) stop() { w.cancel() }

// waitAvailable waits until want Servers were seen Available and returns when the last was.
func (w *serverWatch) waitAvailable(ctx context.Context, want int, timeout time.Duration, logf func(string, ...any)) (time.Time, error) {
	return waitFor(ctx, w.changed, timeout, logf, func() (time.Time, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		var last time.Time
		if len(w.available) >= want {
			for _, t := range w.available {
				last = later(last, t)
			}
		}
		return last, fmt.Sprintf("%d of %d servers Available", len(w.available), want)
	})
}

// OnboardMarkdown renders onboarding results as a table; a floor row gives the ratio of the
// rows after it until the next floor.
func OnboardMarkdown(results []OnboardResult) string {
	var b strings.Builder
	b.WriteString("| case | all Available | ratio to the floor | API writes per server (events) | API reads per server | Redfish requests per server | operator CPU | peak RSS | API server / etcd CPU |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	var floor time.Duration
	for _, r := range results {
		what, ratio := fmt.Sprintf("%d BMCs x %d", r.BMCs, r.Servers/max(r.BMCs, 1)), ""
		if r.Floor {
			what += " floor (no operator; CPU is the harness's)"
			floor = r.AllAvailable
		} else if floor > 0 {
			ratio = fmt.Sprintf("%.2fx", r.AllAvailable.Seconds()/floor.Seconds())
		}
		fmt.Fprintf(&b, "| %s | %.2f s | %s | %.2f (+%.2f) | %.2f | %.2f | %.2f s | %.0f MiB | %.1f s / %.1f s |\n",
			what, r.AllAvailable.Seconds(), ratio, r.WritesPerServer(), float64(r.Events)/float64(max(r.Servers, 1)),
			float64(r.Reads)/float64(max(r.Servers, 1)), float64(r.Redfish)/float64(max(r.Servers, 1)),
			r.CPUSeconds, r.PeakRSSMiB, r.APIServerCPUSeconds, r.EtcdCPUSeconds)
	}
	return b.String()
}
