package controller

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/boot/image"
	"github.com/metalfleet/metal-operator/internal/boot/image/imagetest"
	"github.com/metalfleet/metal-operator/internal/index"
)

// sbcSecretMarker is in every test ignition config: it must never show in a status or event.
const sbcSecretMarker = "sbc-s3cr3t-marker"

const sbcButane = `variant: fcos
version: 1.3.0
passwd:
  users:
    - name: core
      ssh_authorized_keys:
        - ssh-ed25519 AAAA` + sbcSecretMarker + `
`

// startBootController starts a manager with the ServerBootConfiguration controller for the
// namespace ns, resolving references without a registry host against defaultRegistry and
// allowing the test registries on 127.0.0.1.
func startBootController(t *testing.T, ns, defaultRegistry string) {
	t.Helper()
	// No resolution cache: these tests move tags and expect a new generation to see them at
	// once (the cache is tested in internal/boot/image).
	startBootControllerWith(t, image.Options{DefaultRegistry: defaultRegistry, AllowedRegistries: []string{"127.0.0.1"}, CacheTTL: -1},
		ServerBootConfigurationOptions{ImageRetryMin: 100 * time.Millisecond, ImageRetryMax: 400 * time.Millisecond,
			MaxConcurrentReconciles: 4, Namespace: ns})
}

func startBootControllerWith(t *testing.T, io image.Options, o ServerBootConfigurationOptions) {
	t.Helper()
	defer createSBCServer(t, o.Namespace) // after the manager, whose controller then sees it go
	resolver, err := image.NewResolver(io)
	if err != nil {
		t.Fatal(err)
	}
	startManager(t, func(mgr manager.Manager) error {
		if err := index.SetupBoot(context.Background(), mgr.GetFieldIndexer()); err != nil {
			return err
		}
		return (&ServerBootConfigurationReconciler{
			Client:   mgr.GetClient(),
			Resolver: resolver,
			Recorder: mgr.GetEventRecorder("serverbootconfiguration-controller"),
			Options:  o,
		}).SetupWithManager(mgr)
	})
}

// sbcServerName is the server the configurations of newSBC in namespace ns name.
func sbcServerName(ns string) string { return "sbc-server-" + ns }

// createSBCServer creates the server of sbcServerName(ns), deleted when the test ends: a
// configuration for a missing server is not Ready.
func createSBCServer(t *testing.T, ns string) {
	t.Helper()
	env.Create(t, &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{Name: sbcServerName(ns),
			Annotations: map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationIgnore}},
		Spec: metalv1alpha1.ServerSpec{SystemUUID: "00000000-0000-0000-0000-000000000000"},
	})
}

func newIgnitionSecret(ns, name string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		StringData: data,
	}
}

func validIgnitionData() map[string]string {
	return map[string]string{"format": "fcos", "ignition": sbcButane}
}

func newSBC(ns, name, img, secret string) *metalv1alpha1.ServerBootConfiguration {
	sbc := &metalv1alpha1.ServerBootConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: metalv1alpha1.ServerBootConfigurationSpec{
			ServerRef: metalv1alpha1.LocalObjectReference{Name: sbcServerName(ns)},
			Image:     img,
		},
	}
	if secret != "" {
		sbc.Spec.IgnitionSecretRef = &metalv1alpha1.LocalObjectReference{Name: secret}
	}
	return sbc
}

// sbcState returns a function that reads the configuration's state and the reason of its
// failing condition ("" when none fails).
func sbcState(sbc *metalv1alpha1.ServerBootConfiguration) func(g Gomega) string {
	return func(g Gomega) string {
		cur := get(g, sbc.DeepCopy()).(*metalv1alpha1.ServerBootConfiguration)
		state := string(cur.Status.State)
		for _, c := range cur.Status.Conditions {
			if c.Status == metav1.ConditionFalse {
				state += "/" + c.Reason
			}
		}
		return state
	}
}

func getSBC(g Gomega, sbc *metalv1alpha1.ServerBootConfiguration) *metalv1alpha1.ServerBootConfiguration {
	return get(g, sbc.DeepCopy()).(*metalv1alpha1.ServerBootConfiguration)
}

// eventsOf lists the events about an object.
func eventsOf(g Gomega, obj client.Object) []eventsv1.Event {
	list := &eventsv1.EventList{}
	g.Expect(env.Client.List(context.Background(), list, client.InNamespace(obj.GetNamespace()))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == obj.GetName() {
			out = append(out, e)
		}
	}
	return out
}

func eventReasons(obj client.Object) func(g Gomega) []string {
	return func(g Gomega) []string {
		var reasons []string
		for _, e := range eventsOf(g, obj) {
			reasons = append(reasons, e.Reason)
		}
		return reasons
	}
}

