package emulator_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/bmc/redfish"
)

// parseCertificate decodes the emulator's certificate PEM.
func parseCertificate(g Gomega, pemBytes []byte) *x509.Certificate {
	block, rest := pem.Decode(pemBytes)
	g.Expect(block).NotTo(BeNil(), "no PEM block")
	g.Expect(block.Type).To(Equal("CERTIFICATE"))
	g.Expect(rest).To(BeEmpty())
	cert, err := x509.ParseCertificate(block.Bytes)
	g.Expect(err).NotTo(HaveOccurred())
	return cert
}

// An emulator with TLS serves HTTPS with its own self-signed certificate: a client that does
// not trust it fails with bmc.ErrTLS before sending credentials; one that trusts it
// (CACertPEM) or skips verification talks to it as to a plain-HTTP emulator.
func TestBMCOverTLS(t *testing.T) {
	g := NewWithT(t)
	e, err := emulator.Start(emulator.Options{TLS: true, UUIDSeed: "tls"})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(e.Close)
	g.Expect(e.URL()).To(MatchRegexp(`^https://127\.0\.0\.1:\d+$`))
	cert := parseCertificate(g, e.CertificatePEM())
	g.Expect(cert.VerifyHostname("127.0.0.1")).To(Succeed())
	g.Expect(cert.VerifyHostname("localhost")).To(Succeed())
	g.Expect(cert.IsCA).To(BeTrue(), "self-signed: trusting it means adding it as a root")
	sys := e.Systems()[0]

	tests := []struct {
		name    string
		mutate  func(*redfish.Config)
		wantErr error
	}{
		{"untrusted certificate", func(*redfish.Config) {}, bmc.ErrTLS},
		{"trusted with CACertPEM", func(c *redfish.Config) { c.CACertPEM = e.CertificatePEM() }, nil},
		{"insecure skip verify", func(c *redfish.Config) { c.InsecureSkipVerify = true }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			before := e.RequestCount()
			c := newClient(t, e, tt.mutate)
			info, err := c.SystemInfo(t.Context(), sys.URI)
			if tt.wantErr != nil {
				g.Expect(err).To(MatchError(tt.wantErr))
				g.Expect(bmc.Reason(err)).To(Equal(bmc.ReasonTLSError))
				g.Expect(err.Error()).To(ContainSubstring("certificate"))
				g.Expect(err.Error()).NotTo(ContainSubstring(emulator.DefaultPassword))
				g.Expect(e.RequestCount()).To(Equal(before), "no request got through the handshake")
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(info.UUID).To(Equal(sys.UUID))
			g.Expect(c.PowerOn(t.Context(), sys.URI)).To(Succeed())
			g.Expect(c.Logout(t.Context())).To(Succeed())
		})
	}
}

// Without TLS there is no certificate and the URL is plain HTTP.
func TestBMCOverTLSOffByDefault(t *testing.T) {
	g := NewWithT(t)
	e, _ := startEmulator(t, emulator.Options{})
	g.Expect(e.URL()).To(HavePrefix("http://"))
	g.Expect(e.CertificatePEM()).To(BeNil())
}

// Serve (and so ListenAndServe) speaks TLS too, with a certificate that also names TLSHosts.
func TestBMCOverTLSServe(t *testing.T) {
	g := NewWithT(t)
	e := emulator.New(emulator.Options{TLS: true, TLSHosts: []string{"bmc-1.example", "192.0.2.10"}})
	cert := parseCertificate(g, e.CertificatePEM())
	g.Expect(cert.VerifyHostname("bmc-1.example")).To(Succeed())
	g.Expect(cert.VerifyHostname("192.0.2.10")).To(Succeed())
	g.Expect(cert.VerifyHostname("127.0.0.1")).To(Succeed())
	g.Expect(cert.VerifyHostname("bmc-2.example")).NotTo(Succeed())

	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		g.Eventually(done).WithTimeout(pollTimeout).Should(Receive(BeNil()))
	})

	c, err := redfish.New(redfish.Config{
		Endpoint: "https://" + l.Addr().String(), CACertPEM: e.CertificatePEM(),
		Username: emulator.DefaultUsername, Password: emulator.DefaultPassword,
	})
	g.Expect(err).NotTo(HaveOccurred())
	systems, err := c.Systems(t.Context())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(systems).To(Equal(e.Systems()))
}
