package boot_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/boot"
	bootmetrics "github.com/metalfleet/metal-operator/internal/boot/metrics"
	"github.com/metalfleet/metal-operator/internal/testing/testenv"
)

// other is a second loopback address: a machine on the boot network that is not the one
// the credential was pinned to.
const other = "127.0.0.2"

func do(g Gomega, c *http.Client, method, url string, header map[string]string, body string) (int, string) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(b)
}

// booted is a machine of a fresh fixture that fetched its script inside a window.
func booted(t *testing.T, name string, withIgnition bool) (*fixture, *machine, string) {
	t.Helper()
	f := start(t)
	m := f.newMachine(t, name, withIgnition)
	f.waitReady(t, m)
	return f, m, f.boot(t, m)
}

func credentialOf(g Gomega, script string) string {
	_, after, ok := strings.Cut(script, "metal.boot_credential=")
	g.Expect(ok).To(BeTrue(), script)
	return strings.Fields(after)[0]
}

func liveSBC(g Gomega, m *machine) *metalv1alpha1.ServerBootConfiguration {
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(m.sbc), sbc)).To(Succeed())
	return sbc
}

func misuseReason(g Gomega, m *machine) string {
	c := meta.FindStatusCondition(liveSBC(g, m).Status.Conditions, metalv1alpha1.BootConfigurationBootCredentialMisused)
	if c == nil {
		return ""
	}
	return c.Reason
}

// TestIgnitionFetchedOnceThenGone: the ignition URL serves once, then answers 410 Gone and
// the configuration says BootCredentialMisused; the store holds only a hash.
func TestIgnitionFetchedOnceThenGone(t *testing.T) {
	g := NewWithT(t)
	f, m, script := booted(t, "once", true)
	credential := credentialOf(g, script)
	url := ignitionRe.FindStringSubmatch(script)[1]
	g.Expect(url).To(Equal(f.base + "/ignition/" + credential))

	sbc := liveSBC(g, m)
	raw, err := json.Marshal(sbc)
	g.Expect(err).NotTo(HaveOccurred())
	secret := credential[strings.Index(credential, ".")+1:]
	g.Expect(string(raw)).NotTo(ContainSubstring(secret), "the object does not reveal the credential")
	g.Expect(sbc.Status.BootCredential.Hash).To(HaveLen(64))
	g.Expect(sbc.Status.BootCredential.PinnedIP).To(Equal("127.0.0.1"))
	g.Expect(sbc.Status.BootCredential.ExpiresAt.Sub(sbc.Status.BootCredential.IssuedAt.Time)).To(Equal(boot.DefaultCredentialTTL))

	misused := counterValue(t, bootmetrics.CredentialMisuse.WithLabelValues(metalv1alpha1.ReasonIgnitionRefetched))
	code, body := httpGet(g, url)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(string(body)).To(ContainSubstring(encodeInline(m.marker)))
	code, body = httpGet(g, url)
	g.Expect(code).To(Equal(http.StatusGone))
	g.Expect(string(body)).NotTo(ContainSubstring(encodeInline(m.marker)))
	g.Expect(counterValue(t, bootmetrics.CredentialMisuse.WithLabelValues(metalv1alpha1.ReasonIgnitionRefetched))).To(Equal(misused + 1))
	g.Expect(misuseReason(g, m)).To(Equal(metalv1alpha1.ReasonIgnitionRefetched))
	c := meta.FindStatusCondition(liveSBC(g, m).Status.Conditions, metalv1alpha1.BootConfigurationBootCredentialMisused)
	g.Expect(c.Message).To(ContainSubstring("127.0.0.1"))
	g.Expect(c.Message).NotTo(ContainSubstring(secret))
}

// TestCredentialPinnedToTheFirstRequester: after the first request of a boot, nothing of the
// boot is served to another address: no script with a URL, no artifact, no ignition.
func TestCredentialPinnedToTheFirstRequester(t *testing.T) {
	g := NewWithT(t)
	f, m, script := booted(t, "pinned", true)
	url := ignitionRe.FindStringSubmatch(script)[1]
	kernel := kernelLine.FindStringSubmatch(script)[1]
	stranger := testenv.ClientFrom(other)

	code, body := do(g, stranger, http.MethodGet, f.base+"/ipxe/"+m.uuid, nil, "")
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body).NotTo(ContainSubstring("http"), "a second requester gets a local boot")
	g.Expect(body).NotTo(ContainSubstring("credential"))

	code, _ = do(g, stranger, http.MethodGet, kernel, nil, "")
	g.Expect(code).To(Equal(http.StatusNotFound))

	misused := counterValue(t, bootmetrics.CredentialMisuse.WithLabelValues(metalv1alpha1.ReasonWrongSourceAddress))
	code, body = do(g, stranger, http.MethodGet, url, nil, "")
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Expect(body).NotTo(ContainSubstring(encodeInline(m.marker)))
	g.Expect(counterValue(t, bootmetrics.CredentialMisuse.WithLabelValues(metalv1alpha1.ReasonWrongSourceAddress))).To(Equal(misused + 1))
	g.Expect(misuseReason(g, m)).To(Equal(metalv1alpha1.ReasonWrongSourceAddress))

	// The pinned machine is not disturbed.
	code, _ = httpGet(g, kernel)
	g.Expect(code).To(Equal(http.StatusOK))
	code, _ = httpGet(g, url)
	g.Expect(code).To(Equal(http.StatusOK))
}

