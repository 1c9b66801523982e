package image_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/boot/image"
	"github.com/metalfleet/metal-operator/internal/boot/image/imagetest"
	bootmetrics "github.com/metalfleet/metal-operator/internal/boot/metrics"
)

// newResolver returns a resolver that allows the test registries on 127.0.0.1.
func newResolver(t *testing.T, defaultRegistry string) *image.Resolver {
	t.Helper()
	r, err := image.NewResolver(image.Options{DefaultRegistry: defaultRegistry, AllowedRegistries: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolvePinsBootLayers(t *testing.T) {
	g := NewWithT(t)
	reg := imagetest.NewRegistry(t)
	pushed := reg.Push(t, "os/flatcar:4081", imagetest.BootLayers()...)

	// A reference without a registry host resolves against the default registry.
	got, err := newResolver(t, reg.Host).Resolve(t.Context(), "os/flatcar:4081")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Reference).To(Equal(reg.Host + "/os/flatcar:4081"))
	g.Expect(got.Digest).To(Equal(pushed.Digest))
	g.Expect(got.Kernel).To(Equal(&metalv1alpha1.BootArtifact{Digest: pushed.Layers[0].Digest, MediaType: image.MediaTypeKernel, Size: 4096}))
	g.Expect(got.Initrd).To(Equal(&metalv1alpha1.BootArtifact{Digest: pushed.Layers[1].Digest, MediaType: image.MediaTypeInitramfs, Size: 8192}))
	g.Expect(got.RootFS).To(Equal(&metalv1alpha1.BootArtifact{Digest: pushed.Layers[2].Digest, MediaType: image.MediaTypeRootFS, Size: 16384}))

	// A fully qualified reference ignores the default registry.
	got, err = newResolver(t, "registry.invalid:5000").Resolve(t.Context(), reg.Host+"/os/flatcar:4081")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Digest).To(Equal(pushed.Digest))

	// The pinned layers can be read back by digest, with their exact bytes.
	for i, l := range pushed.Layers {
		rc, err := newResolver(t, "").OpenBlob(t.Context(), got.Reference, l.Digest)
		g.Expect(err).NotTo(HaveOccurred())
		b, err := io.ReadAll(rc)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(rc.Close()).To(Succeed())
		g.Expect(b).To(Equal(pushed.Layers[i].Content))
	}
}

func TestResolveAlternativeConventions(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	rnd := imagetest.RandomBytes
	byTitle := reg.Push(t, "os/titled:1",
		imagetest.Layer{MediaType: "application/octet-stream", Annotations: map[string]string{image.TitleAnnotation: "vmlinuz"}, Content: rnd(64)},
		imagetest.Layer{MediaType: "application/octet-stream", Annotations: map[string]string{image.TitleAnnotation: "initramfs"}, Content: rnd(64)},
		imagetest.Layer{MediaType: "application/octet-stream", Annotations: map[string]string{image.TitleAnnotation: "README"}, Content: rnd(64)},
	)
	ironcore := reg.Push(t, "os/ironcore:amd64",
		imagetest.Layer{MediaType: "application/vnd.ironcore.image.cmdline", Content: rnd(16)},
		imagetest.Layer{MediaType: image.IronCoreMediaTypeKernel, Content: rnd(64)},
		imagetest.Layer{MediaType: image.IronCoreMediaTypeInitramfs, Content: rnd(64)},
		imagetest.Layer{MediaType: image.IronCoreMediaTypeSquashFS, Content: rnd(64)},
	)
	arm := reg.Push(t, "os/ironcore:arm64", imagetest.BootLayers()...)
	indexDigest := reg.PushIndex(t, "os/ironcore:multi",
		[]v1.Platform{{OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "amd64"}},
		[]imagetest.Image{arm, ironcore})

	r := newResolver(t, reg.Host)
	t.Run("title annotations", func(t *testing.T) {
		g := NewWithT(t)
		got, err := r.Resolve(t.Context(), "os/titled:1")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Kernel.Digest).To(Equal(byTitle.Layers[0].Digest))
		g.Expect(got.Initrd.Digest).To(Equal(byTitle.Layers[1].Digest))
		g.Expect(got.RootFS).To(BeNil())
	})
	t.Run("IronCore media types in an index: the linux/amd64 manifest", func(t *testing.T) {
		g := NewWithT(t)
		got, err := r.Resolve(t.Context(), "os/ironcore:multi")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(indexDigest).NotTo(Equal(ironcore.Digest))
		g.Expect(got.Digest).To(Equal(ironcore.Digest), "the pinned manifest is the platform's, not the index")
		g.Expect(got.Kernel.Digest).To(Equal(ironcore.Layers[1].Digest))
		g.Expect(got.Initrd.Digest).To(Equal(ironcore.Layers[2].Digest))
		g.Expect(got.RootFS.Digest).To(Equal(ironcore.Layers[3].Digest))
	})
}

