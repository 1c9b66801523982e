package boot_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	ignconfig "github.com/coreos/ignition/v2/config"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/boot"
	"github.com/metalfleet/metal-operator/internal/boot/image"
	"github.com/metalfleet/metal-operator/internal/boot/image/imagetest"
	bootmetrics "github.com/metalfleet/metal-operator/internal/boot/metrics"
	"github.com/metalfleet/metal-operator/internal/controller"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func init() {
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
}

// fixture is one test's namespace, registry, manager (with the boot configuration
// controller) and boot server behind an httptest server.
type fixture struct {
	ns       string
	reg      *imagetest.Registry
	client   client.Client // the manager's cached client
	reader   client.Reader
	resolver *image.Resolver
	srv      *boot.Server
	base     string
}

func start(t *testing.T, mutate ...func(*boot.Options)) *fixture {
	t.Helper()
	f := &fixture{ns: env.Namespace(t), reg: imagetest.NewRegistry(t)}
	var err error
	if f.resolver, err = image.NewResolver(image.Options{DefaultRegistry: f.reg.Host}); err != nil {
		t.Fatal(err)
	}
	mgr := env.NewManager(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	if err := index.SetupBoot(ctx, mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	if err := (&controller.ServerBootConfigurationReconciler{
		Client:   mgr.GetClient(),
		Resolver: f.resolver,
		Recorder: mgr.GetEventRecorder("serverbootconfiguration-controller"),
		Options: controller.ServerBootConfigurationOptions{ImageRetryMin: 100 * time.Millisecond, ImageRetryMax: 400 * time.Millisecond,
			MaxConcurrentReconciles: 4, Namespace: f.ns},
	}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	f.client, f.reader = mgr.GetClient(), mgr.GetAPIReader()

	var handler http.Handler
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	f.base = hs.URL
	opts := boot.Options{ExternalURL: hs.URL + "/", KernelArgs: []string{"console=ttyS0"}}
	for _, m := range mutate {
		m(&opts)
	}
	if f.srv, err = boot.NewServer(f.client, f.reader, f.resolver, opts); err != nil {
		t.Fatal(err)
	}
	handler = f.srv.Handler()

	testenv.RunManager(t, ctx, cancel, mgr)
	return f
}

// create creates obj and deletes it when the test ends.
func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(t.Context(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), obj); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting %s: %v", obj.GetName(), err)
		}
	})
}

func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

func randomMAC() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return fmt.Sprintf("52:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4])
}

// machine is a server with its boot configuration, ignition Secret and image.
type machine struct {
	server *metalv1alpha1.Server
	sbc    *metalv1alpha1.ServerBootConfiguration
	image  imagetest.Image
	uuid   string
	mac    string
	marker string // a string only this machine's ignition contains
}

// newMachine pushes an image and creates an ignition Secret (unless withIgnition is false),
// a boot configuration and a server whose bootConfigurationRef names it.
func (f *fixture) newMachine(t *testing.T, name string, withIgnition bool) *machine {
	t.Helper()
	m := &machine{uuid: randomUUID(), mac: randomMAC(), marker: "marker-" + name + "-" + randomUUID()}
	m.image = f.reg.Push(t, "os/"+name+":1", imagetest.BootLayers()...)
	m.sbc = &metalv1alpha1.ServerBootConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: metalv1alpha1.ServerBootConfigurationSpec{
			Image: "os/" + name + ":1",
		},
	}
	if withIgnition {
		create(t, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name + "-ignition"},
			StringData: map[string]string{
				"format": "fcos",
				"ignition": "variant: fcos\nversion: 1.3.0\nstorage:\n  files:\n    - path: /etc/marker\n      contents:\n        inline: " +
					m.marker + "\n",
			},
		})
		m.sbc.Spec.IgnitionSecretRef = &metalv1alpha1.LocalObjectReference{Name: name + "-ignition"}
	}
	m.server = &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "boot-" + name + "-"},
		Spec: metalv1alpha1.ServerSpec{
			SystemUUID:           m.uuid,
			BootConfigurationRef: &metalv1alpha1.ObjectReference{Namespace: f.ns, Name: name},
		},
	}
	create(t, m.server)
	m.sbc.Spec.ServerRef = metalv1alpha1.LocalObjectReference{Name: m.server.Name}
	create(t, m.sbc)
	m.server.Status.NetworkInterfaces = []metalv1alpha1.NetworkInterface{{Name: "eth0", MACAddress: m.mac}}
	if err := env.Client.Status().Update(t.Context(), m.server); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitReady waits until the machine's configuration is Ready and the boot server sees it so.