// TestNoBootOutsideAWindow: without a window, with an expired window, and after the boot
// was reported done, /ipxe carries no URL and the credential is refused.
func TestNoBootOutsideAWindow(t *testing.T) {
	g := NewWithT(t)
	f := start(t)
	m := f.newMachine(t, "window", true)
	f.waitReady(t, m)
	local := func() {
		t.Helper()
		code, body := httpGet(g, f.base+"/ipxe/"+m.uuid)
		g.Expect(code).To(Equal(http.StatusOK))
		g.Expect(string(body)).To(HavePrefix("#!ipxe\n"))
		g.Expect(string(body)).NotTo(ContainSubstring("http"))
		g.Expect(string(body)).NotTo(ContainSubstring("credential"))
	}
	local()
	openWindow(t, m, time.Now().Add(-boot.DefaultCredentialTTL-time.Second))
	local()

	script := f.boot(t, m)
	credential := credentialOf(g, script)
	bearer := map[string]string{"Authorization": "Bearer " + credential}
	code, _ := do(g, http.DefaultClient, http.MethodPost, f.base+"/bootstate", bearer, `{"booted": true}`)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(liveSBC(g, m).Status.BootCredential.BootDone).To(BeTrue())
	local()
	code, _ = httpGet(g, f.base+"/ignition/"+credential)
	g.Expect(code).To(Equal(http.StatusNotFound), "a boot reported done revokes the credential")
	code, _ = do(g, http.DefaultClient, http.MethodPost, f.base+"/bootstate", bearer, `{"booted": true}`)
	g.Expect(code).To(Equal(http.StatusNotFound))
}

