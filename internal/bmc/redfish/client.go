// Package redfish implements bmc.BMC over the DMTF Redfish REST API using net/http.
//
// A Client is cheap to build (New does no I/O) and shares its connection pool with every
// other Client that uses the same TLS settings, so a controller may build one per reconcile.
package redfish

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/message"
)

// DefaultTimeout bounds a single HTTP exchange when Config.Timeout is not set.
const DefaultTimeout = 10 * time.Second

// Bounds of what one BMC may make the client hold, when Config leaves them unset.
const (
	// DefaultMaxResponseBytes bounds one response body.
	DefaultMaxResponseBytes = 4 << 20
	// DefaultMaxCollectionMembers bounds the members of one collection, all pages together.
	DefaultMaxCollectionMembers = 4096
)

// ErrResponseTooLarge: a response body or a collection exceeded the client's bounds. It
// wraps no bmc sentinel: asking again gets the same answer.
var ErrResponseTooLarge = errors.New("response too large")

// errUndecodable: a response body is not the JSON expected.
var errUndecodable = errors.New("undecodable response")

// Well-known Redfish paths.
const (
	pathServiceRoot = "/redfish/v1"
	pathSystems     = "/redfish/v1/Systems"
	pathManagers    = "/redfish/v1/Managers"
	pathSessions    = "/redfish/v1/SessionService/Sessions"
)

const (
	// maxGetAttempts bounds the attempts of an idempotent GET (first try included).
	maxGetAttempts = 3
	// retryBackoff is the wait before the second attempt; it doubles per attempt.
	retryBackoff = 100 * time.Millisecond
	// maxErrorMessage bounds the BMC-provided message quoted in an error.
	maxErrorMessage = 200
	// fetchConcurrency bounds parallel GETs of collection members against one BMC.
	fetchConcurrency = 4
	// maxPages bounds how many Members@odata.nextLink pages are followed.
	maxPages = 100
)

// Config configures a Client.
type Config struct {
	// Endpoint is the base URL of the BMC, e.g. "https://10.0.0.5" or "http://127.0.0.1:8000".
	// Only scheme and host are used; it must not contain credentials.
	Endpoint string
	Username string
	Password string
	// InsecureSkipVerify disables verification of the BMC's certificate.
	InsecureSkipVerify bool
	// CACertPEM, if set, adds these CA certificates to the trusted roots.
	CACertPEM []byte
	// Timeout bounds one HTTP exchange (default DefaultTimeout).
	Timeout time.Duration
	// MaxResponseBytes bounds one response body (default DefaultMaxResponseBytes); a
	// larger one fails with ErrResponseTooLarge after reading one byte past the bound.
	MaxResponseBytes int64
	// MaxCollectionMembers bounds the members of one collection, all pages together
	// (default DefaultMaxCollectionMembers); a larger one fails with ErrResponseTooLarge.
	MaxCollectionMembers int
	// UseSessions authenticates with a Redfish session (X-Auth-Token) instead of HTTP basic
	// auth. The session is created on the first request and deleted by Logout.
	UseSessions bool
	// Observer, if set, is called once per HTTP exchange with the BMC – every attempt of a
	// retried request, session logins and logouts included – with the request method, the
	// response status code (0 when no response arrived: connection refused, timeout, TLS
	// failure) and the time from sending the request until its response body was closed.
	// It must be safe for concurrent use and must not block.
	Observer func(method string, code int, d time.Duration)
}

// Client is a Redfish client. It implements bmc.BMC and is safe for concurrent use.
type Client struct {
	base        url.URL
	username    string
	password    string
	timeout     time.Duration
	useSessions bool
	hc          *http.Client
	maxBody     int64
	maxMembers  int

	// sessionMu serialises session creation and deletion; mu guards the fields below.
	sessionMu  sync.Mutex
	mu         sync.Mutex
	token      string
	sessionURI string
	// links are the collections of the systems read so far, by system URI (at most
	// maxMembers systems).
	links map[string]systemLinks
}

var _ bmc.BMC = (*Client)(nil)

