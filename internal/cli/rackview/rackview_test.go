package rackview

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/controller"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// start starts a view on a free loopback port for the test.
func start(t *testing.T) *View {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	v, err := Start(ctx, env.Config, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- v.Serve() }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return v
}

func TestRefusesANonLoopbackAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"localhost:0", true},
		{"[::1]:0", true},
		{"0.0.0.0:0", false},
		{":0", false},
		{"[::]:0", false},
		{"192.0.2.10:0", false},
		{"example.com:0", false},
		{"127.0.0.1", false},
	} {
		_, err := loopbackAddress(tc.addr)
		if tc.ok != (err == nil) {
			t.Errorf("%q: got error %v, want ok %t", tc.addr, err, tc.ok)
		}
	}
	_, err := Start(t.Context(), env.Config, Options{Address: "0.0.0.0:0", MaxStreams: 1, KeepAlive: time.Second})
	NewWithT(t).Expect(err).To(MatchError(ContainSubstring("refusing to listen")))
}

func get(t *testing.T, rawURL, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body)
}

// TestGuardsTheLocalEndpoint: other local users and web pages get nothing without the token,
// and a page reaching the port under another host name (DNS rebinding) gets nothing at all.
func TestGuardsTheLocalEndpoint(t *testing.T) {
	g := NewWithT(t)
	v := start(t)
	u, err := url.Parse(v.URL)
	g.Expect(err).NotTo(HaveOccurred())
	base := "http://" + u.Host
	token := u.Query().Get("token")
	g.Expect(token).To(HaveLen(64))

	code, body := get(t, v.URL, "")
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body).To(ContainSubstring(`<script src="/static/app.js"`))
	code, _ = get(t, base+"/static/app.js", "")
	g.Expect(code).To(Equal(http.StatusOK), "the script holds no data and needs no token")

	// The same token with its first digit changed (a token that starts with 0 gets a 1).
	wrong := "0" + token[1:]
	if token[0] == '0' {
		wrong = "1" + token[1:]
	}
	for _, path := range []string{"/", "/events", "/api/servers/x"} {
		code, _ = get(t, base+path, "")
		g.Expect(code).To(Equal(http.StatusForbidden), "%s without token", path)
		code, _ = get(t, base+path+"?token="+wrong, "")
		g.Expect(code).To(Equal(http.StatusForbidden), "%s with a wrong token", path)
	}
	code, _ = get(t, v.URL, "rebound.example:"+u.Port())
	g.Expect(code).To(Equal(http.StatusMisdirectedRequest))
	code, _ = get(t, base+"/static/app.js", "rebound.example:"+u.Port())
	g.Expect(code).To(Equal(http.StatusMisdirectedRequest))

	code, _ = get(t, base+"/api/servers/"+url.PathEscape("Not_A_Name")+"?token="+token, "")
	g.Expect(code).To(Equal(http.StatusBadRequest))
	code, _ = get(t, base+"/api/servers/no-such-server?token="+token, "")
	g.Expect(code).To(Equal(http.StatusNotFound))
}

func TestBoundsOpenStreams(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	o := DefaultOptions()
	o.MaxStreams = 1
	v, err := Start(ctx, env.Config, o)
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = v.Serve() }()
	u, _ := url.Parse(v.URL)
	events := "http://" + u.Host + "/events?" + u.RawQuery

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, events, nil)
	first, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer first.Body.Close()
	g.Expect(first.StatusCode).To(Equal(http.StatusOK))
	line := make([]byte, len("event: snapshot"))
	_, err = io.ReadFull(first.Body, line)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(line)).To(Equal("event: snapshot"))

	code, _ := get(t, events, "")
	g.Expect(code).To(Equal(http.StatusServiceUnavailable))
}

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skip("no Chromium on the PATH: install it (apt-get install chromium; .ci/run does) to run the browser test")
	return ""
}

