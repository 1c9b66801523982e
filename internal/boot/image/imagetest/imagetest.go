// Package imagetest starts an in-process OCI registry for tests and pushes small OS images
// with kernel, initrd and root filesystem layers made of random bytes.
package imagetest

import (
	"crypto/rand"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/metalfleet/metal-operator/internal/boot/image"
)

// Registry is an in-process OCI registry on a loopback HTTP server.
type Registry struct {
	// Host is the registry's host:port.
	Host string
	srv  *httptest.Server
	down atomic.Bool
	gate atomic.Pointer[chan struct{}]
	// manifests counts manifest requests (GET and HEAD of /v2/*/manifests/*).
	manifests atomic.Int64
}

// ManifestRequests is how many manifest requests (GET or HEAD) the registry answered.
func (r *Registry) ManifestRequests() int64 { return r.manifests.Load() }

// NewRegistry starts a registry that lives until the test ends.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	r := &Registry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if gate := r.gate.Load(); gate != nil {
			select {
			case <-*gate:
			case <-req.Context().Done():
				return
			}
		}
		if r.down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		if strings.Contains(req.URL.Path, "/manifests/") {
			r.manifests.Add(1)
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

// SetDown makes the registry answer every request with 503 (true) or serve again (false).
func (r *Registry) SetDown(down bool) { r.down.Store(down) }

// Hold makes requests wait until the returned release function is called (which the test's
// cleanup also calls).
func (r *Registry) Hold(t testing.TB) (release func()) {
	gate := make(chan struct{})
	r.gate.Store(&gate)
	var once sync.Once
	release = func() {
		once.Do(func() {
			r.gate.Store(nil)
			close(gate)
		})
	}
	t.Cleanup(release)
	return release
}

// Layer is one layer of a test image.
type Layer struct {
	MediaType   string
	Annotations map[string]string
	Content     []byte
}

// Image is a pushed test image.
type Image struct {
	// Reference is host/repo:tag.
	Reference string
	// Digest of the manifest.
	Digest string
	// Layers pushed, in order, with their digests.
	Layers []PushedLayer
}

// PushedLayer is a layer as pushed.
type PushedLayer struct {
	Layer
	Digest string
}

// RandomBytes returns n random bytes.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// BootLayers returns kernel, initrd and rootfs layers of the convention with random content.
func BootLayers() []Layer {
	return []Layer{
		{MediaType: image.MediaTypeKernel, Content: RandomBytes(4096)},
		{MediaType: image.MediaTypeInitramfs, Content: RandomBytes(8192)},
		{MediaType: image.MediaTypeRootFS, Content: RandomBytes(16384)},
	}
}

// Push pushes an OCI image with the given layers as repoTag ("os/flatcar:1") and returns it.
func (r *Registry) Push(t testing.TB, repoTag string, layers ...Layer) Image {
	t.Helper()
	ref, err := name.ParseReference(r.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	out := Image{Reference: ref.Name()}
	for _, l := range layers {
		sl := static.NewLayer(l.Content, types.MediaType(l.MediaType))
		img, err = mutate.Append(img, mutate.Addendum{Layer: sl, Annotations: l.Annotations, MediaType: types.MediaType(l.MediaType)})
		if err != nil {
			t.Fatal(err)
		}
		d, err := sl.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out.Layers = append(out.Layers, PushedLayer{Layer: l, Digest: d.String()})
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	out.Digest = d.String()
	return out
}

// PushIndex pushes an image index of the given images under repoTag, each with its platform.
func (r *Registry) PushIndex(t testing.TB, repoTag string, platforms []v1.Platform, images []Image) string {
	t.Helper()
	ref, err := name.ParseReference(r.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.ImageIndex = empty.Index
	idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	for i, im := range images {
		imgRef, err := name.ParseReference(im.Reference)
		if err != nil {
			t.Fatal(err)
		}
		pulled, err := remote.Image(imgRef)
		if err != nil {
			t.Fatal(err)
		}
		p := platforms[i]
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: pulled, Descriptor: v1.Descriptor{Platform: &p}})
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatalf("pushing index %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
