package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

func TestWriteInfo(t *testing.T) {
	g := NewWithT(t)
	var buf bytes.Buffer
	err := writeInfo(&buf, "http://127.0.0.1:8000", "admin", []bmc.System{
		{UUID: "0c6b3f5e-8f43-5d9e-9a4b-2d7f1c3e9a01", URI: "/redfish/v1/Systems/1"},
	}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(buf.String()).To(HaveSuffix("}\n"))
	g.Expect(strings.Count(buf.String(), "\n")).To(Equal(1), "one line")
	g.Expect(buf.String()).To(MatchJSON(`{
		"url": "http://127.0.0.1:8000",
		"username": "admin",
		"systems": [{"uuid": "0c6b3f5e-8f43-5d9e-9a4b-2d7f1c3e9a01", "uri": "/redfish/v1/Systems/1"}]
	}`))

	buf.Reset()
	g.Expect(writeInfo(&buf, "http://x", "u", nil, nil)).To(Succeed())
	g.Expect(buf.String()).To(MatchJSON(`{"url":"http://x","username":"u","systems":[]}`))
}

// serve runs the command with args until stop, which expects a clean shutdown; stdout is what
// the command writes.
func serve(t *testing.T, args ...string) (stdout io.Reader, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, w, io.Discard)
		_ = w.Close()
	}()
	return r, func() {
		t.Helper()
		cancel()
		NewWithT(t).Eventually(done).WithTimeout(5 * time.Second).Should(Receive(BeNil()))
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	g := NewWithT(t)
	stdout, stop := serve(t,
		"--listen", "127.0.0.1:0", "--systems", "3", "--uuid-seed", "cmd-test",
		"--username", "ops", "--password", "hunter2-secret", "--power-delay", "0s")

	var doc struct {
		URL      string `json:"url"`
		Username string `json:"username"`
		Systems  []struct {
			UUID string `json:"uuid"`
			URI  string `json:"uri"`
		} `json:"systems"`
	}
	var raw json.RawMessage
	g.Expect(json.NewDecoder(stdout).Decode(&raw)).To(Succeed())
	g.Expect(string(raw)).NotTo(ContainSubstring("hunter2-secret"))
	g.Expect(json.Unmarshal(raw, &doc)).To(Succeed())
	g.Expect(doc.URL).To(MatchRegexp(`^http://127\.0\.0\.1:\d+$`))
	g.Expect(doc.Username).To(Equal("ops"))
	g.Expect(doc.Systems).To(HaveLen(3))
	g.Expect(doc.Systems[2].URI).To(Equal("/redfish/v1/Systems/3"))

	// The advertised system is served with the configured credentials.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, doc.URL+doc.Systems[0].URI, nil)
	g.Expect(err).NotTo(HaveOccurred())
	req.SetBasicAuth("ops", "hunter2-secret")
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	var sys struct{ UUID string }
	g.Expect(json.NewDecoder(resp.Body).Decode(&sys)).To(Succeed())
	g.Expect(resp.Body.Close()).To(Succeed())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(sys.UUID).To(Equal(doc.Systems[0].UUID))
	http.DefaultClient.CloseIdleConnections()
	stop()
}

// With --tls the endpoint is HTTPS and the startup document carries the certificate to trust.
func TestRunServesTLS(t *testing.T) {
	g := NewWithT(t)
	stdout, stop := serve(t, "--listen", "127.0.0.1:0", "--tls", "--power-delay", "0s")

	var doc struct {
		URL            string `json:"url"`
		CertificatePEM string `json:"certificatePEM"`
		Systems        []struct {
			URI string `json:"uri"`
		} `json:"systems"`
	}
	g.Expect(json.NewDecoder(stdout).Decode(&doc)).To(Succeed())
	g.Expect(doc.URL).To(MatchRegexp(`^https://127\.0\.0\.1:\d+$`))
	g.Expect(doc.CertificatePEM).To(HavePrefix("-----BEGIN CERTIFICATE-----"))

	pool := x509.NewCertPool()
	g.Expect(pool.AppendCertsFromPEM([]byte(doc.CertificatePEM))).To(BeTrue())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, doc.URL+doc.Systems[0].URI, nil)
	g.Expect(err).NotTo(HaveOccurred())
	req.SetBasicAuth("admin", "password")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.Body.Close()).To(Succeed())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	stop()
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--systems", "0"}, "at least 1"},
		{[]string{"--power-delay", "soon"}, "invalid value"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"--profile", "ibm"}, "unknown profile"},
		{[]string{"--listen", "256.0.0.1:0"}, "listen"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			g := NewWithT(t)
			var out bytes.Buffer
			err := run(t.Context(), tt.args, &out, io.Discard)
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			g.Expect(out.String()).To(BeEmpty())
		})
	}
}

// With --profile the emulator names its systems as the vendor does.
func TestRunServesProfile(t *testing.T) {
	g := NewWithT(t)
	stdout, stop := serve(t, "--listen", "127.0.0.1:0", "--systems", "2", "--profile", "dell")
	var doc struct {
		Systems []struct {
			URI string `json:"uri"`
		} `json:"systems"`
	}
	g.Expect(json.NewDecoder(stdout).Decode(&doc)).To(Succeed())
	g.Expect(doc.Systems).To(HaveLen(2))
	g.Expect(doc.Systems[1].URI).To(Equal("/redfish/v1/Systems/System.Embedded.2"))
	stop()
}