func TestServerBootConfigurationPinsImageOncePerGeneration(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	reg := imagetest.NewRegistry(t)
	first := reg.Push(t, "os/flatcar:stable", imagetest.BootLayers()...)
	startBootController(t, ns, reg.Host)

	secret := newIgnitionSecret(ns, "ignition", validIgnitionData())
	create(t, secret)
	sbc := newSBC(ns, "pinned", "os/flatcar:stable", secret.Name)
	create(t, sbc)

	g.Eventually(sbcState(sbc)).Should(Equal("Ready"))
	cur := getSBC(g, sbc)
	g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
	g.Expect(cur.Status.Image).NotTo(BeNil())
	g.Expect(cur.Status.Image.Reference).To(Equal(reg.Host + "/os/flatcar:stable"))
	g.Expect(cur.Status.Image.Digest).To(Equal(first.Digest))
	g.Expect(cur.Status.Image.Kernel.Digest).To(Equal(first.Layers[0].Digest))
	g.Expect(cur.Status.Image.Initrd.Digest).To(Equal(first.Layers[1].Digest))
	g.Expect(cur.Status.Image.RootFS.Digest).To(Equal(first.Layers[2].Digest))
	g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, metalv1alpha1.BootConfigurationImageResolved)).To(BeTrue())
	g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, metalv1alpha1.BootConfigurationIgnitionValid)).To(BeTrue())
	// A configuration Ready at its first resolution says so in its state only: no event per
	// boot configuration in a burst of claims.
	g.Consistently(eventReasons(sbc), 300*time.Millisecond).ShouldNot(ContainElement("BootConfigurationReady"))

	// The tag moves. Breaking and repairing the Secret makes the controller reconcile twice
	// (Error, then Ready again) without resolving the image again: the pin holds.
	second := reg.Push(t, "os/flatcar:stable", imagetest.BootLayers()...)
	g.Expect(second.Digest).NotTo(Equal(first.Digest))
	g.Expect(env.Client.Patch(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secret.Name},
		Data:       map[string][]byte{"ignition": nil},
	}, client.Merge)).To(Succeed())
	g.Eventually(sbcState(sbc)).Should(Equal("Error/IgnitionKeyMissing"))
	g.Expect(getSBC(g, sbc).Status.Image.Digest).To(Equal(first.Digest), "an Error from the Secret keeps the pin")
	g.Expect(env.Client.Patch(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secret.Name},
		StringData: map[string]string{"ignition": sbcButane},
	}, client.Merge)).To(Succeed())
	g.Eventually(sbcState(sbc)).Should(Equal("Ready"))
	g.Expect(getSBC(g, sbc).Status.Image.Digest).To(Equal(first.Digest), "a moving tag does not change a Ready pin")
	// Ready again after an Error is told; the first Ready was not (checked above).
	g.Eventually(eventReasons(sbc)).Should(ContainElement("BootConfigurationReady"))

	// A new generation is resolved anew.
	patch := client.MergeFrom(getSBC(g, sbc))
	updated := getSBC(g, sbc)
	updated.Spec.Image = reg.Host + "/os/flatcar:stable"
	g.Expect(env.Client.Patch(t.Context(), updated, patch)).To(Succeed())
	g.Eventually(func(g Gomega) string {
		cur := getSBC(g, sbc)
		if cur.Status.ObservedGeneration != cur.Generation || cur.Status.Image == nil {
			return ""
		}
		return string(cur.Status.State) + " " + cur.Status.Image.Digest
	}).Should(Equal("Ready " + second.Digest))
	g.Expect(getSBC(g, sbc).Status.Image.Kernel.Digest).To(Equal(second.Layers[0].Digest))
}

func TestServerBootConfigurationPendingWhileResolving(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	reg := imagetest.NewRegistry(t)
	reg.Push(t, "os/flatcar:1", imagetest.BootLayers()...)
	release := reg.Hold(t)
	startBootController(t, ns, reg.Host)

	sbc := newSBC(ns, "pending", "os/flatcar:1", "")
	create(t, sbc)
	g.Eventually(sbcState(sbc)).Should(Equal("Pending"))
	g.Consistently(sbcState(sbc), 200*time.Millisecond).Should(Equal("Pending"))
	release()
	g.Eventually(sbcState(sbc)).Should(Equal("Ready"))
	cur := getSBC(g, sbc)
	g.Expect(meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.BootConfigurationIgnitionValid)).To(BeNil(),
		"no ignition Secret, no ignition condition")
}