// TestPageFollowsTheFleetLive opens the page in a headless Chromium: it draws the servers by
// location and rack, a claim created meanwhile turns one of them from free to claimed on the
// page without a reload, and a click shows the server's conditions.
func TestPageFollowsTheFleetLive(t *testing.T) {
	path := chromium(t)
	g := NewWithT(t)
	ns := env.Namespace(t)

	// The claim controller alone binds; the servers are idle (no server controller).
	mgr := env.NewManager(t)
	g.Expect(index.Setup(t.Context(), mgr.GetFieldIndexer())).To(Succeed())
	opts := controller.DefaultServerClaimOptions()
	opts.UnboundRetryMin, opts.UnboundRetryMax = 100*time.Millisecond, time.Second
	g.Expect((&controller.ServerClaimReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("serverclaim-controller"), Options: opts,
	}).SetupWithManager(mgr)).To(Succeed())
	mctx, mcancel := context.WithCancel(context.Background()) // t.Context() ends before the cleanups that need the controller
	testenv.RunManager(t, mctx, mcancel, mgr)

	const n = 4
	var servers []*metalv1alpha1.Server
	for i := range n {
		servers = append(servers, env.IdleServer(t, map[string]string{
			"browser-test":              ns,
			metalv1alpha1.LocationLabel: "FRA-B1",
			metalv1alpha1.RackLabel:     fmt.Sprintf("r%d", i%2+1),
			metalv1alpha1.ShelfLabel:    fmt.Sprint(10 + 2*i),
			metalv1alpha1.HeightLabel:   "2",
		}))
	}
	withCondition := servers[0]
	cur := &metalv1alpha1.Server{}
	g.Expect(env.Client.Get(t.Context(), client.ObjectKeyFromObject(withCondition), cur)).To(Succeed())
	base := cur.DeepCopy()
	cur.Status.Conditions = []metav1.Condition{{Type: metalv1alpha1.ServerBMCReachable, Status: metav1.ConditionTrue,
		Reason: metalv1alpha1.ReasonBMCReachable, Message: "<b>BMC answers</b>", LastTransitionTime: metav1.Now()}}
	g.Expect(env.Client.Status().Patch(t.Context(), cur, client.MergeFrom(base))).To(Succeed())

	v := start(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU)...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	g.Expect(chromedp.Do(browser, chromedp.Navigate(v.URL))).To(Succeed())

	eval := func(expr string) func() (any, error) {
		return func() (any, error) {
			return chromedp.Run(browser, chromedp.Evaluate[any](expr))
		}
	}
	count := func(selector string) func() (any, error) {
		return eval(fmt.Sprintf(`document.querySelectorAll(%q).length`, selector))
	}
	g.Eventually(count(`.server[data-pool="free"]`), 30*time.Second, 50*time.Millisecond).Should(BeNumerically("==", n))
	g.Expect(eval(`document.querySelectorAll('.location[data-location="FRA-B1"] .rack').length`)()).To(BeNumerically("==", 2))
	g.Expect(eval(`document.getElementById("summary").textContent`)()).To(Equal("4 servers: 4 free, 0 claimed, 0 out of pool"))
	// A mark on the page: gone if the page reloads.
	g.Expect(eval(`window.notReloaded = true`)()).To(BeTrue())

	claim := &metalv1alpha1.ServerClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "from-the-browser-test"},
		Spec: metalv1alpha1.ServerClaimSpec{Power: metalv1alpha1.PowerOff, Image: "img",
			ServerSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"browser-test": ns}}},
	}
	env.Create(t, claim)
	g.Eventually(count(`.server[data-pool="claimed"]`), 30*time.Second, 50*time.Millisecond).Should(BeNumerically("==", 1))
	g.Expect(count(`.server[data-pool="free"]`)()).To(BeNumerically("==", n-1))
	g.Expect(eval(`document.querySelector('.server[data-pool="claimed"] .claim').textContent`)()).To(Equal(ns + "/from-the-browser-test"))
	g.Expect(eval(`window.notReloaded === true`)()).To(BeTrue(), "the page was reloaded")

	// A click shows the server's conditions, as text.
	g.Expect(chromedp.Do(browser, chromedp.Click(chromedp.CSS(fmt.Sprintf(`.server[data-name=%q]`, withCondition.Name))))).To(Succeed())
	g.Eventually(eval(`(document.querySelector('#detail-conditions tr[data-type="BMCReachable"]') || {}).textContent || ""`),
		10*time.Second, 50*time.Millisecond).Should(ContainSubstring("<b>BMC answers</b>"))
	g.Expect(eval(`document.getElementById("detail-name").textContent`)()).To(Equal(withCondition.Name))
	g.Expect(eval(`document.getElementById("detail-wipe").textContent`)()).To(Equal("none recorded"))
	g.Expect(eval(`document.querySelectorAll('#detail b').length`)()).To(BeNumerically("==", 0))
}