func (f *fixture) waitReady(t *testing.T, m *machine) {
	t.Helper()
	// The boot server answers unknown and not-Ready servers alike (a local boot), so readiness
	// is read from the cache the boot server reads.
	NewWithT(t).Eventually(func(g Gomega) {
		sbc := &metalv1alpha1.ServerBootConfiguration{}
		g.Expect(f.client.Get(context.Background(), client.ObjectKeyFromObject(m.sbc), sbc)).To(Succeed())
		g.Expect(sbc.Status.State).To(Equal(metalv1alpha1.ServerBootConfigurationStateReady))
		g.Expect(sbc.Status.Image).NotTo(BeNil())
	}).Should(Succeed())
}

// openWindow opens a boot-credential window on the machine's configuration, as the server
// controller does when it starts a network boot, at opened.
func openWindow(t *testing.T, m *machine, opened time.Time) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		sbc := &metalv1alpha1.ServerBootConfiguration{}
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(m.sbc), sbc); err != nil {
			return err
		}
		before := sbc.DeepCopy()
		sbc.Status.BootCredential = &metalv1alpha1.BootCredentialStatus{WindowOpenedAt: metav1.NewTime(opened)}
		return env.Client.Status().Patch(t.Context(), sbc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	}).Should(Succeed())
}

// boot opens a window for the machine and fetches its iPXE script, as the machine would.
func (f *fixture) boot(t *testing.T, m *machine) string {
	t.Helper()
	openWindow(t, m, time.Now())
	return f.fetchScript(t, "/ipxe/"+m.uuid)
}

// fetchScript asks path until the boot server's cache shows the window just opened (until
// then it answers a local boot, and issues nothing) and returns the script with the credential.
func (f *fixture) fetchScript(t *testing.T, path string) string {
	t.Helper()
	var script string
	NewWithT(t).Eventually(func(g Gomega) {
		code, body := httpGet(g, f.base+path)
		g.Expect(code).To(Equal(http.StatusOK))
		script = string(body)
		g.Expect(script).To(ContainSubstring("metal.boot_credential="))
	}).Should(Succeed())
	return script
}