// TestExpiredCredentialRefused: a credential past its expiry is refused everywhere.
func TestExpiredCredentialRefused(t *testing.T) {
	g := NewWithT(t)
	f, m, script := booted(t, "expired", true)
	credential := credentialOf(g, script)
	kernel := kernelLine.FindStringSubmatch(script)[1]
	g.Eventually(func() error {
		sbc := liveSBC(g, m)
		before := sbc.DeepCopy()
		sbc.Status.BootCredential.ExpiresAt = &metav1.Time{Time: time.Now().Add(-time.Second)}
		return env.Client.Status().Patch(t.Context(), sbc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	}).Should(Succeed())
	code, _ := httpGet(g, f.base+"/ignition/"+credential)
	g.Expect(code).To(Equal(http.StatusNotFound))
	code, _ = httpGet(g, kernel)
	g.Expect(code).To(Equal(http.StatusNotFound))
	code, _ = do(g, http.DefaultClient, http.MethodPost, f.base+"/bootstate", map[string]string{"Authorization": "Bearer " + credential}, `{"booted": true}`)
	g.Expect(code).To(Equal(http.StatusNotFound))
}

// TestBootStateNeedsTheCredential: POST /bootstate without the credential, with another
// configuration's, or from another address is refused; with it, it records the state.
func TestBootStateNeedsTheCredential(t *testing.T) {
	g := NewWithT(t)
	f := start(t)
	m := f.newMachine(t, "reporter", false)
	n := f.newMachine(t, "neighbour", false)
	f.waitReady(t, m)
	f.waitReady(t, n)
	credential := credentialOf(g, f.boot(t, m))
	post := func(c *http.Client, header map[string]string, body string) int {
		code, _ := do(g, c, http.MethodPost, f.base+"/bootstate", header, body)
		return code
	}
	body := `{"systemUUID": "` + m.uuid + `", "booted": false}`
	g.Expect(post(http.DefaultClient, nil, body)).To(Equal(http.StatusUnauthorized))
	g.Expect(post(http.DefaultClient, map[string]string{"Authorization": "Bearer garbage"}, body)).To(Equal(http.StatusNotFound))
	g.Expect(post(http.DefaultClient, map[string]string{"Authorization": "Bearer " + credentialOf(g, f.boot(t, n))}, body)).To(Equal(http.StatusOK))
	g.Expect(meta.FindStatusCondition(liveSBC(g, m).Status.Conditions, metalv1alpha1.BootConfigurationBootStateReceived)).To(BeNil(),
		"another boot's credential reports only that boot")
	bearer := map[string]string{"Authorization": "Bearer " + credential}
	g.Expect(post(testenv.ClientFrom(other), bearer, body)).To(Equal(http.StatusForbidden))
	g.Expect(post(http.DefaultClient, bearer, `not json`)).To(Equal(http.StatusBadRequest))

	g.Expect(post(http.DefaultClient, bearer, body)).To(Equal(http.StatusOK))
	sbc := liveSBC(g, m)
	cond := meta.FindStatusCondition(sbc.Status.Conditions, metalv1alpha1.BootConfigurationBootStateReceived)
	g.Expect(cond).NotTo(BeNil())
	g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(cond.Reason).To(Equal(metalv1alpha1.ReasonBootFailed))
	g.Expect(sbc.Status.BootCredential.BootDone).To(BeTrue())
	g.Expect(sbc.Status.State).To(Equal(metalv1alpha1.ServerBootConfigurationStateReady), "the state is the controller's")
}

// TestAnotherBootServerHonoursTheCredential: the credential lives in the cluster, so a boot
// server started afresh (a restarted or second manager) serves a boot issued by another.
func TestAnotherBootServerHonoursTheCredential(t *testing.T) {
	g := NewWithT(t)
	f, m, script := booted(t, "restart", true)
	credential := credentialOf(g, script)

	fresh, err := boot.NewServer(env.Client, env.Client, f.resolver, boot.Options{ExternalURL: "http://boot.example"})
	g.Expect(err).NotTo(HaveOccurred())
	hs := httptest.NewServer(fresh.Handler())
	t.Cleanup(hs.Close)
	code, body := httpGet(g, hs.URL+"/ignition/"+credential)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(string(body)).To(ContainSubstring(encodeInline(m.marker)))
	code, _ = httpGet(g, f.base+"/ignition/"+credential)
	g.Expect(code).To(Equal(http.StatusGone), "the fetch limit is shared by all boot servers")
}

// TestMetadataServiceAnswersThePinnedAddress: the metadata service answers the machine its
// boot credential was pinned to while the claim holds the server, and 404s anyone else.
func TestMetadataServiceAnswersThePinnedAddress(t *testing.T) {
	g := NewWithT(t)
	f := start(t)
	m := f.newMachine(t, "meta", false)
	f.waitReady(t, m)
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "meta-user-data"},
		Type:       metalv1alpha1.UserDataSecretType,
		StringData: map[string]string{"cloud-config": "#cloud-config\n"},
	})
	claim := &metalv1alpha1.ServerClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "meta"},
		Spec: metalv1alpha1.ServerClaimSpec{
			Power: metalv1alpha1.PowerOn, Image: "os/meta:1",
			ServerRef:   &metalv1alpha1.LocalObjectReference{Name: m.server.Name},
			UserDataRef: &metalv1alpha1.LocalObjectReference{Name: "meta-user-data"},
		},
	}
	create(t, claim)
	g.Eventually(func() error {
		srv := &metalv1alpha1.Server{}
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(m.server), srv); err != nil {
			return err
		}
		before := srv.DeepCopy()
		srv.Labels = map[string]string{boot.MetadataPrefix + "rack": "r1", "other": "hidden"}
		srv.Annotations = map[string]string{boot.MetadataPrefix + "location": "dc1"}
		srv.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: f.ns, Name: claim.Name}
		return env.Client.Patch(t.Context(), srv, client.MergeFrom(before))
	}).Should(Succeed())
	flavor := map[string]string{boot.MetadataFlavorHeader: boot.MetadataFlavor}
	get := func(c *http.Client, path string, header map[string]string) (int, string) {
		return do(g, c, http.MethodGet, f.base+path, header, "")
	}

	code, _ := get(http.DefaultClient, "/v1/", flavor)
	g.Expect(code).To(Equal(http.StatusNotFound), "nothing pinned yet")
	f.boot(t, m)

	code, _ = get(http.DefaultClient, "/v1/", nil)
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Eventually(func() int { c, _ := get(http.DefaultClient, "/v1/", flavor); return c }).Should(Equal(http.StatusOK))
	code, body := get(http.DefaultClient, "/v1/", flavor)
	g.Expect(code).To(Equal(http.StatusOK))
	var all map[string]any
	g.Expect(json.Unmarshal([]byte(body), &all)).To(Succeed())
	g.Expect(all).To(HaveKeyWithValue("server-name", m.server.Name))
	g.Expect(all).To(HaveKeyWithValue("rack", "r1"))
	g.Expect(all).To(HaveKeyWithValue("location", "dc1"))
	g.Expect(all).NotTo(HaveKey("other"))
	g.Expect(all).To(HaveKeyWithValue("user-data", HaveKeyWithValue("cloud-config", "#cloud-config\n")))
	code, body = get(http.DefaultClient, "/v1/rack", flavor)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body).To(Equal("r1"))
	code, body = get(http.DefaultClient, "/v1/user-data/cloud-config", flavor)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body).To(Equal("#cloud-config\n"))
	code, _ = get(http.DefaultClient, "/v1/user-data", flavor)
	g.Expect(code).To(Equal(http.StatusOK))
	code, _ = get(http.DefaultClient, "/v1/absent", flavor)
	g.Expect(code).To(Equal(http.StatusNotFound))

	// Not single-use: the OS reads it again. Anyone else gets a 404.
	code, _ = get(http.DefaultClient, "/v1/rack", flavor)
	g.Expect(code).To(Equal(http.StatusOK))
	for _, path := range []string{"/v1/", "/v1/rack", "/v1/user-data", "/v1/user-data/cloud-config"} {
		code, body = get(testenv.ClientFrom(other), path, flavor)
		g.Expect(code).To(Equal(http.StatusNotFound), path)
		g.Expect(body).NotTo(ContainSubstring("cloud-config"), path)
	}

	// User data in a Secret of another type is refused as the reference does.
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "meta-opaque"}, StringData: map[string]string{"k": "v"}})
	g.Eventually(func() error {
		cur := &metalv1alpha1.ServerClaim{}
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(claim), cur); err != nil {
			return err
		}
		before := cur.DeepCopy()
		cur.Spec.UserDataRef = &metalv1alpha1.LocalObjectReference{Name: "meta-opaque"}
		return env.Client.Patch(t.Context(), cur, client.MergeFrom(before))
	}).Should(Succeed())
	code, body = get(http.DefaultClient, "/v1/user-data", flavor)
	g.Expect(code).To(Equal(http.StatusInternalServerError))
	g.Expect(body).To(ContainSubstring("wrong secret type for user-data 'Opaque'"))

	// Once the claim is gone, the server's metadata is no longer served.
	g.Expect(env.Client.Delete(t.Context(), claim)).To(Succeed())
	g.Eventually(func() int { c, _ := get(http.DefaultClient, "/v1/", flavor); return c }).Should(Equal(http.StatusNotFound))
}