// TestServerBootConfigurationForAMissingServer: a configuration whose server does not exist
// is Pending and says so, and turns Ready once the server is created.
func TestServerBootConfigurationForAMissingServer(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	reg := imagetest.NewRegistry(t)
	reg.Push(t, "os/flatcar:1", imagetest.BootLayers()...)
	startBootController(t, ns, reg.Host)

	sbc := newSBC(ns, "spare", "os/flatcar:1", "")
	sbc.Spec.ServerRef.Name = "spare-" + ns
	create(t, sbc)
	g.Eventually(sbcState(sbc)).Should(Equal("Pending/ServerNotFound"))
	cond := meta.FindStatusCondition(getSBC(g, sbc).Status.Conditions, metalv1alpha1.BootConfigurationServerFound)
	g.Expect(cond.Message).To(Equal("Server spare-" + ns + " does not exist"))
	g.Expect(meta.IsStatusConditionTrue(getSBC(g, sbc).Status.Conditions, metalv1alpha1.BootConfigurationImageResolved)).To(BeTrue(),
		"the image is resolved meanwhile")

	create(t, &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{Name: "spare-" + ns,
			Annotations: map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationIgnore}},
		Spec: metalv1alpha1.ServerSpec{SystemUUID: "00000000-0000-0000-0000-000000000000"},
	})
	g.Eventually(sbcState(sbc)).Should(Equal("Ready"))
	g.Expect(meta.IsStatusConditionTrue(getSBC(g, sbc).Status.Conditions, metalv1alpha1.BootConfigurationServerFound)).To(BeTrue())
}

func TestServerBootConfigurationErrorsAndRecovery(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	reg.Push(t, "os/flatcar:1", imagetest.BootLayers()...)
	reg.Push(t, "os/nokernel:1", imagetest.Layer{MediaType: image.MediaTypeInitramfs, Content: imagetest.RandomBytes(64)})
	closed := httptest.NewServer(nil)
	closedHost := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()

	type fixture struct {
		ns     string
		sbc    *metalv1alpha1.ServerBootConfiguration
		secret *corev1.Secret
		reg    *imagetest.Registry
	}
	for _, tc := range []struct {
		name   string
		image  string
		secret map[string]string // nil: no Secret is created
		noRef  bool              // the configuration names no ignition Secret
		down   bool              // the test's own registry answers 503
		want   string
		fix    func(t *testing.T, f fixture)
	}{
		{
			name: "image not found, then pushed", image: "os/later:1", secret: validIgnitionData(),
			want: "Error/ImageNotFound",
			fix: func(t *testing.T, f fixture) {
				f.reg.Push(t, "os/later:1", imagetest.BootLayers()...)
			},
		},
		{
			name: "registry unreachable", image: closedHost + "/os/flatcar:1", secret: validIgnitionData(),
			want: "Error/RegistryUnreachable",
		},
		{
			name: "registry answers 503, then recovers", image: "os/flatcar:1", secret: validIgnitionData(), down: true,
			want: "Error/RegistryUnreachable",
			fix:  func(t *testing.T, f fixture) { f.reg.SetDown(false) },
		},
		{
			name: "no kernel layer", image: reg.Host + "/os/nokernel:1", secret: validIgnitionData(),
			want: "Error/InvalidImage",
		},
		{
			name: "no image", image: "", secret: validIgnitionData(),
			want: "Error/InvalidImage",
		},
		{
			name: "Secret missing, then created", image: "os/flatcar:1",
			want: "Error/IgnitionSecretNotFound",
			fix: func(t *testing.T, f fixture) {
				create(t, newIgnitionSecret(f.ns, "ignition", validIgnitionData()))
			},
		},
		{
			name: "key missing, then added", image: "os/flatcar:1", secret: map[string]string{"format": "fcos", "userdata": sbcButane},
			want: "Error/IgnitionKeyMissing",
			fix: func(t *testing.T, f fixture) {
				g := NewWithT(t)
				s := f.secret.DeepCopy()
				s.StringData = map[string]string{"ignition": sbcButane}
				g.Expect(env.Client.Update(t.Context(), s)).To(Succeed())
			},
		},
		{
			name: "invalid ignition, then repaired", image: "os/flatcar:1",
			secret: map[string]string{"ignition": `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"` + sbcSecretMarker + `"}]}}`},
			want:   "Error/InvalidIgnition",
			fix: func(t *testing.T, f fixture) {
				g := NewWithT(t)
				s := f.secret.DeepCopy()
				s.StringData = map[string]string{"ignition": `{"ignition":{"version":"3.2.0"}}`}
				g.Expect(env.Client.Update(t.Context(), s)).To(Succeed())
			},
		},
		{
			name: "no ignition Secret named", image: "os/flatcar:1", noRef: true,
			want: "Ready",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := env.Namespace(t)
			own := imagetest.NewRegistry(t)
			own.Push(t, "os/flatcar:1", imagetest.BootLayers()...)
			own.SetDown(tc.down)
			startBootController(t, ns, own.Host)

			f := fixture{ns: ns, reg: own}
			if tc.secret != nil {
				f.secret = newIgnitionSecret(ns, "ignition", tc.secret)
				create(t, f.secret)
				g.Expect(env.Client.Get(t.Context(), client.ObjectKeyFromObject(f.secret), f.secret)).To(Succeed())
			}
			secretName := "ignition"
			if tc.noRef {
				secretName = ""
			}
			f.sbc = newSBC(ns, "sbc", tc.image, secretName)
			create(t, f.sbc)

			g.Eventually(sbcState(f.sbc)).Should(Equal(tc.want))
			cur := getSBC(g, f.sbc)
			g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
			if reason, failed := strings.CutPrefix(tc.want, "Error/"); failed {
				if strings.Contains(reason, "Ignition") {
					g.Expect(cur.Status.Image).NotTo(BeNil(), "the image is pinned; only the ignition fails")
				} else {
					g.Expect(cur.Status.Image).To(BeNil(), "nothing is pinned while the image fails")
				}
				g.Eventually(eventReasons(f.sbc)).Should(ContainElement(reason))
			}
			for _, c := range cur.Status.Conditions {
				g.Expect(c.Message).NotTo(ContainSubstring(sbcSecretMarker), "condition %s quotes the Secret", c.Type)
			}
			for _, e := range eventsOf(g, f.sbc) {
				g.Expect(e.Note).NotTo(ContainSubstring(sbcSecretMarker), "event %s quotes the Secret", e.Reason)
			}
			if tc.fix == nil {
				return
			}
			tc.fix(t, f)
			g.Eventually(sbcState(f.sbc)).Should(Equal("Ready"))
			g.Expect(getSBC(g, f.sbc).Status.Image).NotTo(BeNil())
			g.Eventually(eventReasons(f.sbc)).Should(ContainElement("BootConfigurationReady"))
		})
	}
}

