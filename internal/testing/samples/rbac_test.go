package samples

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// TestRBACIsDocumented keeps the manager's roles to the verbs it uses: every rule of
// manager-role and leader-election-role has a row (API group, resource, verb, why) in
// docs/rbac.md and every row a rule; and since the manager writes with Patch only, no role
// grants update except on a finalizers subresource (owner references) and the leader Lease,
// nor get on a status subresource.
func TestRBACIsDocumented(t *testing.T) {
	g := NewWithT(t)
	granted := map[string]bool{}
	type roleDoc struct {
		file string
		doc  string
	}
	var docs []roleDoc
	for _, file := range []string{"role.yaml", "leader_election_role.yaml"} {
		raw, err := os.ReadFile(filepath.Join(env.RootDir, "config", "rbac", file))
		g.Expect(err).NotTo(HaveOccurred())
		for doc := range strings.SplitSeq(string(raw), "\n---") {
			if strings.TrimSpace(strings.Trim(doc, "-")) != "" {
				docs = append(docs, roleDoc{file, doc})
			}
		}
	}
	for _, d := range docs {
		file := d.file
		var role rbacv1.ClusterRole // a Role has the same rules
		g.Expect(yaml.Unmarshal([]byte(d.doc), &role)).To(Succeed())
		g.Expect(role.Rules).NotTo(BeEmpty(), file)
		if role.Kind == "Role" && role.Name == "manager-role" {
			// manager-role's rules that hold in the manager's namespace only.
			role.Name += " (namespaced)"
		}
		for _, rule := range role.Rules {
			for _, group := range rule.APIGroups {
				for _, res := range rule.Resources {
					for _, verb := range rule.Verbs {
						granted[role.Name+" "+group+" "+res+" "+verb] = true
						switch {
						case verb == "update":
							g.Expect(strings.HasSuffix(res, "/finalizers") || res == "leases").To(BeTrue(),
								"%s grants update on %s: the manager patches", file, res)
						case verb == "get" && strings.HasSuffix(res, "/status"):
							g.Fail(file + " grants get on " + res + ": status is read with its object")
						}
					}
				}
			}
		}
	}

	doc, err := os.ReadFile(filepath.Join(env.RootDir, "docs", "rbac.md"))
	g.Expect(err).NotTo(HaveOccurred())
	documented := map[string]bool{}
	role := ""
	for line := range strings.SplitSeq(string(doc), "\n") {
		if r, ok := strings.CutPrefix(line, "## "); ok {
			role = strings.TrimSpace(r)
			continue
		}
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		g.Expect(len(cells)).To(BeNumerically(">=", 5), "row %q", line)
		var key []string
		for _, c := range cells[1:4] {
			key = append(key, strings.Trim(strings.TrimSpace(c), "`\""))
		}
		g.Expect(strings.TrimSpace(cells[4])).NotTo(BeEmpty(), "row %q says not why", line)
		k := role + " " + strings.Join(key, " ")
		g.Expect(documented).NotTo(HaveKey(k), "row %q twice", line)
		documented[k] = true
	}
	var undocumented, ungranted []string
	for k := range granted {
		if !documented[k] {
			undocumented = append(undocumented, k)
		}
	}
	for k := range documented {
		if !granted[k] {
			ungranted = append(ungranted, k)
		}
	}
	slices.Sort(undocumented)
	slices.Sort(ungranted)
	g.Expect(undocumented).To(BeEmpty(), "granted but not in docs/rbac.md")
	g.Expect(ungranted).To(BeEmpty(), "in docs/rbac.md but not granted")
}