func httpGet(g Gomega, url string) (int, []byte) {
	resp, err := http.Get(url)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, b
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	m := &dto.Metric{}
	if err := c.Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

var (
	kernelLine = regexp.MustCompile(`(?m)^kernel (\S+) (.*)$`)
	initrdLine = regexp.MustCompile(`(?m)^initrd --name initrd (\S+)$`)
	ignitionRe = regexp.MustCompile(`ignition\.config\.url=(\S+)`)
	rootfsRe   = regexp.MustCompile(`coreos\.live\.rootfs_url=(\S+)`)
)

// TestIPXEBootAsAClientWouldFollowIt fetches the script of a server and follows every URL in
// it, as iPXE and Ignition would.
func TestIPXEBootAsAClientWouldFollowIt(t *testing.T) {
	g := NewWithT(t)
	f := start(t)
	m := f.newMachine(t, "flatcar", true)
	served := counterValue(t, bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultServed))
	f.waitReady(t, m)

	sbc := &metalv1alpha1.ServerBootConfiguration{}
	g.Expect(env.Client.Get(t.Context(), client.ObjectKeyFromObject(m.sbc), sbc)).To(Succeed())
	pinned := sbc.Status.Image

	// By system UUID in the path (any case), in the query, or by MAC in any notation: the
	// machine is found; the first request inside a window gets the boot.
	for _, u := range []string{
		"/ipxe/" + strings.ToUpper(m.uuid),
		"/ipxe?uuid=" + m.uuid,
		"/ipxe?mac=" + strings.ToUpper(strings.ReplaceAll(m.mac, ":", "-")),
		"/ipxe?uuid=" + randomUUID() + "&mac=" + m.mac,
	} {
		openWindow(t, m, time.Now())
		f.fetchScript(t, u)
	}
	text := f.boot(t, m)
	g.Expect(counterValue(t, bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultServed))).To(BeNumerically(">", served))
	g.Expect(text).To(HavePrefix("#!ipxe\n"))
	g.Expect(text).To(HaveSuffix("\nboot\n"))
	k := kernelLine.FindStringSubmatch(text)
	g.Expect(k).NotTo(BeNil(), text)
	artifacts := f.base + "/artifacts/" + f.ns + "/flatcar/"
	g.Expect(k[1]).To(Equal(artifacts + pinned.Kernel.Digest))
	g.Expect(k[2]).To(ContainSubstring("initrd=initrd"))
	g.Expect(k[2]).To(ContainSubstring("ignition.platform.id=metal"))
	g.Expect(k[2]).To(HaveSuffix("console=ttyS0"))
	i := initrdLine.FindStringSubmatch(text)
	g.Expect(i).NotTo(BeNil(), text)
	g.Expect(i[1]).To(Equal(artifacts + pinned.Initrd.Digest))
	r := rootfsRe.FindStringSubmatch(k[2])
	g.Expect(r).NotTo(BeNil())
	g.Expect(r[1]).To(Equal(artifacts + pinned.RootFS.Digest))
	ign := ignitionRe.FindStringSubmatch(k[2])
	g.Expect(ign).NotTo(BeNil())
	g.Expect(ign[1]).To(HavePrefix(f.base + "/ignition/"))
	g.Expect(ign[1]).NotTo(ContainSubstring(m.uuid), "the ignition URL does not name the server")

	// Every artifact streams with the bytes the image was pushed with.
	for url, want := range map[string][]byte{
		k[1]: m.image.Layers[0].Content,
		i[1]: m.image.Layers[1].Content,
		r[1]: m.image.Layers[2].Content,
	} {
		c, body := httpGet(g, url)
		g.Expect(c).To(Equal(http.StatusOK), url)
		g.Expect(bytes.Equal(body, want)).To(BeTrue(), "content of %s", url)
	}
	resp, err := http.Head(k[1])
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.ContentLength).To(Equal(int64(len(m.image.Layers[0].Content))))

	// The ignition URL serves Ignition JSON translated from the Butane config.
	code, body := httpGet(g, ign[1])
	g.Expect(code).To(Equal(http.StatusOK))
	cfg, _, err := ignconfig.Parse(body)
	g.Expect(err).NotTo(HaveOccurred(), string(body))
	g.Expect(cfg.Storage.Files).To(HaveLen(1))
	g.Expect(cfg.Storage.Files[0].Path).To(Equal("/etc/marker"))
}

func TestBootRequestsWithoutABootableConfiguration(t *testing.T) {
	f := start(t)
	ready := f.newMachine(t, "ready", false)
	f.waitReady(t, ready)

	// A server whose configuration cannot be Ready (its image does not exist).
	broken := f.newMachine(t, "broken", false)
	g := NewWithT(t)
	patch := client.MergeFrom(broken.sbc.DeepCopy())
	broken.sbc.Spec.Image = "os/absent:1"
	g.Expect(env.Client.Patch(t.Context(), broken.sbc, patch)).To(Succeed())
	g.Eventually(func(g Gomega) metalv1alpha1.ServerBootConfigurationState {
		sbc := &metalv1alpha1.ServerBootConfiguration{}
		g.Expect(env.Client.Get(t.Context(), client.ObjectKeyFromObject(broken.sbc), sbc)).To(Succeed())
		if sbc.Status.ObservedGeneration != sbc.Generation {
			return ""
		}
		return sbc.Status.State
	}).Should(Equal(metalv1alpha1.ServerBootConfigurationStateError))

	// A server without a configuration.
	bare := &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "boot-bare-"},
		Spec:       metalv1alpha1.ServerSpec{SystemUUID: randomUUID()},
	}
	create(t, bare)

	sbc := &metalv1alpha1.ServerBootConfiguration{}
	g.Expect(env.Client.Get(t.Context(), client.ObjectKeyFromObject(ready.sbc), sbc)).To(Succeed())
	f.boot(t, ready)
	notFound := counterValue(t, bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultNotFound))

	for _, tc := range []struct {
		path string
		code int
	}{
		{"/ipxe/" + randomUUID(), http.StatusOK},
		{"/ipxe?mac=" + randomMAC(), http.StatusOK},
		{"/ipxe", http.StatusBadRequest},
		{"/ipxe/" + bare.Spec.SystemUUID, http.StatusOK},
		{"/ipxe/" + broken.uuid, http.StatusOK},
		{"/httpboot/" + broken.uuid, http.StatusNotFound},
		{"/httpboot", http.StatusBadRequest},
		// Only digests pinned in that configuration's status are served.
		{"/artifacts/" + f.ns + "/ready/" + broken.image.Layers[0].Digest, http.StatusNotFound},
		{"/artifacts/" + f.ns + "/broken/" + broken.image.Layers[0].Digest, http.StatusNotFound},
		{"/artifacts/" + f.ns + "/absent/" + sbc.Status.Image.Kernel.Digest, http.StatusNotFound},
		{"/artifacts/" + f.ns + "/ready/" + sbc.Status.Image.Kernel.Digest, http.StatusOK},
	} {
		code, body := httpGet(g, f.base+tc.path)
		g.Expect(code).To(Equal(tc.code), "%s: %s", tc.path, body)
		if strings.HasPrefix(tc.path, "/ipxe/") || strings.HasPrefix(tc.path, "/ipxe?") {
			// Unknown, unconfigured and not-Ready servers look alike: a local boot.
			g.Expect(string(body)).To(HavePrefix("#!ipxe"), tc.path)
			g.Expect(string(body)).To(ContainSubstring("exit"), tc.path)
			g.Expect(string(body)).NotTo(ContainSubstring("http"), tc.path)
		}
	}
	g.Expect(counterValue(t, bootmetrics.BootScriptsServed.WithLabelValues(bootmetrics.ResultNotFound))).To(BeNumerically(">=", notFound+2))
}