// A second requester while the boot's credential is out is reported, whichever of the two is
// the real server: when an attacker asked first, the real server's request is what makes the
// theft loud.
func TestSecondRequesterIsReported(t *testing.T) {
	g := NewWithT(t)
	f, m, _ := booted(t, "second", true)
	second := testenv.ClientFrom(other)
	g.Eventually(func(g Gomega) {
		code, body := do(g, second, http.MethodGet, f.base+"/ipxe/"+m.uuid, nil, "")
		g.Expect(code).To(Equal(http.StatusOK))
		g.Expect(body).NotTo(ContainSubstring("credential"))
		g.Expect(misuseReason(g, m)).To(Equal(metalv1alpha1.ReasonAnotherRequester))
	}).Should(Succeed())
	c := meta.FindStatusCondition(liveSBC(g, m).Status.Conditions, metalv1alpha1.BootConfigurationBootCredentialMisused)
	g.Expect(c.Message).To(ContainSubstring(other))
}

// The pinned machine asking again before it fetched its ignition (a lost answer, an iPXE
// retry) gets a fresh script; the credential is rotated, so the first script's URL is dead.
func TestPinnedRetryGetsANewScript(t *testing.T) {
	g := NewWithT(t)
	f, m, first := booted(t, "retry", true)
	var again string
	g.Eventually(func(g Gomega) {
		_, body := httpGet(g, f.base+"/ipxe/"+m.uuid)
		again = string(body)
		g.Expect(again).To(ContainSubstring("metal.boot_credential="))
	}).Should(Succeed())
	g.Expect(credentialOf(g, again)).NotTo(Equal(credentialOf(g, first)))
	code, _ := httpGet(g, ignitionRe.FindStringSubmatch(first)[1])
	g.Expect(code).To(Equal(http.StatusNotFound), "the rotated credential is gone")
	code, _ = httpGet(g, ignitionRe.FindStringSubmatch(again)[1])
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(misuseReason(g, m)).To(BeEmpty())
}
