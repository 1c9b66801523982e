package bmc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"syscall"
)

// Sentinel errors. Implementations wrap them, so test with errors.Is.
var (
	// ErrUnauthorized: the BMC rejected the credentials or the session (HTTP 401/403).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnavailable: the BMC could not be reached or is temporarily unable to answer
	// (connection refused, DNS failure, timeout, HTTP 5xx).
	ErrUnavailable = errors.New("unavailable")
	// ErrNotFound: the resource does not exist (HTTP 404), e.g. a removed system.
	ErrNotFound = errors.New("not found")
	// ErrNotSupported: the BMC does not implement the operation (HTTP 405/501, or a reset
	// type outside the allowable values it advertises).
	ErrNotSupported = errors.New("not supported")
	// ErrConflict: the request conflicts with the current state (HTTP 409, or 412/428 after
	// a retry with a fresh ETag), e.g. a reset while a power transition is running.
	ErrConflict = errors.New("conflict")
	// ErrTLS: the TLS handshake failed, typically an untrusted or mismatching certificate.
	ErrTLS = errors.New("tls error")
	// ErrBadRequest: the BMC refused the content of a request (HTTP 400), e.g. a value it
	// does not accept. Sending the same request again fails the same way.
	ErrBadRequest = errors.New("bad request")
)

// Condition reasons returned by Reason.
const (
	ReasonUnauthorized = "Unauthorized"
	ReasonUnreachable  = "Unreachable"
	ReasonNotFound     = "NotFound"
	ReasonNotSupported = "NotSupported"
	ReasonConflict     = "Conflict"
	ReasonTLSError     = "TLSError"
	ReasonBadRequest   = "BadRequest"
	ReasonBMCError     = "BMCError"
)

// Reason maps err to a stable UpperCamel reason for a condition. It recognises the sentinel
// errors and, for errors that did not come through an implementation, raw network and TLS
// errors. It returns "" for a nil error and ReasonBMCError for anything else.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrUnauthorized):
		return ReasonUnauthorized
	case errors.Is(err, ErrTLS):
		return ReasonTLSError
	case errors.Is(err, ErrNotFound):
		return ReasonNotFound
	case errors.Is(err, ErrNotSupported):
		return ReasonNotSupported
	case errors.Is(err, ErrConflict):
		return ReasonConflict
	case errors.Is(err, ErrBadRequest):
		return ReasonBadRequest
	case errors.Is(err, ErrUnavailable):
		return ReasonUnreachable
	}
	switch TransportKind(err) {
	case ErrTLS:
		return ReasonTLSError
	case ErrUnavailable:
		return ReasonUnreachable
	}
	return ReasonBMCError
}

// TransportKind classifies an error returned by a network client (for example from
// http.Client.Do): it returns ErrTLS for certificate and handshake failures, ErrUnavailable
// for dial failures, resets, DNS errors and timeouts (including context.DeadlineExceeded),
// and nil for anything else, including context.Canceled and nil.
func TransportKind(err error) error {
	if err == nil {
		return nil
	}
	if isTLSError(err) {
		return ErrTLS
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrUnavailable
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return ErrUnavailable
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var addrErr *net.AddrError
	switch {
	case errors.As(err, &opErr), errors.As(err, &dnsErr), errors.As(err, &addrErr):
		return ErrUnavailable
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed):
		return ErrUnavailable
	}
	return nil
}

func isTLSError(err error) bool {
	var (
		rootsErr     x509.SystemRootsError
		recordHdrErr tls.RecordHeaderError
		alertErr     tls.AlertError
	)
	return UntrustedCertificate(err) ||
		errors.As(err, &rootsErr) || errors.As(err, &recordHdrErr) || errors.As(err, &alertErr)
}

// UntrustedCertificate reports whether err is a failed verification of the BMC's
// certificate (unknown authority, wrong host name, invalid certificate): a TLS error that
// trusting the right CA, or a certificate for the right name, cures.
func UntrustedCertificate(err error) bool {
	var (
		verifyErr   *tls.CertificateVerificationError
		unknownAuth x509.UnknownAuthorityError
		hostnameErr x509.HostnameError
		invalidErr  x509.CertificateInvalidError
	)
	return errors.As(err, &verifyErr) || errors.As(err, &unknownAuth) ||
		errors.As(err, &hostnameErr) || errors.As(err, &invalidErr)
}
