// Package devenv is the embedded environment behind `make run`: a local control plane (the
// kube-apiserver and etcd the tests use) with the CRDs installed, an emulated Redfish fleet,
// a local OCI registry serving a demo OS image as my-osimage:latest, and the operator with
// its boot service, all in one process. The seed's ServerClaim examples (config/samples)
// work against it as written.
package devenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/boot/image"
	"github.com/metalfleet/metal-operator/internal/operator"
	"github.com/metalfleet/metal-operator/internal/scheme"
	"github.com/metalfleet/metal-operator/internal/tools/controlplane"
)

// The emulated fleet matches config/samples: its BMC listens on 127.0.0.1:8000 with the
// credentials of the sample BMCSecret, and system 0 (UUID seed below) is the sample Server
// my-server. The other systems become Servers labelled like a real fleet.
const (
	SampleUUIDSeed    = "metal-operator-samples"
	SampleBMCUser     = "admin"
	SampleBMCPassword = "password"
	SampleBMCSecret   = "my-bmc-secret"
	// DemoImage is the image the sample claims boot, published in the local registry.
	DemoImage = "my-osimage:latest"
)

// Options configure the environment.
type Options struct {
	// DataDir keeps etcd's data and the kubeconfig.
	DataDir string
	// RootDir is the repository root (CRDs); AssetsDir holds kube-apiserver and etcd.
	RootDir, AssetsDir string
	// Systems is the size of the emulated fleet, my-server included.
	Systems int
	// BMCAddr, RegistryAddr and BootAddr are the listen addresses of the emulated BMC, the
	// OCI registry and the boot server.
	BMCAddr, RegistryAddr, BootAddr string
	// PowerDelay is how long an emulated power transition takes.
	PowerDelay time.Duration
	// Profile is the vendor the emulated BMC behaves like (docs/vendors.md; default generic).
	Profile emulator.Profile
	// Operator are the operator's options; the environment sets the boot service's.
	Operator operator.Options
	// Machines plays the emulated systems' network boots (machines.go): the in-band agent on
	// a fixture tree per system, or an ordinary OS. AgentBinary runs that metal-agent binary
	// (empty: the agent runs in-process).
	Machines    bool
	AgentBinary string
	// ManagerRBAC runs the operator as the manager's service account with the roles of
	// config/rbac only (and leader election on), instead of as an administrator.
	ManagerRBAC bool
	// Log receives progress lines.
	Log io.Writer
}

// DefaultOptions are the defaults of `make run`.
func DefaultOptions() Options {
	o := operator.DefaultOptions()
	o.MetricsAddr = "127.0.0.1:8080"
	o.ProbeAddr = "127.0.0.1:8081"
	o.Server.ResyncInterval = 30 * time.Second
	o.Server.PowerOffTimeout = 20 * time.Second
	o.Server.TransitionPollInterval = time.Second
	// Discovery boots the agent, and a released server is wiped (Quick), on the emulated
	// machines: a newcomer sees both.
	o.Server.DiscoveryBoot = true
	o.Server.AgentImage = AgentImage
	o.Server.AgentNamespace = ManagerNamespace
	o.Server.AgentBootTimeout = 2 * time.Minute
	o.Server.AgentRetryDelay = 10 * time.Second
	o.Server.DefaultWipePolicy = metalv1alpha1.WipePolicyQuick
	return Options{
		Machines:     true,
		DataDir:      filepath.Join("bin", "devenv"),
		Systems:      8,
		BMCAddr:      "127.0.0.1:8000",
		RegistryAddr: "127.0.0.1:5000",
		BootAddr:     "127.0.0.1:8082",
		PowerDelay:   2 * time.Second,
		Profile:      emulator.ProfileGeneric,
		Operator:     o,
		Log:          os.Stderr,
	}
}

// Env is a running environment.
type Env struct {
	// Kubeconfig is the path of an administrator kubeconfig.
	Kubeconfig string
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Emulator is the emulated BMC of the fleet.
	Emulator *emulator.Emulator
	// RegistryHost is host:port of the OCI registry.
	RegistryHost string

	cp       *envtest.Environment
	stops    []func()
	operator chan error
}