func TestIgnitionOnlyWithTheBootsCredential(t *testing.T) {
	g := NewWithT(t)
	f := start(t)
	a := f.newMachine(t, "a", true)
	b := f.newMachine(t, "b", true)
	plain := f.newMachine(t, "plain", false)
	for _, m := range []*machine{a, b, plain} {
		f.waitReady(t, m)
	}
	ignitionURL := func(m *machine) string {
		script := f.boot(t, m)
		match := ignitionRe.FindStringSubmatch(script)
		g.Expect(match).NotTo(BeNil(), script)
		return match[1]
	}
	urlA, urlB := ignitionURL(a), ignitionURL(b)
	g.Expect(urlA).NotTo(Equal(urlB))

	// A configuration without ignition gets no ignition arguments.
	g.Expect(f.boot(t, plain)).NotTo(ContainSubstring("ignition."))

	tokenA := strings.TrimPrefix(urlA, f.base+"/ignition/")
	tokenB := strings.TrimPrefix(urlB, f.base+"/ignition/")
	idA, secretA, _ := strings.Cut(tokenA, ".")
	idB, secretB, _ := strings.Cut(tokenB, ".")
	denied := counterValue(t, bootmetrics.IgnitionServed.WithLabelValues(bootmetrics.ResultDenied))
	for name, token := range map[string]string{
		"B's name with A's secret": idB + "." + secretA,
		"A's name with B's secret": idA + "." + secretB,
		"A's name without secret":  idA,
		"A's credential, one off":  tokenA[:len(tokenA)-2] + flip(tokenA[len(tokenA)-2]) + tokenA[len(tokenA)-1:],
		"the server's system UUID": a.uuid,
		"the configuration's name": "a",
		"garbage":                  "not-a-token",
	} {
		code, body := httpGet(g, f.base+"/ignition/"+token)
		g.Expect(code).To(Equal(http.StatusNotFound), name)
		g.Expect(string(body)).NotTo(ContainSubstring("marker"), name)
	}
	g.Expect(counterValue(t, bootmetrics.IgnitionServed.WithLabelValues(bootmetrics.ResultDenied))).To(BeNumerically(">=", denied+6))

	code, body := httpGet(g, urlA)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(string(body)).NotTo(ContainSubstring(b.marker))
	cfg, _, err := ignconfig.Parse(body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*cfg.Storage.Files[0].Contents.Source).To(ContainSubstring(encodeInline(a.marker)))

	// Re-created under the same name, the configuration has no window: the old credential
	// is unknown to it.
	g.Expect(env.Client.Delete(t.Context(), b.sbc)).To(Succeed())
	g.Eventually(func() int { c, _ := httpGet(g, urlB); return c }).Should(Equal(http.StatusNotFound))
	recreated := b.sbc.DeepCopy()
	recreated.ResourceVersion, recreated.UID, recreated.Status = "", "", metalv1alpha1.ServerBootConfigurationStatus{}
	create(t, recreated)
	f.waitReady(t, b)
	code, _ = httpGet(g, urlB)
	g.Expect(code).To(Equal(http.StatusNotFound))
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// encodeInline is how the Butane translation encodes "inline: <marker>".
func encodeInline(marker string) string {
	return base64.StdEncoding.EncodeToString([]byte(marker))
}

func TestUEFIHTTPBoot(t *testing.T) {
	t.Run("the server's kernel", func(t *testing.T) {
		g := NewWithT(t)
		f := start(t)
		m := f.newMachine(t, "uefi", true)
		f.waitReady(t, m)
		code, _ := httpGet(g, f.base+"/httpboot/"+m.uuid)
		g.Expect(code).To(Equal(http.StatusNotFound), "no boot expected")
		openWindow(t, m, time.Now())
		resp, err := http.Head(f.base + "/httpboot/" + m.uuid)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
		code, body := httpGet(g, f.base+"/httpboot/"+m.uuid)
		g.Expect(code).To(Equal(http.StatusOK))
		g.Expect(bytes.Equal(body, m.image.Layers[0].Content)).To(BeTrue())
	})
	t.Run("the configured boot loader", func(t *testing.T) {
		g := NewWithT(t)
		loader := filepath.Join(t.TempDir(), "snponly.efi")
		content := imagetest.RandomBytes(2048)
		g.Expect(os.WriteFile(loader, content, 0o600)).To(Succeed())
		f := start(t, func(o *boot.Options) { o.HTTPBootLoader = loader })
		for _, path := range []string{"/httpboot", "/httpboot/" + randomUUID()} {
			code, body := httpGet(g, f.base+path)
			g.Expect(code).To(Equal(http.StatusOK), path)
			g.Expect(bytes.Equal(body, content)).To(BeTrue(), path)
		}
	})
}

func TestServerRunsInTheManagerAndStops(t *testing.T) {
	g := NewWithT(t)
	srv, err := boot.NewServer(env.Client, env.Client, mustResolver(t), boot.Options{Addr: "127.0.0.1:0", ExternalURL: "http://boot.example:8082"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(srv.NeedLeaderElection()).To(BeFalse())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	g.Eventually(srv.ListenAddr).ShouldNot(BeNil())
	code, body := httpGet(g, "http://"+srv.ListenAddr().String()+"/healthz")
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(string(body)).To(Equal("ok\n"))
	cancel()
	g.Eventually(done).Should(Receive(BeNil()))
}

func TestNewServerRejectsBadOptions(t *testing.T) {
	r := mustResolver(t)
	for name, o := range map[string]boot.Options{
		"no external URL":       {},
		"relative external URL": {ExternalURL: "/boot"},
		"certificate, no key":   {ExternalURL: "https://boot.example", CertFile: "tls.crt"},
		"missing boot loader":   {ExternalURL: "http://boot.example", HTTPBootLoader: "/nonexistent/ipxe.efi"},
	} {
		if _, err := boot.NewServer(env.Client, env.Client, r, o); err == nil {
			t.Errorf("%s: NewServer accepted %+v", name, o)
		}
	}
}

func mustResolver(t *testing.T) *image.Resolver {
	t.Helper()
	r, err := image.NewResolver(image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSlowAndHugeHeadersAreCutOff: over a real listener, a client that never finishes its
// headers is disconnected after the read-header timeout, and headers over the bound get 431
// without reaching a handler.
func TestSlowAndHugeHeadersAreCutOff(t *testing.T) {
	g := NewWithT(t)
	srv, err := boot.NewServer(env.Client, env.Client, mustResolver(t), boot.Options{
		Addr: "127.0.0.1:0", ExternalURL: "http://boot.example:8082", ReadHeaderTimeout: 300 * time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	defer func() { cancel(); <-done }()
	g.Eventually(srv.ListenAddr).ShouldNot(BeNil())
	addr := srv.ListenAddr().String()

	conn, err := net.Dial("tcp", addr)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = conn.Close() }()
	_, err = conn.Write([]byte("GET /ipxe HTTP/1.1\r\nHost: boot\r\nX-Slow: "))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(conn.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
	_, err = io.ReadAll(conn) // the server closes the connection (after a 408 at most)
	g.Expect(err).NotTo(HaveOccurred(), "closed by the server, not by our 10s deadline")

	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("X-Huge", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusRequestHeaderFieldsTooLarge))
}
