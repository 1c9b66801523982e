package operator

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// freeLoopbackAddr returns a loopback address with a port nothing listens on (yet): the
// metrics server does not report the port it bound to ":0".
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	NewWithT(t).Expect(l.Close()).To(Succeed())
	return addr
}

// metricName is a backquoted metric name in a table cell, before any {labels}.
var metricName = regexp.MustCompile("`((?:metal|controller_runtime|workqueue|rest_client|redfish)_[a-z_]+)[{`]")

// documentedMetrics returns the metric names in docs/metrics.md's tables (rows of the
// Alerts tables excluded), split into those a scrape must show and those whose row says
// their series appear only with their first event.
func documentedMetrics(t *testing.T) (always, lazy []string) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(env.RootDir, "docs", "metrics.md"))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	inAlerts := false
	for line := range strings.Lines(string(doc)) {
		if strings.HasPrefix(line, "## ") {
			inAlerts = strings.HasPrefix(line, "## Alerts")
		}
		if inAlerts || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		for _, m := range metricName.FindAllStringSubmatch(cells[1], -1) {
			if strings.Contains(line, "a series appears with its first") {
				lazy = append(lazy, m[1])
			} else {
				always = append(always, m[1])
			}
		}
	}
	return always, lazy
}

// scrapedMetrics returns the names of the metric families a GET of /metrics on addr shows,
// and its sample lines.
func scrapedMetrics(g Gomega, addr string) (map[string]bool, []string) {
	resp, err := http.Get("http://" + addr + "/metrics")
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	names := map[string]bool{}
	var samples []string
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 3 && fields[0] == "#" && fields[1] == "TYPE" {
			names[fields[2]] = true
		} else if !strings.HasPrefix(sc.Text(), "#") {
			samples = append(samples, sc.Text())
		}
	}
	g.Expect(sc.Err()).NotTo(HaveOccurred())
	return names, samples
}
