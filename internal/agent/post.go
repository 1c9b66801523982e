package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// Bounds of Post.
const (
	// PostTimeout bounds one Post, retries included.
	PostTimeout = 2 * time.Minute
	// PostAttempts bounds the attempts of one Post.
	PostAttempts = 6
	// maxErrorBody bounds what an error quotes of a refusal's body.
	maxErrorBody = 256
	// maxDrain bounds what is read of a response to reuse its connection.
	maxDrain = 64 << 10
)

// StatusError is a Post the server answered with a status other than 2xx.
type StatusError struct {
	Path string
	Code int
	// Body is the start of the response body, made printable, at most 256 bytes.
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("POST %s: status %d: %s", e.Path, e.Code, e.Body)
}

// retryable reports whether a later attempt may succeed: the server failed (5xx) or asked us
// to slow down (429). Other 4xx answers are final.
func (e *StatusError) retryable() bool {
	return e.Code >= 500 || e.Code == http.StatusTooManyRequests
}

// Post sends body as JSON to serverURL+path with "Authorization: Bearer <credential>". It
// retries connection errors, 5xx and 429 with a doubling backoff, at most PostAttempts times
// and within PostTimeout; any other status is returned at once as a *StatusError.
func Post(ctx context.Context, client *http.Client, serverURL, credential, path string, body any) error {
	return post(ctx, client, serverURL, credential, path, body, time.Second)
}

func post(ctx context.Context, client *http.Client, serverURL, credential, path string, body any, backoff time.Duration) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if len(payload) > report.MaxBytes {
		return fmt.Errorf("POST %s: a body of %d bytes, the server takes at most %d", path, len(payload), report.MaxBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, PostTimeout)
	defer cancel()
	url := strings.TrimRight(serverURL, "/") + path
	for attempt := 1; ; attempt++ {
		err = postOnce(ctx, client, url, credential, path, payload)
		var status *StatusError
		if err == nil || errors.As(err, &status) && !status.retryable() || attempt == PostAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func postOnce(ctx context.Context, client *http.Client, url, credential, path string, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+credential)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
		_ = resp.Body.Close()
	}()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	start, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &StatusError{Path: path, Code: resp.StatusCode, Body: clean(string(start))}
}

// NewClient is the HTTP client of the agent. With a source address it binds its connections
// to it, so that a machine simulated on a loopback address is seen from that address.
func NewClient(source string) (*http.Client, error) {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if source != "" {
		ip := net.ParseIP(source)
		if ip == nil {
			return nil, fmt.Errorf("source address %q is not an IP address", source)
		}
		dialer.LocalAddr = &net.TCPAddr{IP: ip}
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConns:          4,
			IdleConnTimeout:       30 * time.Second,
			Proxy:                 http.ProxyFromEnvironment,
		},
		// A redirect would take the credential elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}
