package operator

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// TestGrafanaDashboardQueriesExportedMetrics parses the chart's Grafana dashboard and checks
// that every PromQL query names only metrics docs/metrics.md lists (which the tests of this
// package tie to what the manager exports), and that the panels the chart promises are there.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	g := NewWithT(t)
	raw, err := os.ReadFile(filepath.Join(env.RootDir, "charts", "metal-operator", "dashboards", "metal-operator.json"))
	g.Expect(err).NotTo(HaveOccurred())
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	g.Expect(json.Unmarshal(raw, &dash)).To(Succeed())
	g.Expect(dash.UID).NotTo(BeEmpty())

	always, lazy := documentedMetrics(t)
	known := map[string]bool{}
	for _, m := range append(always, lazy...) {
		known[m] = true
	}
	ids := map[int]bool{}
	var titles []string
	queries := 0
	for _, p := range dash.Panels {
		g.Expect(ids).NotTo(HaveKey(p.ID), "panel ids are unique")
		ids[p.ID] = true
		titles = append(titles, p.Title)
		if p.Type == "row" {
			continue
		}
		g.Expect(p.Targets).NotTo(BeEmpty(), p.Title)
		for _, target := range p.Targets {
			queries++
			names := promQLMetricNames(target.Expr)
			g.Expect(names).NotTo(BeEmpty(), "%s: %s", p.Title, target.Expr)
			for _, name := range names {
				g.Expect(known[name] || known[histogramBase(name)]).To(BeTrue(),
					"panel %q queries %s, which the manager does not export (docs/metrics.md)", p.Title, name)
			}
		}
	}
	g.Expect(queries).To(BeNumerically(">", 10))
	for _, want := range []string{"Servers by state", "Claims by phase", "Bind latency", "Ready latency", "BMC errors"} {
		g.Expect(slices.ContainsFunc(titles, func(s string) bool { return strings.HasPrefix(s, want) })).To(BeTrue(), want)
	}
}

// histogramBase is the histogram a _bucket, _sum or _count series belongs to.
func histogramBase(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			return base
		}
	}
	return name
}

var (
	promQLStrings    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promQLMatchers   = regexp.MustCompile(`\{[^}]*\}`)
	promQLRanges     = regexp.MustCompile(`\[[^\]]*\]`)
	promQLGrouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promQLIdentifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promQLKeywords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true, "group_left": true, "group_right": true}
)

// promQLMetricNames returns the metric names a PromQL expression selects: the identifiers
// left once strings, label matchers, ranges and grouping clauses are cut, that are neither
// function calls nor keywords.
func promQLMetricNames(expr string) []string {
	for _, re := range []*regexp.Regexp{promQLStrings, promQLMatchers, promQLRanges, promQLGrouping} {
		expr = re.ReplaceAllString(expr, " ")
	}
	var names []string
	for _, m := range promQLIdentifier.FindAllStringSubmatch(expr, -1) {
		if m[1] != "" || promQLKeywords[strings.ToLower(m[0])] {
			continue // a function call, or a keyword
		}
		names = append(names, m[0])
	}
	return names
}

func TestPromQLMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (state) (metal_server_state)`, []string{"metal_server_state"}},
		{`sum(metal_server_state{state="Available", x=~"a|b"})`, []string{"metal_server_state"}},
		{`histogram_quantile(0.9, sum by (le) (rate(metal_x_bucket[$__rate_interval])))`, []string{"metal_x_bucket"}},
		{`sum(rate(a_total[5m])) * 60 / on (job) group_left b`, []string{"a_total", "b"}},
		{`up == 0 and bool absent(nothing)`, []string{"up", "nothing"}},
	} {
		if got := promQLMetricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.expr, got, tc.want)
		}
	}
}
