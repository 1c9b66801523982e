package bmc_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestReason(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"unauthorized", fmt.Errorf("redfish: GET /x: %w (401)", bmc.ErrUnauthorized), bmc.ReasonUnauthorized},
		{"unavailable", fmt.Errorf("op: %w", bmc.ErrUnavailable), bmc.ReasonUnreachable},
		{"not found", fmt.Errorf("op: %w", bmc.ErrNotFound), bmc.ReasonNotFound},
		{"not supported", fmt.Errorf("op: %w", bmc.ErrNotSupported), bmc.ReasonNotSupported},
		{"conflict", fmt.Errorf("op: %w", bmc.ErrConflict), bmc.ReasonConflict},
		{"bad request", fmt.Errorf("op: %w", bmc.ErrBadRequest), bmc.ReasonBadRequest},
		{"tls sentinel", fmt.Errorf("op: %w", bmc.ErrTLS), bmc.ReasonTLSError},
		{"tls sentinel wins over unavailable", fmt.Errorf("op: %w: %w", bmc.ErrTLS, bmc.ErrUnavailable), bmc.ReasonTLSError},
		{"raw dial error", fmt.Errorf("wrapped: %w", dial), bmc.ReasonUnreachable},
		{"raw connection refused", syscall.ECONNREFUSED, bmc.ReasonUnreachable},
		{"raw dns error", &net.DNSError{Err: "no such host", Name: "bmc.invalid", IsNotFound: true}, bmc.ReasonUnreachable},
		{"raw timeout", timeoutErr{}, bmc.ReasonUnreachable},
		{"deadline exceeded", fmt.Errorf("x: %w", context.DeadlineExceeded), bmc.ReasonUnreachable},
		{"unexpected EOF", io.ErrUnexpectedEOF, bmc.ReasonUnreachable},
		{"unknown authority", x509.UnknownAuthorityError{}, bmc.ReasonTLSError},
		{"certificate verification", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, bmc.ReasonTLSError},
		{"hostname mismatch", x509.HostnameError{Host: "10.0.0.1"}, bmc.ReasonTLSError},
		{"tls alert", fmt.Errorf("remote error: %w", tls.AlertError(42)), bmc.ReasonTLSError},
		{"canceled", context.Canceled, bmc.ReasonBMCError},
		{"other", errors.New("boom"), bmc.ReasonBMCError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(bmc.Reason(tt.err)).To(Equal(tt.want))
		})
	}
}

func TestTransportKind(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"nil", nil, nil},
		{"plain", errors.New("boom"), nil},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), nil},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, bmc.ErrUnavailable},
		{"reset", syscall.ECONNRESET, bmc.ErrUnavailable},
		{"timeout", timeoutErr{}, bmc.ErrUnavailable},
		{"x509", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, bmc.ErrTLS},
		{"record header", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, bmc.ErrTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := bmc.TransportKind(tt.err)
			if tt.want == nil {
				g.Expect(got).To(BeNil())
				return
			}
			g.Expect(got).To(MatchError(tt.want))
		})
	}
}

func TestResetTypeValid(t *testing.T) {
	g := NewWithT(t)
	for _, rt := range bmc.ResetTypes {
		g.Expect(rt.Valid()).To(BeTrue(), string(rt))
	}
	g.Expect(bmc.ResetType("Explode").Valid()).To(BeFalse())
	g.Expect(bmc.ResetType("").Valid()).To(BeFalse())
}

func TestBootOverrideDisabled(t *testing.T) {
	g := NewWithT(t)
	g.Expect(bmc.BootOverride{}.Disabled()).To(BeTrue())
	g.Expect(bmc.BootOverride{Target: bmc.BootTargetNone, Once: true}.Disabled()).To(BeTrue())
	g.Expect(bmc.BootOverride{Target: bmc.BootTargetPxe}.Disabled()).To(BeFalse())
}