// New builds a Client. It validates cfg but does no network I/O.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(cfg.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("redfish: invalid endpoint: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("redfish: invalid endpoint: scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("redfish: invalid endpoint: missing host")
	}
	if u.User != nil {
		return nil, errors.New("redfish: invalid endpoint: credentials belong in Username/Password, not the URL")
	}
	t, err := sharedTransport(cfg.InsecureSkipVerify, cfg.CACertPEM)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c := &Client{
		base:        url.URL{Scheme: u.Scheme, Host: u.Host},
		username:    cfg.Username,
		password:    cfg.Password,
		timeout:     timeout,
		useSessions: cfg.UseSessions,
		maxBody:     cmp.Or(max(cfg.MaxResponseBytes, 0), DefaultMaxResponseBytes),
		maxMembers:  cmp.Or(max(cfg.MaxCollectionMembers, 0), DefaultMaxCollectionMembers),
	}
	var rt http.RoundTripper = t
	if cfg.Observer != nil {
		rt = &observedTransport{next: t, observe: cfg.Observer}
	}
	c.hc = &http.Client{
		Transport: rt,
		// Follow redirects only on the same host: credentials must never leave the BMC.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != c.base.Host || req.URL.Scheme != c.base.Scheme || len(via) >= 5 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return c, nil
}

// HTTPError is returned for a response with an unexpected status. It unwraps to the bmc
// sentinel matching the status, if any.
type HTTPError struct {
	Method     string
	Path       string
	StatusCode int
	// Message is the message from the Redfish error body, if any (shortened).
	Message string
	kind    error
}

func (e *HTTPError) Error() string {
	what := strings.ToLower(http.StatusText(e.StatusCode))
	if e.kind != nil {
		what = e.kind.Error()
	}
	if what == "" {
		what = "unexpected status"
	}
	s := fmt.Sprintf("redfish: %s %s: %s (%d)", e.Method, e.Path, what, e.StatusCode)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the bmc sentinel error for the status, or nil.
func (e *HTTPError) Unwrap() error { return e.kind }

// kindForStatus maps an HTTP status to a bmc sentinel error.
func kindForStatus(code int) error {
	switch code {
	case http.StatusBadRequest:
		return bmc.ErrBadRequest
	case http.StatusUnauthorized, http.StatusForbidden:
		return bmc.ErrUnauthorized
	case http.StatusNotFound:
		return bmc.ErrNotFound
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return bmc.ErrNotSupported
	case http.StatusConflict, http.StatusPreconditionFailed, http.StatusPreconditionRequired:
		return bmc.ErrConflict
	}
	if code >= 500 {
		return bmc.ErrUnavailable
	}
	return nil
}

// retryableStatus reports whether a GET answered with code may be retried.
func retryableStatus(code int) bool {
	return code >= 500 && code != http.StatusNotImplemented
}

// response is a fully read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// redactedError hides secrets in the message of the error it wraps.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact makes sure neither the password nor the session token appears in err's message.
func (c *Client) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	c.mu.Lock()
	secrets := []string{c.password, c.token}
	c.mu.Unlock()
	if c.password != "" {
		// The Authorization header value, in case a BMC quotes it back.
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(c.username+":"+c.password)))
	}
	return redactSecrets(err, msg, secrets)
}

// redactSecrets returns err with each secret in its message msg replaced by "***" (err
// itself if none is in it).
func redactSecrets(err error, msg string, secrets []string) error {
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "***")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// resolve turns a Redfish reference (a path, or an absolute URL on the BMC's own host) into a
// URL on the BMC and the path used in messages.
func (c *Client) resolve(ref string) (string, string, error) {
	if ref == "" {
		return "", "", errors.New("redfish: empty resource path")
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", "", fmt.Errorf("redfish: invalid resource path %q: %w", ref, err)
	}
	if r.Host != "" && r.Host != c.base.Host {
		return "", "", fmt.Errorf("redfish: resource %q is not on the BMC's host", r.Redacted())
	}
	u := c.base
	u.Path = r.Path
	u.RawPath = r.RawPath
	u.RawQuery = r.RawQuery
	if !strings.HasPrefix(u.Path, "/") {
		u.Path = "/" + u.Path
	}
	return u.String(), u.Path, nil
}

