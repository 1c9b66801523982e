package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

func TestServerBMCErrorReason(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"access error", accessError(metalv1alpha1.ReasonSecretNotFound, "BMCSecret x does not exist"), metalv1alpha1.ReasonSecretNotFound},
		{"wrapped access error", fmt.Errorf("connect: %w", accessError(metalv1alpha1.ReasonBMCNotReady, "BMC b is Pending")), metalv1alpha1.ReasonBMCNotReady},
		{"system not found", fmt.Errorf("no system: %w", errSystemNotFound), metalv1alpha1.ReasonSystemNotFound},
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
			NewWithT(t).Expect(BMCErrorReason(tc.err)).To(Equal(tc.want))
		})
	}
}

// TestServerBMCOverTLSWithSiteCA: a BMC whose certificate a site CA signed is reached over
// https when the connector trusts that CA (--bmc-ca-file), and refused as TLSError otherwise.
func TestServerBMCOverTLSWithSiteCA(t *testing.T) {
	g := NewWithT(t)
	em := newEmulator(t, emulator.Options{TLS: true})
	secret := newBMCSecret(t, "admin", "secret-password")
	access := emulatorAccess(t, em, secret.Name)
	access.Protocol.Name = metalv1alpha1.ProtocolRedfish
	access.Protocol.Scheme = "" // Redfish defaults to https
	server := &metalv1alpha1.Server{Spec: metalv1alpha1.ServerSpec{SystemUUID: em.Systems()[0].UUID, BMC: access}}

	untrusting := &RedfishConnector{Reader: env.Client, Timeout: 2 * time.Second}
	cl, err := untrusting.Connect(t.Context(), server)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = cl.SystemInfo(t.Context(), em.Systems()[0].URI)
	g.Expect(err).To(MatchError(bmc.ErrTLS))
	g.Expect(BMCErrorReason(err)).To(Equal(metalv1alpha1.ReasonBMCTLSError))

	trusting := &RedfishConnector{Reader: env.Client, Timeout: 2 * time.Second, CACertPEM: em.CertificatePEM()}
	cl, err = trusting.Connect(t.Context(), server)
	g.Expect(err).NotTo(HaveOccurred())
	info, err := cl.SystemInfo(t.Context(), em.Systems()[0].URI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.UUID).To(Equal(em.Systems()[0].UUID))
}
