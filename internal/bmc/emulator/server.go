package emulator

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// shutdownTimeout bounds how long Serve waits for running requests when its context ends.
const shutdownTimeout = 5 * time.Second

// Start builds an Emulator and serves it on a free port of 127.0.0.1 until Close: over HTTPS
// with its self-signed certificate if opts.TLS is set, else over plain HTTP.
func Start(opts Options) (*Emulator, error) {
	e := New(opts)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emulator: listen: %w", err)
	}
	l, err := e.listener(tcp)
	if err != nil {
		_ = tcp.Close()
		return nil, err
	}
	srv := e.newServer()
	e.srvMu.Lock()
	e.srv = srv
	e.url = e.scheme() + "://" + l.Addr().String()
	e.serveDone = make(chan struct{})
	e.srvMu.Unlock()
	go func() {
		defer close(e.serveDone)
		_ = srv.Serve(l)
	}()
	return e, nil
}

func (e *Emulator) newServer() *http.Server {
	srv := &http.Server{
		Handler:           e.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	if e.opts.TLS {
		srv.ErrorLog = log.New(handshakeErrorFilter{}, "", log.LstdFlags)
	}
	return srv
}

// URL returns the base URL of an emulator started with Start ("" otherwise): https://... when
// it serves TLS.
func (e *Emulator) URL() string {
	e.srvMu.Lock()
	defer e.srvMu.Unlock()
	return e.url
}

// HostPort returns the host and port the emulator serves on, as a BMC object or a Server's
// inline BMC access names them.
func (e *Emulator) HostPort() (string, int32, error) {
	u, err := url.Parse(e.URL())
	if err != nil {
		return "", 0, err
	}
	host, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", 0, fmt.Errorf("emulator URL %q: %w", e.URL(), err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("emulator URL %q: %w", e.URL(), err)
	}
	return host, int32(port), nil
}

// Close stops the server started by Start, closing its connections, releases requests
// waiting on injected latency and stops event delivery. It is safe to call more than once.
func (e *Emulator) Close() {
	e.closeOnce.Do(func() { close(e.done) })
	e.stopEvents()
	e.srvMu.Lock()
	srv, serveDone := e.srv, e.serveDone
	e.srv = nil
	e.srvMu.Unlock()
	if srv != nil {
		_ = srv.Close()
		<-serveDone
	}
}

// Serve serves the emulator on l until ctx ends, then shuts down gracefully (running
// requests get a few seconds to finish). It returns nil after a clean shutdown. With
// Options.TLS it speaks HTTPS on l.
func (e *Emulator) Serve(ctx context.Context, l net.Listener) error {
	served, err := e.listener(l)
	if err != nil {
		_ = l.Close()
		return err
	}
	srv := e.newServer()
	errCh := make(chan error, 1)
	go func() { errCh <- srv.Serve(served) }()
	select {
	case err := <-errCh:
		return fmt.Errorf("emulator: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if err != nil {
		_ = srv.Close()
	}
	if serr := <-errCh; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("emulator: serve: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("emulator: shutdown: %w", err)
	}
	return nil
}

// ListenAndServe listens on addr and serves until ctx ends (see Serve).
func (e *Emulator) ListenAndServe(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: listen on %s: %w", addr, err)
	}
	return e.Serve(ctx, l)
}
