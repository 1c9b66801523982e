package controller

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/boot/image"
)

// flakyRegistry answers every request with 400 and a body that differs each time, and counts
// the requests.
func flakyRegistry(t *testing.T) (host string, requests *atomic.Int32) {
	t.Helper()
	requests = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "registry-body-"+rand.Text(), http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), requests
}

// TestServerBootConfigurationVaryingRegistryErrorDoesNotLoop: a registry whose error body
// differs on every answer costs at most one resolution per backoff, and the configuration's
// status is written at most that often; the body is never in the status or an event.
//
// The window is a few backoff periods: without the fixes every resolution writes a new
// message, whose update event starts the next resolution at once (hundreds of writes a second).
func TestServerBootConfigurationVaryingRegistryErrorDoesNotLoop(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	host, requests := flakyRegistry(t)
	const backoff = 250 * time.Millisecond
	startBootControllerWith(t, image.Options{DefaultRegistry: host},
		ServerBootConfigurationOptions{ImageRetryMin: backoff, ImageRetryMax: backoff, MaxConcurrentReconciles: 4, Namespace: ns})

	sbc := newSBC(ns, "flaky", "os/flatcar:1", "")
	create(t, sbc)
	g.Eventually(sbcState(sbc)).Should(Equal("Error/RegistryUnreachable"))

	watcher, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	w, err := watcher.Watch(t.Context(), &metalv1alpha1.ServerBootConfigurationList{},
		client.InNamespace(ns), client.MatchingFields{"metadata.name": sbc.Name})
	g.Expect(err).NotTo(HaveOccurred())
	defer w.Stop()

	const window = 8 * backoff
	reqBefore := requests.Load()
	writes := 0
	deadline := time.After(window)
observe:
	for {
		select {
		case ev := <-w.ResultChan():
			if ev.Type == watch.Modified {
				writes++
			}
		case <-deadline:
			break observe
		}
	}
	// One resolution per backoff period (a few requests each: ping, token, manifest).
	resolutions := int(window/backoff) + 1
	g.Expect(writes).To(BeNumerically("<=", resolutions), "status writes in %s", window)
	g.Expect(int(requests.Load()-reqBefore)).To(BeNumerically("<=", 3*resolutions), "registry requests in %s", window)

	cur := getSBC(g, sbc)
	c := meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.BootConfigurationImageResolved)
	g.Expect(c).NotTo(BeNil())
	g.Expect(c.Message).To(ContainSubstring("HTTP 400"))
	g.Expect(c.Message).NotTo(ContainSubstring("registry-body-"))
	for _, e := range eventsOf(g, sbc) {
		g.Expect(e.Note).NotTo(ContainSubstring("registry-body-"))
	}
}

// TestServerBootConfigurationIgnoresStatusWrites: a status write (its own, or the boot
// server's BootStateReceived) does not wake the controller: no resolution follows it.
func TestServerBootConfigurationIgnoresStatusWrites(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	host, requests := flakyRegistry(t)
	startBootControllerWith(t, image.Options{DefaultRegistry: host},
		ServerBootConfigurationOptions{ImageRetryMin: time.Hour, ImageRetryMax: time.Hour, MaxConcurrentReconciles: 1, Namespace: ns})

	sbc := newSBC(ns, "quiet", "os/flatcar:1", "")
	create(t, sbc)
	g.Eventually(sbcState(sbc)).Should(Equal("Error/RegistryUnreachable"))
	settled := requests.Load()

	for i := range 3 {
		cur := getSBC(g, sbc)
		base := cur.DeepCopy()
		meta.SetStatusCondition(&cur.Status.Conditions, metav1.Condition{
			Type: metalv1alpha1.BootConfigurationBootStateReceived, Status: metav1.ConditionTrue,
			Reason: metalv1alpha1.ReasonBootStateReceived, Message: strings.Repeat("x", i+1), ObservedGeneration: cur.Generation,
		})
		g.Expect(env.Client.Status().Patch(t.Context(), cur, client.MergeFrom(base))).To(Succeed())
	}
	g.Consistently(requests.Load, time.Second, 50*time.Millisecond).Should(Equal(settled))

	// A spec change does wake it.
	cur := getSBC(g, sbc)
	base := cur.DeepCopy()
	cur.Spec.Image = "os/flatcar:2"
	g.Expect(env.Client.Patch(t.Context(), cur, client.MergeFrom(base))).To(Succeed())
	g.Eventually(requests.Load).Should(BeNumerically(">", settled))
}