// Start starts everything and returns once the fleet is registered and the operator runs.
// The operator stops when ctx is cancelled; call Stop to release the rest.
func Start(ctx context.Context, o Options) (env *Env, err error) {
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }
	started := &Env{}
	env = started
	defer func() {
		if err != nil {
			started.Stop() // env is nil by then
		}
	}()
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}

	logf("Starting the control plane (data in %s)", dataDir)
	env.cp = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(o.RootDir, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: o.AssetsDir,
		Scheme:                scheme.New(),
	}
	etcdDir := filepath.Join(dataDir, "etcd")
	if err := os.MkdirAll(etcdDir, 0o700); err != nil {
		return nil, err
	}
	env.cp.ControlPlane.Etcd = &envtest.Etcd{DataDir: etcdDir}
	cfg, stopControlPlane, err := controlplane.Start(env.cp)
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	env.stops = append(env.stops, func() { _ = stopControlPlane() })
	env.Config = cfg
	user, err := env.cp.AddUser(envtest.User{Name: "metal-dev-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	env.Kubeconfig = filepath.Join(dataDir, "kubeconfig")
	if err := os.WriteFile(env.Kubeconfig, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: env.cp.Scheme})
	if err != nil {
		return nil, err
	}

	logf("Starting an emulated Redfish BMC (%s) with %d systems on %s", o.Profile, o.Systems, o.BMCAddr)
	emOpts := emulator.Options{
		Systems: o.Systems, UUIDSeed: SampleUUIDSeed, Username: SampleBMCUser, Password: SampleBMCPassword,
		PowerDelay: o.PowerDelay, Profile: o.Profile,
	}
	if o.Profile == "" || o.Profile == emulator.ProfileGeneric {
		emOpts.Manufacturer, emOpts.Model = "Emulated", "Virtual Server 1000"
	}
	var ms *machines
	if o.Machines {
		ms = newMachines(ctx, "http://"+o.BootAddr, filepath.Join(dataDir, "machines"), o.AgentBinary, logf)
		emOpts.OnBoot = ms.onBoot
	}
	em := emulator.New(emOpts)
	bmcLn, err := net.Listen("tcp", o.BMCAddr)
	if err != nil {
		return nil, fmt.Errorf("the emulated BMC cannot listen on %s: %w", o.BMCAddr, err)
	}
	env.Emulator = em
	env.stops = append(env.stops, serve(bmcLn, em.Handler()))

	logf("Starting an OCI registry on %s with %s", o.RegistryAddr, DemoImage)
	regLn, err := net.Listen("tcp", o.RegistryAddr)
	if err != nil {
		return nil, fmt.Errorf("the registry cannot listen on %s: %w", o.RegistryAddr, err)
	}
	env.stops = append(env.stops, serve(regLn, registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	env.RegistryHost = regLn.Addr().String()
	for _, img := range []string{DemoImage, AgentImage} {
		if err := PushDemoImage(env.RegistryHost + "/" + img); err != nil {
			return nil, fmt.Errorf("publishing the demo image %s: %w", img, err)
		}
	}

	if o.Operator.Server.AgentNamespace != "" {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.Operator.Server.AgentNamespace}}
		if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
	}
	logf("Registering the fleet")
	if err := registerFleet(ctx, c, em, bmcLn.Addr().String(), o.RootDir); err != nil {
		return nil, err
	}

	opts := o.Operator
	opts.Boot.Enabled = true
	opts.Boot.Addr = o.BootAddr
	opts.Boot.ExternalURL = "http://" + o.BootAddr
	opts.Boot.DefaultRegistry = env.RegistryHost
	opts.Boot.InsecureRegistries = append(opts.Boot.InsecureRegistries, env.RegistryHost)
	managerCfg := cfg
	if o.ManagerRBAC {
		if managerCfg, err = managerIdentity(ctx, c, cfg, o.RootDir); err != nil {
			return nil, err
		}
		opts.LeaderElect, opts.LeaderElectionNS = true, ManagerNamespace
	}
	mgr, err := operator.New(managerCfg, opts)
	if err != nil {
		return nil, err
	}
	env.operator = make(chan error, 1)
	go func() { env.operator <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return nil, errors.New("the operator's cache did not sync")
	}
	return env, nil
}

// LogFileName is the file in the data folder that `make run` sends the logs of the control
// plane and the operator to, so that the terminal shows the banner and progress only.
const LogFileName = "devenv.log"

// OpenLog opens a log file afresh for this run, making its folder.
func OpenLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
}