func TestResolveErrors(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	rnd := imagetest.RandomBytes
	reg.Push(t, "os/nokernel:1", imagetest.Layer{MediaType: image.MediaTypeInitramfs, Content: rnd(32)})
	reg.Push(t, "os/noinitrd:1", imagetest.Layer{MediaType: image.MediaTypeKernel, Content: rnd(32)})
	reg.Push(t, "os/twokernels:1",
		imagetest.Layer{MediaType: image.MediaTypeKernel, Content: rnd(32)},
		imagetest.Layer{MediaType: image.MediaTypeKernel, Content: rnd(32)},
		imagetest.Layer{MediaType: image.MediaTypeInitramfs, Content: rnd(32)})
	reg.Push(t, "os/present:1", imagetest.BootLayers()...)

	closed := httptest.NewServer(nil)
	closedHost := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()

	down := imagetest.NewRegistry(t)
	down.SetDown(true)

	for _, tc := range []struct {
		name, ref, reason string
	}{
		{"unknown tag", reg.Host + "/os/present:2", metalv1alpha1.ReasonImageNotFound},
		{"unknown repository", reg.Host + "/os/absent:1", metalv1alpha1.ReasonImageNotFound},
		{"connection refused", closedHost + "/os/present:1", metalv1alpha1.ReasonRegistryUnreachable},
		{"registry answers 503", down.Host + "/os/present:1", metalv1alpha1.ReasonRegistryUnreachable},
		{"no kernel layer", reg.Host + "/os/nokernel:1", metalv1alpha1.ReasonInvalidImage},
		{"no initrd layer", reg.Host + "/os/noinitrd:1", metalv1alpha1.ReasonInvalidImage},
		{"two kernel layers", reg.Host + "/os/twokernels:1", metalv1alpha1.ReasonInvalidImage},
		{"invalid reference", "Not A Reference", metalv1alpha1.ReasonInvalidImage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			counter := bootmetrics.ImageResolutionErrors.WithLabelValues(tc.reason)
			before := counterValue(t, counter)
			_, err := newResolver(t, "").Resolve(t.Context(), tc.ref)
			g.Expect(err).To(HaveOccurred())
			g.Expect(image.Reason(err)).To(Equal(tc.reason), "error: %v", err)
			g.Expect(counterValue(t, counter)).To(Equal(before + 1))
		})
	}
}

func TestOpenBlobUnknownDigest(t *testing.T) {
	g := NewWithT(t)
	reg := imagetest.NewRegistry(t)
	pushed := reg.Push(t, "os/present:1", imagetest.BootLayers()...)
	r := newResolver(t, "")
	ctx := context.Background()
	rc, err := r.OpenBlob(ctx, pushed.Reference, "sha256:"+strings.Repeat("0", 64))
	if err == nil {
		// Some registries only fail on read.
		_, err = io.ReadAll(rc)
		_ = rc.Close()
	}
	g.Expect(err).To(HaveOccurred())
	_, err = r.OpenBlob(ctx, pushed.Reference, "not-a-digest")
	g.Expect(image.Reason(err)).To(Equal(metalv1alpha1.ReasonInvalidImage))
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	m := &dto.Metric{}
	if err := c.Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestResolutionsAreReusedPerReference: a fleet booting one image asks the registry once per
// reference and TTL: repeated and concurrent resolutions share one manifest request, a
// result handed out is the caller's own copy, and a moved tag is seen once the TTL passed.
func TestResolutionsAreReusedPerReference(t *testing.T) {
	g := NewWithT(t)
	reg := imagetest.NewRegistry(t)
	first := reg.Push(t, "os/fleet:1", imagetest.BootLayers()...)
	r, err := image.NewResolver(image.Options{DefaultRegistry: reg.Host, AllowedRegistries: []string{"127.0.0.1"}, CacheTTL: 300 * time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())
	pushed := reg.ManifestRequests() // the push's own

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			got, err := r.Resolve(t.Context(), "os/fleet:1")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.Digest).To(Equal(first.Digest))
			got.Kernel.Digest = "changed by a caller"
		})
	}
	wg.Wait()
	again, err := r.Resolve(t.Context(), reg.Host+"/os/fleet:1") // the same reference, spelled out
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.Kernel.Digest).To(Equal(first.Layers[0].Digest), "callers get copies")
	g.Expect(reg.ManifestRequests()-pushed).To(Equal(int64(1)), "one resolution for 51 asks")

	second := reg.Push(t, "os/fleet:1", imagetest.BootLayers()...)
	g.Eventually(func(g Gomega) string {
		got, err := r.Resolve(t.Context(), "os/fleet:1")
		g.Expect(err).NotTo(HaveOccurred())
		return got.Digest
	}).Should(Equal(second.Digest), "the moved tag is seen after the TTL")

	// Failures are not kept.
	reg.SetDown(true)
	_, err = r.Resolve(t.Context(), "os/other:1")
	g.Expect(err).To(HaveOccurred())
	reg.SetDown(false)
	reg.Push(t, "os/other:1", imagetest.BootLayers()...)
	_, err = r.Resolve(t.Context(), "os/other:1")
	g.Expect(err).NotTo(HaveOccurred())
}
