package cli

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"
)

// TestKrewManifest checks the fields krew needs and that every platform installs the binary
// this package builds.
func TestKrewManifest(t *testing.T) {
	g := NewWithT(t)
	data, err := os.ReadFile(filepath.Join(env.RootDir, "plugins", "krew", "metal.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	var m struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Version          string `json:"version"`
			ShortDescription string `json:"shortDescription"`
			Platforms        []struct {
				URI    string `json:"uri"`
				SHA256 string `json:"sha256"`
				Bin    string `json:"bin"`
			} `json:"platforms"`
		} `json:"spec"`
	}
	g.Expect(yaml.Unmarshal(data, &m)).To(Succeed())
	g.Expect(m.APIVersion).To(Equal("krew.googlecontainertools.github.com/v1alpha2"))
	g.Expect(m.Kind).To(Equal("Plugin"))
	g.Expect(m.Metadata.Name).To(Equal("metal"), "kubectl metal runs kubectl-metal")
	g.Expect(m.Spec.Version).To(MatchRegexp(`^v\d+\.\d+\.\d+$`))
	g.Expect(m.Spec.ShortDescription).NotTo(BeEmpty())
	g.Expect(m.Spec.Platforms).NotTo(BeEmpty())
	for _, p := range m.Spec.Platforms {
		g.Expect(p.Bin).To(Equal("kubectl-metal"))
		g.Expect(p.URI).To(HavePrefix("https://"))
		g.Expect(p.SHA256).To(MatchRegexp(`^[0-9a-f]{64}$`))
	}
}
