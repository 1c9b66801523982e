package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
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

// A server reached through a BMC object in Error carries the BMC's cause (its Ready reason
// and message, with the HTTP status), so that a claim of the server can say it.
func TestServerCarriesCauseOfBMCObject(t *testing.T) {
	g := NewWithT(t)
	secret := newBMCSecret(t, "admin", "secret-password")
	obj := &metalv1alpha1.BMC{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bmc-"},
		Spec: metalv1alpha1.BMCSpec{
			Access:       &metalv1alpha1.InlineEndpoint{IP: "127.0.0.1"},
			Protocol:     metalv1alpha1.Protocol{Name: metalv1alpha1.ProtocolRedfish, Port: 443},
			BMCSecretRef: metalv1alpha1.LocalObjectReference{Name: secret.Name},
		},
	}
	create(t, obj)
	const answer = "redfish: GET /redfish/v1/Systems: unavailable (503): The service is temporarily unavailable."
	base := obj.DeepCopy()
	obj.Status.State = metalv1alpha1.BMCStateError
	meta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{Type: metalv1alpha1.BMCReady, Status: metav1.ConditionFalse,
		Reason: metalv1alpha1.ReasonBMCUnreachable, Message: answer})
	g.Expect(env.Client.Status().Patch(t.Context(), obj, client.MergeFrom(base))).To(Succeed())

	server := &metalv1alpha1.Server{Spec: metalv1alpha1.ServerSpec{BMCRef: &metalv1alpha1.LocalObjectReference{Name: obj.Name}}}
	_, err := (&access.RedfishConnector{Reader: env.Client}).Connect(t.Context(), server)
	g.Expect(access.Reason(err)).To(Equal(metalv1alpha1.ReasonBMCNotReady))
	g.Expect(access.Message(err)).To(Equal("BMC " + obj.Name + " is Error (Unreachable): " + answer))

	server.Name = "s"
	server.Status.State = metalv1alpha1.ServerStateError
	server.Status.Conditions = []metav1.Condition{{Type: metalv1alpha1.ServerBMCReachable, Status: metav1.ConditionFalse,
		Reason: metalv1alpha1.ReasonBMCNotReady, Message: access.Message(err)}}
	g.Expect(binding.ServerCause(server)).To(HavePrefix(": BMC BMCNotReady (HTTP 503) since "))
}
