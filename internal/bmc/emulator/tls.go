package emulator

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log"
	"math/big"
	"net"
	"slices"
	"time"
)

// certificateValidity is how long the self-signed certificate is valid.
const certificateValidity = 10 * 365 * 24 * time.Hour

// selfSignedCertificate builds a self-signed ECDSA certificate for localhost, the loopback
// addresses and hosts (DNS names or IP addresses). It is its own CA, so a client trusts it by
// adding its PEM to its root certificates.
func selfSignedCertificate(hosts []string) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("emulator: generating the TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("emulator: generating the certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Metalfleet"}, CommonName: "Redfish emulator"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certificateValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if h != "" && !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("emulator: creating the certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("emulator: parsing the certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// CertificatePEM returns the PEM-encoded certificate the emulator serves HTTPS with, for
// clients that trust it (redfish.Config.CACertPEM); nil unless Options.TLS is set.
func (e *Emulator) CertificatePEM() []byte {
	return bytes.Clone(e.certPEM)
}

// listener wraps l in TLS when the emulator serves HTTPS.
func (e *Emulator) listener(l net.Listener) (net.Listener, error) {
	if !e.opts.TLS {
		return l, nil
	}
	if e.tlsErr != nil {
		return nil, e.tlsErr
	}
	return tls.NewListener(l, &tls.Config{
		Certificates: []tls.Certificate{e.cert},
		MinVersion:   tls.VersionTLS12,
	}), nil
}

// scheme is the URL scheme the emulator is served with.
func (e *Emulator) scheme() string {
	if e.opts.TLS {
		return "https"
	}
	return "http"
}

// handshakeErrorFilter drops the server's "TLS handshake error" log lines – a client that
// does not trust the certificate is what a test of certificate handling expects – and passes
// every other line on to the standard logger's output.
type handshakeErrorFilter struct{}

func (handshakeErrorFilter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("TLS handshake error")) {
		return len(p), nil
	}
	return log.Writer().Write(p)
}
