package image

import (
	"encoding/json"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzSelectManifest: whatever index a registry serves, selecting a manifest does not panic,
// picks one of the index's own manifests for the resolver's platform (or the only one
// without a platform), and picks the same one every time. Seeds: testdata/fuzz/FuzzSelectManifest.
func FuzzSelectManifest(f *testing.F) {
	r, err := NewResolver(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := r.selectManifest(raw)
		if err != nil {
			return
		}
		var index v1.IndexManifest
		if err := json.Unmarshal(raw, &index); err != nil {
			t.Fatalf("selected from an index that does not parse: %v", err)
		}
		if got.Platform == nil && len(index.Manifests) != 1 {
			t.Fatalf("selected a manifest without platform among %d", len(index.Manifests))
		}
		if got.Platform != nil && !got.Platform.Satisfies(r.platform) {
			t.Fatalf("selected a manifest for %s", got.Platform)
		}
		again, err := r.selectManifest(raw)
		if err != nil || again.Digest != got.Digest || again.Size != got.Size {
			t.Fatalf("selection is not deterministic: %v then %v (%v)", got, again, err)
		}
	})
}
