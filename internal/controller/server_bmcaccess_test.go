package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
)

// TestServerBMCOverTLSWithSiteCA: a BMC whose certificate a site CA signed is reached over
// https when the connector trusts that CA (--bmc-ca-file), and refused as TLSError otherwise.
func TestServerBMCOverTLSWithSiteCA(t *testing.T) {
	g := NewWithT(t)
	em := newEmulator(t, emulator.Options{TLS: true})
	secret := newBMCSecret(t, "admin", "secret-password")
	inline := emulatorAccess(t, em, secret.Name)
	inline.Protocol.Name = metalv1alpha1.ProtocolRedfish
	inline.Protocol.Scheme = "" // Redfish defaults to https
	server := &metalv1alpha1.Server{Spec: metalv1alpha1.ServerSpec{SystemUUID: em.Systems()[0].UUID, BMC: inline}}

	untrusting := &access.RedfishConnector{Reader: env.Client, Timeout: 2 * time.Second}
	cl, err := untrusting.Connect(t.Context(), server)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = cl.SystemInfo(t.Context(), em.Systems()[0].URI)
	g.Expect(err).To(MatchError(bmc.ErrTLS))
	g.Expect(access.Reason(err)).To(Equal(metalv1alpha1.ReasonBMCTLSError))

	trusting := &access.RedfishConnector{Reader: env.Client, Timeout: 2 * time.Second, CACertPEM: em.CertificatePEM()}
	cl, err = trusting.Connect(t.Context(), server)
	g.Expect(err).NotTo(HaveOccurred())
	info, err := cl.SystemInfo(t.Context(), em.Systems()[0].URI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.UUID).To(Equal(em.Systems()[0].UUID))
}