// Banner is what `make run` prints once everything runs: how to use the environment.
func (e *Env) Banner(o Options, logFile string) string {
	return fmt.Sprintf(`
metal-operator is running on an embedded control plane.

  export KUBECONFIG=%[1]s
  kubectl apply -f config/samples/        # the seed's ServerClaims, their ignition Secret, my-server
  kubectl get srv,scl,sbc                 # watch the states move (add -w to follow)
  kubectl metal fleet                     # the fleet by state and rack (go install ./cmd/kubectl-metal)
  kubectl delete -f config/samples/metal_v1alpha1_serverclaim.yaml   # release the servers

Emulated BMC: http://%[2]s (user %[3]s)   OCI registry: %[4]s (serves %[5]s)
Logs of the control plane and the operator: %[6]s (tail -f to follow)
Press Ctrl-C to stop.
`, e.Kubeconfig, o.BMCAddr, SampleBMCUser, e.RegistryHost, DemoImage, logFile)
}

// Wait blocks until the operator stops (its context is cancelled) and returns its error.
func (e *Env) Wait() error { return <-e.operator }

// Stop stops the registry, the emulated BMC and the control plane, in reverse order.
func (e *Env) Stop() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
	e.stops = nil
}

func serve(ln net.Listener, h http.Handler) (stop func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}

// registerFleet creates the sample BMCSecret and a Server for every system but the first
// (that one is the sample my-server), labelled by hardware type and location.
func registerFleet(ctx context.Context, c client.Client, em *emulator.Emulator, bmcAddr, rootDir string) error {
	secret, err := applySampleSecret(ctx, c, rootDir)
	if err != nil {
		return err
	}
	host, portStr, err := net.SplitHostPort(bmcAddr)
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(portStr)
	for i, sys := range em.Systems() {
		if i == 0 {
			continue // my-server, from config/samples
		}
		hardware, location := "compute-node", "datacenter-2"
		if i%2 == 1 {
			hardware = "gpu-node"
		}
		if i <= 4 {
			location = "datacenter-1"
		}
		s := &metalv1alpha1.Server{
			ObjectMeta: metav1.ObjectMeta{
				Name:   fmt.Sprintf("server-%02d", i),
				Labels: map[string]string{"hardwareType": hardware, "location": location},
			},
			Spec: metalv1alpha1.ServerSpec{
				SystemUUID: sys.UUID,
				BMC: &metalv1alpha1.BMCAccess{
					Protocol:     metalv1alpha1.Protocol{Name: metalv1alpha1.ProtocolRedfish, Port: int32(port), Scheme: metalv1alpha1.HTTPScheme},
					Address:      host,
					BMCSecretRef: metalv1alpha1.LocalObjectReference{Name: secret},
				},
			},
		}
		if err := c.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// LastAppliedAnnotation is where kubectl apply keeps the configuration it applied last.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// SampleBMCSecretFile is the sample BMCSecret, relative to the repository root.
var SampleBMCSecretFile = filepath.Join("config", "samples", "metal_v1alpha1_bmcsecret.yaml")

// applySampleSecret creates the sample BMCSecret the emulated fleet's servers use, as
// `kubectl apply -f` of its file would: from the file, with the last-applied annotation, so
// that applying config/samples afterwards updates it without a warning. It returns its name.
func applySampleSecret(ctx context.Context, c client.Client, rootDir string) (string, error) {
	path := filepath.Join(rootDir, SampleBMCSecretFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the sample BMCSecret: %w", err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	applied, err := json.Marshal(u.Object)
	if err != nil {
		return "", err
	}
	u.SetAnnotations(map[string]string{LastAppliedAnnotation: string(applied) + "\n"})
	err = c.Create(ctx, u)
	if apierrors.IsAlreadyExists(err) {
		// A data folder of an older run: give its secret the annotation it lacks.
		err = c.Patch(ctx, u, client.Merge)
	}
	if err != nil {
		return "", fmt.Errorf("creating BMCSecret %s: %w", u.GetName(), err)
	}
	return u.GetName(), nil
}

// PushDemoImage publishes a small demo OS image under ref: kernel, initramfs and root
// filesystem layers of the media types the boot service resolves (docs/boot.md). Their
// content is a placeholder, not a bootable kernel: the environment shows the flow, and a
// site publishes its real images the same way.
func PushDemoImage(ref string) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, l := range []struct{ mediaType, content string }{
		{image.MediaTypeKernel, "metal-operator demo kernel\n"},
		{image.MediaTypeInitramfs, "metal-operator demo initramfs\n"},
		{image.MediaTypeRootFS, "metal-operator demo root filesystem\n"},
	} {
		layer := static.NewLayer([]byte(l.content), types.MediaType(l.mediaType))
		if img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.MediaType(l.mediaType)}); err != nil {
			return err
		}
	}
	return remote.Write(r, img)
}
