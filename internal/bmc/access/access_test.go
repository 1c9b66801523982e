package access

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	. "github.com/onsi/gomega"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/redfish"
)

// TestFailure: the one mapping from errors to reasons. Only the bmc package's sentinels and
// access errors count: a failed Kubernetes API call is never taken for the BMC.
func TestFailure(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"access error", NewError(metalv1alpha1.ReasonSecretNotFound, "BMCSecret x does not exist"), metalv1alpha1.ReasonSecretNotFound},
		{"wrapped access error", fmt.Errorf("connect: %w", NewError(metalv1alpha1.ReasonBMCNotReady, "BMC b is Pending")), metalv1alpha1.ReasonBMCNotReady},
		{"system not found", fmt.Errorf("no system: %w", ErrSystemNotFound), metalv1alpha1.ReasonSystemNotFound},
		{"unauthorized", fmt.Errorf("GET: %w", bmc.ErrUnauthorized), metalv1alpha1.ReasonBMCUnauthorized},
		{"unavailable", fmt.Errorf("GET: %w", bmc.ErrUnavailable), metalv1alpha1.ReasonBMCUnreachable},
		{"BMC timeout", fmt.Errorf("GET: %w: %w", bmc.ErrUnavailable, context.DeadlineExceeded), metalv1alpha1.ReasonBMCUnreachable},
		{"API server unreachable is not the BMC", fmt.Errorf("patching the server: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), ""},
		{"raw deadline is not the BMC", fmt.Errorf("reading claim: %w", context.DeadlineExceeded), ""},
		{"tls", fmt.Errorf("GET: %w", bmc.ErrTLS), metalv1alpha1.ReasonBMCTLSError},
		{"system resource gone", fmt.Errorf("GET: %w", bmc.ErrNotFound), metalv1alpha1.ReasonSystemNotFound},
		{"conflict is not unusable", fmt.Errorf("POST: %w", bmc.ErrConflict), ""},
		{"not supported is not unusable", fmt.Errorf("POST: %w", bmc.ErrNotSupported), ""},
		{"cancelled is not unusable", context.Canceled, ""},
		{"other", errors.New("decode failed"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(Reason(tc.err)).To(Equal(tc.want))
		})
	}
}

func TestFailureAnswered(t *testing.T) {
	g := NewWithT(t)
	for err, want := range map[error]bool{
		bmc.ErrUnauthorized: true, bmc.ErrTLS: true, bmc.ErrNotFound: true,
		bmc.ErrUnavailable: false, NewError(metalv1alpha1.ReasonSecretNotFound, "x"): false,
	} {
		_, answered := Failure(err)
		g.Expect(answered).To(Equal(want), "%v", err)
	}
}

// StatusCode tells a BMC that answered (with its HTTP status) from one that did not.
func TestStatusCode(t *testing.T) {
	g := NewWithT(t)
	answered := fmt.Errorf("reading systems: %w", &redfish.HTTPError{Method: "GET", Path: "/redfish/v1/Systems", StatusCode: 503})
	g.Expect(StatusCode(answered)).To(Equal(503))
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	g.Expect(StatusCode(refused)).To(BeZero())
	g.Expect(StatusCode(nil)).To(BeZero())
}