// authMode selects how a request authenticates.
type authMode int

const (
	authNone  authMode = iota // no credentials (session login, logout with an explicit token)
	authBasic                 // HTTP basic auth
	authToken                 // X-Auth-Token session header
)

// do performs one logical request: it authenticates, retries idempotent GETs on transport
// errors and 5xx responses with a short backoff, re-creates an expired session once, and
// maps failures to bmc sentinel errors. in, if not nil, is sent as the JSON body.
func (c *Client) do(ctx context.Context, method, ref string, in any, header http.Header) (*response, error) {
	return c.doLimit(ctx, method, ref, in, header, c.maxBody)
}

// doLimit is do with a bound of its own on the response body.
func (c *Client) doLimit(ctx context.Context, method, ref string, in any, header http.Header, limit int64) (*response, error) {
	target, path, err := c.resolve(ref)
	if err != nil {
		return nil, err
	}
	var body []byte
	if in != nil {
		if body, err = json.Marshal(in); err != nil {
			return nil, fmt.Errorf("redfish: encode %s %s: %w", method, path, err)
		}
	}
	attempts := 1
	if method == http.MethodGet {
		attempts = maxGetAttempts
	}
	reauthenticated := false
	for attempt := 1; ; attempt++ {
		auth := authBasic
		var token string
		if c.useSessions {
			// A failed login is not retried here: it is a POST.
			if token, err = c.ensureSession(ctx); err != nil {
				return nil, err
			}
			auth = authToken
		}
		resp, err := c.exchange(ctx, method, target, path, body, header, auth, token, limit)
		if err != nil {
			if attempt < attempts && retryableTransport(ctx, err) && c.backoff(ctx, attempt) == nil {
				continue
			}
			return nil, c.redact(err)
		}
		if resp.status == http.StatusUnauthorized && c.useSessions && !reauthenticated {
			// The session expired or was revoked: log in again once. The BMC did not
			// process the rejected request, so sending it again is safe for any method.
			c.dropSession(token)
			reauthenticated = true
			attempt--
			continue
		}
		if resp.status >= 400 || resp.status < 200 {
			if attempt < attempts && retryableStatus(resp.status) && c.backoff(ctx, attempt) == nil {
				continue
			}
			return resp, c.redact(statusError(method, path, resp))
		}
		return resp, nil
	}
}

// retryableTransport reports whether a transport error of a GET is worth retrying: not when
// the caller gave up, not on TLS failures, and not after a timeout (a BMC that did not answer
// within the timeout will not answer the retry either, and the caller's worker is waiting).
func retryableTransport(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, bmc.ErrTLS) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return errors.Is(err, bmc.ErrUnavailable)
}