// TestServerBootConfigurationKeptResolutionIsOneWrite: a configuration of a reference the
// resolver resolved a moment ago (a burst of claims of one image) is Ready in one status
// write, without a Pending one first; the first configuration of a reference says Pending
// while the registry is asked.
func TestServerBootConfigurationKeptResolutionIsOneWrite(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	reg := imagetest.NewRegistry(t)
	pushed := reg.Push(t, "os/flatcar:kept", imagetest.BootLayers()...)
	startBootControllerWith(t, image.Options{DefaultRegistry: reg.Host, AllowedRegistries: []string{"127.0.0.1"}, CacheTTL: time.Minute},
		ServerBootConfigurationOptions{ImageRetryMin: time.Second, ImageRetryMax: time.Second, MaxConcurrentReconciles: 2, Namespace: ns})

	watcher, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	w, err := watcher.Watch(t.Context(), &metalv1alpha1.ServerBootConfigurationList{}, client.InNamespace(ns))
	g.Expect(err).NotTo(HaveOccurred())
	defer w.Stop()
	// states collects the states each configuration was written with, in order, until it is
	// Ready.
	states := func(name string) []metalv1alpha1.ServerBootConfigurationState {
		var seen []metalv1alpha1.ServerBootConfigurationState
		timeout := time.After(30 * time.Second)
		for {
			select {
			case ev := <-w.ResultChan():
				sbc, ok := ev.Object.(*metalv1alpha1.ServerBootConfiguration)
				if !ok || sbc.Name != name || ev.Type != watch.Modified {
					continue
				}
				seen = append(seen, sbc.Status.State)
				if sbc.Status.State == metalv1alpha1.ServerBootConfigurationStateReady {
					return seen
				}
			case <-timeout:
				t.Fatalf("%s not Ready; states written: %v", name, seen)
			}
		}
	}

	create(t, newSBC(ns, "first", "os/flatcar:kept", ""))
	g.Expect(states("first")).To(Equal([]metalv1alpha1.ServerBootConfigurationState{"Pending", "Ready"}))
	second := newSBC(ns, "second", "os/flatcar:kept", "")
	create(t, second)
	g.Expect(states("second")).To(Equal([]metalv1alpha1.ServerBootConfigurationState{"Ready"}))
	cur := getSBC(g, second)
	g.Expect(cur.Status.Image.Digest).To(Equal(pushed.Digest))
	g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
}
