package samples

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/operator"
)

// TestTroubleshootingCoversEveryReason keeps docs/troubleshooting.md complete: every condition
// reason exported by api/v1alpha1 and api/fleet/v1alpha1 (the constants named Reason*) has an
// entry, a heading "### `<reason>`".
func TestTroubleshootingCoversEveryReason(t *testing.T) {
	g := NewWithT(t)
	doc, err := os.ReadFile(filepath.Join(env.RootDir, "docs", "troubleshooting.md"))
	g.Expect(err).NotTo(HaveOccurred())
	headings := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if h, ok := strings.CutPrefix(line, "### `"); ok {
			headings[strings.TrimSuffix(h, "`")] = true
		}
	}

	reasons := reasonConstants(t, filepath.Join(env.RootDir, "api", "v1alpha1", "conditions.go"))
	g.Expect(reasons).NotTo(BeEmpty())
	fleet := reasonConstants(t, filepath.Join(env.RootDir, "api", "fleet", "v1alpha1", "conditions.go"))
	g.Expect(fleet).NotTo(BeEmpty())
	for name, value := range fleet {
		reasons["fleet."+name] = value
	}
	var missing []string
	for name, value := range reasons {
		if !headings[value] {
			missing = append(missing, fmt.Sprintf("%s (%q)", name, value))
		}
	}
	slices.Sort(missing)
	g.Expect(missing).To(BeEmpty(), "condition reasons without an entry in docs/troubleshooting.md")
}

// reasonConstants returns the string constants named Reason* of a Go file, by name.
func reasonConstants(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	out := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Reason") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatalf("%s: %v", n.Name, err)
				}
				out[n.Name] = v
			}
		}
	}
	return out
}

// TestConfigurationDocumentsEveryFlag keeps docs/configuration.md complete: every flag the
// manager registers (operator.Options.BindFlags, what cmd/metal-operator exposes) has a row.
func TestConfigurationDocumentsEveryFlag(t *testing.T) {
	g := NewWithT(t)
	doc, err := os.ReadFile(filepath.Join(env.RootDir, "docs", "configuration.md"))
	g.Expect(err).NotTo(HaveOccurred())
	fs := flag.NewFlagSet("metal-operator", flag.ContinueOnError)
	opts := operator.DefaultOptions()
	opts.BindFlags(fs)
	var missing []string
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(string(doc), "`--"+f.Name+"`") {
			missing = append(missing, "--"+f.Name)
		}
	})
	g.Expect(missing).To(BeEmpty(), "manager flags not documented in docs/configuration.md")
}