// backoff waits before attempt+1, or returns the context's error.
func (c *Client) backoff(ctx context.Context, attempt int) error {
	d := retryBackoff << (attempt - 1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// exchange performs a single HTTP exchange bounded by the client's timeout.
func (c *Client) exchange(ctx context.Context, method, target, path string, body []byte, header http.Header, auth authMode, token string, limit int64) (*response, error) {
	reqCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(reqCtx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("redfish: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-Version", "4.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	switch auth {
	case authToken:
		req.Header.Set("X-Auth-Token", token)
	case authBasic:
		req.SetBasicAuth(c.username, c.password)
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, c.transportError(ctx, method, path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("redfish: %s %s: %w: the body exceeds %d bytes", method, path, ErrResponseTooLarge, limit)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// transportError wraps an error of http.Client.Do (or of reading the body) with the bmc
// sentinel it belongs to. The URL is dropped: the message names the method and path only.
func (c *Client) transportError(ctx context.Context, method, path string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if ctx.Err() != nil {
		// The caller's context ended: report that, classified like any deadline.
		cause := context.Cause(ctx)
		if errors.Is(cause, context.DeadlineExceeded) {
			return fmt.Errorf("redfish: %s %s: %w: %w", method, path, bmc.ErrUnavailable, cause)
		}
		return fmt.Errorf("redfish: %s %s: %w", method, path, cause)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("redfish: %s %s: %w: no response within %s: %w",
			method, path, bmc.ErrUnavailable, c.timeout, context.DeadlineExceeded)
	}
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("redfish: %s %s: %w: %w", method, path, bmc.ErrTLS, err)
	}
	kind := bmc.TransportKind(err)
	if kind == nil {
		kind = bmc.ErrUnavailable
	}
	return fmt.Errorf("redfish: %s %s: %w: %w", method, path, kind, err)
}

// statusError builds the error for an unsuccessful response.
func statusError(method, path string, resp *response) error {
	e := &HTTPError{Method: method, Path: path, StatusCode: resp.status, kind: kindForStatus(resp.status)}
	var rerr redfishError
	if json.Unmarshal(resp.body, &rerr) == nil {
		msg := rerr.Error.Message
		if len(rerr.Error.ExtendedInfo) > 0 && rerr.Error.ExtendedInfo[0].Message != "" {
			msg = rerr.Error.ExtendedInfo[0].Message
		}
		msg = strings.Join(strings.Fields(msg), " ")
		msg = message.Truncate(msg, maxErrorMessage)
		e.Message = msg
	}
	return e
}

// getJSON GETs ref into v and returns the resource's ETag (header, else @odata.etag).
func (c *Client) getJSON(ctx context.Context, ref string, v any) (string, error) {
	return c.getJSONLimit(ctx, ref, v, c.maxBody)
}

// getJSONLimit is getJSON with a bound of its own on the response body.
func (c *Client) getJSONLimit(ctx context.Context, ref string, v any, limit int64) (string, error) {
	etag, _, err := c.getJSONObjects(ctx, ref, v, limit, c.maxObjects())
	return etag, err
}

// objectsPerMember bounds the JSON objects of a response, and of all pages of one collection
// read: this many per collection member the client accepts. Decoding multiplies a body's
// size (16 bytes of {"@odata.id":""} become a member of hundreds), so the bound on bytes
// alone does not bound the memory a BMC can make the client hold.
const objectsPerMember = 8

// maxObjects is the most JSON objects one response (or one collection read) may hold.
func (c *Client) maxObjects() int { return objectsPerMember * c.maxMembers }

// getJSONObjects is getJSONLimit that refuses, before decoding it, a response with more than
// maxObjects JSON objects, and returns how many it had.
func (c *Client) getJSONObjects(ctx context.Context, ref string, v any, limit int64, maxObjects int) (string, int, error) {
	resp, err := c.doLimit(ctx, http.MethodGet, ref, nil, nil, limit)
	if err != nil {
		return "", 0, err
	}
	objects := jsonObjects(resp.body)
	if objects > maxObjects {
		return "", objects, fmt.Errorf("redfish: GET %s: %w: more than %d JSON objects", c.errPath(ref), ErrResponseTooLarge, maxObjects)
	}
	if err := json.Unmarshal(resp.body, v); err != nil {
		return "", objects, fmt.Errorf("redfish: decode GET %s: %w", c.errPath(ref), err)
	}
	etag := resp.header.Get("ETag")
	if etag == "" {
		var meta struct {
			ETag string `json:"@odata.etag"`
		}
		_ = json.Unmarshal(resp.body, &meta)
		etag = meta.ETag
	}
	return etag, objects, nil
}

// maxPathInError bounds a BMC-chosen path quoted in an error (and so in the manager's log).
const maxPathInError = 200

// errPath is the path of ref (without a query) as an error quotes it: bounded, since a BMC
// chooses it. Only errors need it: a successful request does not resolve ref twice.
func (c *Client) errPath(ref string) string {
	_, path, err := c.resolve(ref)
	if err != nil {
		path = pathOf(ref)
	}
	return message.Truncate(path, maxPathInError)
}

// jsonObjects counts the objects of a JSON text: the '{' outside strings.
func jsonObjects(b []byte) int {
	n, inString, escaped := 0, false, false
	for _, ch := range b {
		switch {
		case escaped:
			escaped = false
		case inString && ch == '\\':
			escaped = true
		case ch == '"':
			inString = !inString
		case !inString && ch == '{':
			n++
		}
	}
	return n
}
