package samples

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"
)

// alertRule is the part of a PrometheusRule rule the test reads.
type alertRule struct {
	Alert  string            `json:"alert"`
	Expr   string            `json:"expr"`
	For    string            `json:"for"`
	Labels map[string]string `json:"labels"`
}

type prometheusRule struct {
	Kind string `json:"kind"`
	Spec struct {
		Groups []struct {
			Name  string      `json:"name"`
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// TestAlertsHaveTheReferenceAlerts: config/prometheus/alerts.yaml and the chart's copy parse
// as a PrometheusRule, every rule has an expression, a duration and a severity, and the
// reference operator's alerts are there under their names, in its group, with its durations
// and severities.
func TestAlertsHaveTheReferenceAlerts(t *testing.T) {
	reference := map[string]struct{ forDuration, severity string }{
		"NoAvailableServers":               {"5m", "warning"},
		"ServersInErrorState":              {"2m", "critical"},
		"ServersPoweringOnTooLong":         {"10m", "warning"},
		"ServersPoweringOffTooLong":        {"10m", "warning"},
		"HighReconciliationErrorRate":      {"5m", "warning"},
		"LowAvailableServerCapacity":       {"5m", "warning"},
		"ServerMetricsMissing":             {"5m", "critical"},
		"ServerReconciliationFailureSpike": {"10m", "critical"},
	}
	for _, path := range []string{
		filepath.Join(env.RootDir, "config", "prometheus", "alerts.yaml"),
		filepath.Join(env.RootDir, "charts", "metal-operator", "files", "alerts.yaml"),
	} {
		t.Run(filepath.Base(filepath.Dir(filepath.Dir(path))), func(t *testing.T) {
			g := NewWithT(t)
			raw, err := os.ReadFile(path)
			g.Expect(err).NotTo(HaveOccurred())
			var rule prometheusRule
			g.Expect(yaml.Unmarshal(raw, &rule)).To(Succeed())
			g.Expect(rule.Kind).To(Equal("PrometheusRule"))
			seen := map[string]bool{}
			for _, group := range rule.Spec.Groups {
				for _, r := range group.Rules {
					g.Expect(seen).NotTo(HaveKey(r.Alert), "alert names are unique")
					seen[r.Alert] = true
					g.Expect(r.Expr).NotTo(BeEmpty(), r.Alert)
					_, err := time.ParseDuration(r.For)
					g.Expect(err).NotTo(HaveOccurred(), r.Alert)
					g.Expect(r.Labels).To(HaveKey("severity"), r.Alert)
					want, ok := reference[r.Alert]
					if !ok {
						continue
					}
					g.Expect(group.Name).To(Equal("metal_operator_servers"), r.Alert)
					g.Expect(r.For).To(Equal(want.forDuration), r.Alert)
					g.Expect(r.Labels["severity"]).To(Equal(want.severity), r.Alert)
				}
			}
			for name := range reference {
				g.Expect(seen).To(HaveKey(name), "reference alert missing")
			}
		})
	}
}
