package controller

import (
	"bytes"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

// serveSharedUUID serves the emulator with the UUID of system from replaced by the UUID of
// system to, as a BMC with cloned firmware data reports it.
func serveSharedUUID(t *testing.T, em *emulator.Emulator, from, to string) *httptest.Server {
	t.Helper()
	h := em.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(bytes.ReplaceAll(rec.Body.Bytes(), []byte(from), []byte(to)))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(em.Close)
	return srv
}

// A BMC reporting two systems with one UUID: neither gets a Server, the BMC says so in
// condition DuplicateSystemUUIDs (one event), and nothing is written again and again.
func TestBMCSharedSystemUUIDs(t *testing.T) {
	g := NewWithT(t)
	em := emulator.New(emulator.Options{Systems: 3, Username: testBMCUser, Password: testBMCPassword})
	systems := em.Systems()
	srv := serveSharedUUID(t, em, systems[2].UUID, systems[1].UUID)
	startBMCController(t)
	secret := newBMCSecret(t, testBMCUser, testBMCPassword)
	obj := createBMC(t, bmcFor(t, srv.URL, secret.Name))

	cur := waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
	g.Eventually(func(g Gomega) {
		c := expectBMCCondition(g, getBMC(g, obj), metalv1alpha1.BMCDuplicateSystemUUIDs, metav1.ConditionTrue,
			metalv1alpha1.ReasonDuplicateSystemUUIDs)
		g.Expect(c.Message).To(ContainSubstring(systems[1].UUID))
		g.Expect(c.Message).To(ContainSubstring(systems[1].URI))
		g.Expect(c.Message).To(ContainSubstring(systems[2].URI))
	}).Should(Succeed())
	settle(g, cur)
	g.Expect(serversWithUUID(g, systems[1].UUID)).To(BeEmpty())
	g.Expect(serversWithUUID(g, systems[0].UUID)).To(HaveLen(1))
	server := serversWithUUID(g, systems[0].UUID)[0].DeepCopy()
	settle(g, server)

	warnings := 0
	for _, e := range bmcEvents(g, obj.Name) {
		if e.Reason == metalv1alpha1.ReasonDuplicateSystemUUIDs {
			warnings++
		}
	}
	g.Expect(warnings).To(Equal(1))
}

// A BMC does not adopt a Server of one of its systems whose BMC is set elsewhere (inline,
// or spec.bmcRef naming another BMC), unless the Server's adopt-by-bmc annotation names it.
func TestBMCAdoptsOnlyServersNotReachedElsewhere(t *testing.T) {
	g := NewWithT(t)
	em := newEmulator(t, emulator.Options{Systems: 3, Username: testBMCUser, Password: testBMCPassword})
	startBMCController(t)
	secret := newBMCSecret(t, testBMCUser, testBMCPassword)
	systems := em.Systems()
	const bmcName = "adopting-bmc"
	inline := &metalv1alpha1.BMCAccess{
		Protocol:     metalv1alpha1.Protocol{Name: metalv1alpha1.ProtocolRedfish, Port: 443},
		Address:      "192.0.2.1",
		BMCSecretRef: metalv1alpha1.LocalObjectReference{Name: secret.Name},
	}

	reachedInline := &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "inline-"},
		Spec:       metalv1alpha1.ServerSpec{SystemUUID: systems[0].UUID, BMC: inline.DeepCopy()},
	}
	create(t, reachedInline)
	allowed := &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "allowed-",
			Annotations: map[string]string{metalv1alpha1.AdoptByBMCAnnotation: bmcName}},
		Spec: metalv1alpha1.ServerSpec{SystemUUID: systems[1].UUID, BMC: inline.DeepCopy()},
	}
	create(t, allowed)
	otherRef := &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "other-",
			Annotations: map[string]string{metalv1alpha1.AdoptByBMCAnnotation: "yet-another-bmc"}},
		Spec: metalv1alpha1.ServerSpec{SystemUUID: systems[2].UUID,
			BMCRef: &metalv1alpha1.LocalObjectReference{Name: "another-bmc"}},
	}
	create(t, otherRef)

	obj := createBMC(t, bmcFor(t, em.URL(), secret.Name, func(b *metalv1alpha1.BMC) { b.Name = bmcName }))
	cur := waitBMC(t, obj, metalv1alpha1.BMCStateEnabled, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
	g.Eventually(func(g Gomega) {
		get(g, allowed)
		g.Expect(metav1.GetControllerOf(allowed)).NotTo(BeNil())
		g.Expect(allowed.Spec.BMCRef).To(Equal(&metalv1alpha1.LocalObjectReference{Name: bmcName}))
		g.Expect(allowed.Spec.BMC).To(BeNil())
	}).Should(Succeed())
	settle(g, cur)

	ready := expectBMCCondition(g, getBMC(g, obj), metalv1alpha1.BMCReady, metav1.ConditionTrue, metalv1alpha1.ReasonEnrolled)
	g.Expect(ready.Message).To(ContainSubstring("1 of 3 systems enrolled"))
	for _, s := range []*metalv1alpha1.Server{reachedInline, otherRef} {
		g.Expect(ready.Message).To(ContainSubstring(s.Name))
	}
	get(g, reachedInline)
	g.Expect(reachedInline.OwnerReferences).To(BeEmpty())
	g.Expect(reachedInline.Spec.BMCRef).To(BeNil())
	g.Expect(reachedInline.Spec.BMC).To(Equal(inline))
	get(g, otherRef)
	g.Expect(otherRef.OwnerReferences).To(BeEmpty())
	g.Expect(otherRef.Spec.BMCRef.Name).To(Equal("another-bmc"))
	for _, sys := range systems {
		g.Expect(serversWithUUID(g, sys.UUID)).To(HaveLen(1), "no second Server for %s", sys.UUID)
	}
}

func TestBMCSharedUUIDsOfSystems(t *testing.T) {
	g := NewWithT(t)
	shared := sharedUUIDs([]bmc.System{
		{URI: "/s/1", UUID: "A"}, {URI: "/s/2", UUID: "b"}, {URI: "/s/3", UUID: "a"}, {URI: "/s/4"}, {URI: "/s/5"},
	})
	g.Expect(shared).To(Equal(map[string][]string{"a": {"/s/1", "/s/3"}}))
	g.Expect(slices.Collect(maps.Keys(sharedUUIDs(nil)))).To(BeEmpty())
}
