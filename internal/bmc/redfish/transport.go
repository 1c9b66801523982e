package redfish

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Connection limits of the shared transports. A controller talks to many BMCs (one host each)
// with a handful of concurrent requests per BMC, so the per-host limit is small and the total
// idle pool is bounded; idle connections are dropped quickly because BMCs hold few sockets.
const (
	maxIdleConns        = 1000
	maxIdleConnsPerHost = 2
	maxConnsPerHost     = 8
	idleConnTimeout     = 30 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	dialTimeout         = 10 * time.Second
)

// transportKey identifies the TLS settings a transport was built for.
type transportKey struct {
	insecureSkipVerify bool
	caHash             [sha256.Size]byte
}

var transports = struct {
	sync.Mutex
	m map[transportKey]*http.Transport
}{m: map[transportKey]*http.Transport{}}

// sharedTransport returns the transport for the given TLS settings, building it on first use.
// Clients with equal settings share one transport and therefore its connection pool.
func sharedTransport(insecureSkipVerify bool, caPEM []byte) (*http.Transport, error) {
	key := transportKey{insecureSkipVerify: insecureSkipVerify}
	if len(caPEM) > 0 {
		key.caHash = sha256.Sum256(caPEM)
	}

	transports.Lock()
	defer transports.Unlock()
	if t, ok := transports.m[key]; ok {
		return t, nil
	}

	tlsConfig := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: insecureSkipVerify, //nolint:gosec // explicit opt-in per BMC
	}
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("redfish: CACertPEM contains no valid certificate")
		}
		tlsConfig.RootCAs = pool
	}

	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		// BMC traffic stays on the management network: no proxy from the environment.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		MaxIdleConns:          maxIdleConns,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		MaxConnsPerHost:       maxConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		ExpectContinueTimeout: time.Second,
		// Many BMCs implement HTTP/2 poorly; HTTP/1.1 with keep-alive is enough.
		ForceAttemptHTTP2: false,
	}
	transports.m[key] = t
	return t, nil
}

// CloseIdleConnections closes the idle connections of every shared transport. Call it on
// shutdown, or in tests before checking for leaked goroutines.
func CloseIdleConnections() {
	transports.Lock()
	defer transports.Unlock()
	for _, t := range transports.m {
		t.CloseIdleConnections()
	}
}

// observedTransport reports every exchange of the shared transport it wraps to a
// Config.Observer: once the response body is closed, or at once when no response arrived.
type observedTransport struct {
	next    http.RoundTripper
	observe func(method string, code int, d time.Duration)
}

// RoundTrip implements http.RoundTripper.
func (t *observedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.observe(req.Method, 0, time.Since(start))
		return nil, err
	}
	method, code := req.Method, resp.StatusCode
	resp.Body = &observedBody{ReadCloser: resp.Body, done: func() { t.observe(method, code, time.Since(start)) }}
	return resp, nil
}

// observedBody calls done when it is closed the first time.
type observedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *observedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}
