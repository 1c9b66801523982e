package controller

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/boot"
	"github.com/metalfleet/metal-operator/internal/boot/image"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

// TestClaimBootsOnceThroughTheBootServer: the real claim and server controllers, an emulated
// BMC and the real boot server. The server's first network boot opens the boot window; the
// first iPXE request gets the credential, the ignition is served once and then answers 410,
// another address gets a local boot, and the reported boot state closes the boot.
func TestClaimBootsOnceThroughTheBootServer(t *testing.T) {
	g := NewWithT(t)
	var handler http.Handler
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	w := newClaimWorld(t, 1, func(mgr manager.Manager) error {
		if err := index.SetupBoot(context.Background(), mgr.GetFieldIndexer()); err != nil {
			return err
		}
		resolver, err := image.NewResolver(image.Options{})
		if err != nil {
			return err
		}
		srv, err := boot.NewServer(mgr.GetClient(), mgr.GetAPIReader(), resolver, boot.Options{
			ExternalURL: hs.URL, Recorder: mgr.GetEventRecorder("boot-server")})
		if err != nil {
			return err
		}
		handler = srv.Handler()
		return mgr.Add(srv)
	})
	s := w.server(0)
	ignition := w.ignitionSecret()
	c := newClaim(t, w.ns, byRef(s.Name), func(c *metalv1alpha1.ServerClaim) {
		c.Spec.IgnitionSecretRef = &metalv1alpha1.LocalObjectReference{Name: ignition}
	})
	g.Eventually(func(g Gomega) {
		g.Expect(getClaim(g, c).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
	}).Should(Succeed())

	get := func(from, url string) (int, string) {
		resp, err := testenv.ClientFrom(from).Get(url)
		g.Expect(err).NotTo(HaveOccurred())
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		g.Expect(err).NotTo(HaveOccurred())
		return resp.StatusCode, string(b)
	}
	ipxe := hs.URL + "/ipxe/" + s.Spec.SystemUUID
	code, early := get("127.0.0.1", ipxe)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(early).NotTo(ContainSubstring("http"), "no Ready configuration yet: a local boot, as for an unknown server")

	// The boot provider's part: the configuration is Ready with an image pinned.
	g.Eventually(func() error {
		sbc := &metalv1alpha1.ServerBootConfiguration{}
		if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: w.ns, Name: c.Name}, sbc); err != nil {
			return err
		}
		before := sbc.DeepCopy()
		sbc.Status.State, sbc.Status.ObservedGeneration = metalv1alpha1.ServerBootConfigurationStateReady, sbc.Generation
		sbc.Status.Image = &metalv1alpha1.ResolvedImage{Reference: "registry.example/os:1", Digest: "sha256:" + strings.Repeat("a", 64),
			Kernel: &metalv1alpha1.BootArtifact{Digest: "sha256:" + strings.Repeat("b", 64)},
			Initrd: &metalv1alpha1.BootArtifact{Digest: "sha256:" + strings.Repeat("c", 64)}}
		return env.Client.Status().Patch(t.Context(), sbc, client.MergeFrom(before))
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(getServer(g, s).Status.PowerState).To(Equal(metalv1alpha1.ServerOnPowerState))
	}).Should(Succeed())

	// Until the boot server's cache shows the window, it answers a local boot and issues
	// nothing; the real machine asks seconds after its power-on.
	var script string
	g.Eventually(func(g Gomega) {
		var code int
		code, script = get("127.0.0.1", ipxe)
		g.Expect(code).To(Equal(http.StatusOK))
		g.Expect(script).To(ContainSubstring("ignition.config.url="))
	}).Should(Succeed())
	_, after, _ := strings.Cut(script, "ignition.config.url=")
	url := strings.Fields(after)[0]
	credential := strings.TrimPrefix(url, hs.URL+"/ignition/")

	code, other := get("127.0.0.2", ipxe)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(other).NotTo(ContainSubstring("http"), "a second machine gets a local boot")
	code, _ = get("127.0.0.2", url)
	g.Expect(code).To(Equal(http.StatusForbidden))
	code, body := get("127.0.0.1", url)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body).To(ContainSubstring(`"version":"3.4.0"`))
	code, _ = get("127.0.0.1", url)
	g.Expect(code).To(Equal(http.StatusGone))

	req, err := http.NewRequest(http.MethodPost, hs.URL+"/bootstate", strings.NewReader(`{"booted": true}`))
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+credential)
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	g.Expect(env.Client.Get(t.Context(), client.ObjectKey{Namespace: w.ns, Name: c.Name}, sbc)).To(Succeed())
	g.Expect(meta.IsStatusConditionTrue(sbc.Status.Conditions, metalv1alpha1.BootConfigurationBootStateReceived)).To(BeTrue())
	g.Expect(meta.FindStatusCondition(sbc.Status.Conditions, metalv1alpha1.BootConfigurationBootCredentialMisused).Reason).
		To(Equal(metalv1alpha1.ReasonIgnitionRefetched))
	g.Eventually(func() string { _, script := get("127.0.0.1", ipxe); return script }).ShouldNot(ContainSubstring("http"), "after the boot: local boot")
}
