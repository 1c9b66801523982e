package boot

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/agent/report"
	bootmetrics "github.com/metalfleet/metal-operator/internal/boot/metrics"
)

// +kubebuilder:rbac:groups="",namespace=system,resources=configmaps,verbs=create

// Where an accepted agent report is kept: a ConfigMap in the agent namespace, named after
// the boot configuration, labelled with the server, annotated with the configuration's uid
// (which boot it belongs to) and the report's digest.
const (
	// ReportKey holds the report's JSON, as the agent sent it.
	ReportKey = "report.json"
	// ReportBootConfigurationUIDAnnotation is the uid of the boot configuration whose boot sent it.
	ReportBootConfigurationUIDAnnotation = "fleet.metalfleet.dev/boot-configuration-uid"
	// ReportDigestAnnotation is "sha256:<hex>" of ReportKey's bytes.
	ReportDigestAnnotation = "fleet.metalfleet.dev/report-digest"
	// ReportModeAnnotation is the agent mode of the report (discover, wipe).
	ReportModeAnnotation = "fleet.metalfleet.dev/report-mode"
)

// ReportName is the name of the ConfigMap holding the report of a boot configuration's boot.
func ReportName(bootConfiguration string) string { return bootConfiguration + "-report" }

// Results of metal_boot_agent_reports_total.
const (
	reportAccepted      = "accepted"
	reportUnauthorized  = "unauthorized"
	reportNotAgentBoot  = "not_agent_boot"
	reportInvalid       = "invalid"
	reportTooLarge      = "too_large"
	reportAnotherServer = "another_server"
	reportDuplicate     = "duplicate"
	reportError         = "error"
)

// errNotAgentBoot: the credential is valid but its boot is not an agent boot of this mode.
var errNotAgentBoot = errors.New("not an agent boot")

// serveAgentReport answers POST /agent/v1/discovery and /agent/v1/wipe: the in-band agent's
// report of an agent boot. The request must carry the boot's credential from the address it
// is pinned to (as every request of a boot), the boot must be one the operator started for
// the agent in this mode (a configuration in the agent namespace, marked Internal, with the
// mode annotation), and the report must be about the server the configuration boots: its
// systemUUID is the server's. An accepted report is stored (see ReportName) and ends the
// boot: the credential is revoked, so a second report is refused. Nothing the agent sent is
// echoed to anyone but the agent itself.
func (s *Server) serveAgentReport(mode string) http.HandlerFunc {
	kind := "discovery"
	if mode == metalv1alpha1.AgentModeWipe {
		kind = "wipe"
	}
	count := func(result string) { bootmetrics.AgentReports.WithLabelValues(kind, result).Inc() }
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.AgentNamespace == "" {
			http.NotFound(w, r)
			return
		}
		credential := bearerCredential(r)
		if credential == "" {
			count(reportUnauthorized)
			http.Error(w, "a boot credential is required", http.StatusUnauthorized)
			return
		}
		// Who is asking first: nobody without this boot's credential makes the boot server
		// read a body.
		sbc, err := s.authorize(r, credential)
		if err != nil {
			count(reportUnauthorized)
			http.Error(w, http.StatusText(refusalCode(err)), refusalCode(err))
			return
		}
		if !isAgentBoot(sbc, s.opts.AgentNamespace, mode) {
			count(reportNotAgentBoot)
			http.Error(w, errNotAgentBoot.Error(), http.StatusForbidden)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, report.MaxBytes+1))
		if err != nil {
			count(reportInvalid)
			http.Error(w, "reading the report failed", http.StatusBadRequest)
			return
		}
		if len(body) > report.MaxBytes {
			count(reportTooLarge)
			http.Error(w, fmt.Sprintf("a report is at most %d bytes", report.MaxBytes), http.StatusRequestEntityTooLarge)
			return
		}
		uuid, err := decodeReport(mode, body)
		if err != nil {
			count(reportInvalid)
			// The agent's own report, described to the agent only.
			http.Error(w, "invalid report: "+err.Error(), http.StatusBadRequest)
			return
		}
		server := &metalv1alpha1.Server{}
		if err := s.reader.Get(r.Context(), types.NamespacedName{Name: sbc.Spec.ServerRef.Name}, server); err != nil {
			count(reportError)
			if apierrors.IsNotFound(err) {
				http.Error(w, "not found", http.StatusNotFound)
				return
			}
			s.log.Error(err, "Reading the server of an agent report", "ServerBootConfiguration", client.ObjectKeyFromObject(sbc))
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		if !strings.EqualFold(uuid, server.Spec.SystemUUID) {
			count(reportAnotherServer)
			s.log.Info("Refused an agent report about another system", "ServerBootConfiguration", client.ObjectKeyFromObject(sbc),
				"Server", server.Name, "source", clientIP(r))
			http.Error(w, "the report is not about the server this boot is for", http.StatusForbidden)
			return
		}
		if err := s.storeReport(r, sbc, server, mode, body); err != nil {
			if apierrors.IsAlreadyExists(err) || errors.Is(err, errDenied) {
				count(reportDuplicate)
				http.Error(w, "this boot already reported", http.StatusConflict)
				return
			}
			count(reportError)
			s.log.Error(err, "Storing an agent report", "ServerBootConfiguration", client.ObjectKeyFromObject(sbc))
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		count(reportAccepted)
		s.log.Info("Accepted an agent report", "ServerBootConfiguration", client.ObjectKeyFromObject(sbc), "Server", server.Name, "mode", mode)
		w.WriteHeader(http.StatusCreated)
	}
}

// isAgentBoot tells whether a configuration is an agent boot of mode that the operator made:
// only the operator writes to the agent namespace.
func isAgentBoot(sbc *metalv1alpha1.ServerBootConfiguration, namespace, mode string) bool {
	return sbc.Namespace == namespace &&
		sbc.Annotations[metalv1alpha1.BootConfigurationTypeAnnotation] == metalv1alpha1.BootConfigurationTypeInternal &&
		sbc.Annotations[metalv1alpha1.AgentModeAnnotation] == mode
}

// decodeReport decodes and validates a report of mode and returns the system UUID it is about.
func decodeReport(mode string, body []byte) (string, error) {
	if mode == metalv1alpha1.AgentModeWipe {
		var w report.Wipe
		if err := report.DecodeStrict(body, &w); err != nil {
			return "", fmt.Errorf("not a JSON wipe report: %w", err)
		}
		return w.SystemUUID, w.Validate()
	}
	var d report.Discovery
	if err := report.DecodeStrict(body, &d); err != nil {
		return "", fmt.Errorf("not a JSON discovery report: %w", err)
	}
	return d.SystemUUID, d.Validate()
}

// storeReport keeps an accepted report and ends the boot. The ConfigMap is created first:
// a report that is stored but whose credential could not be revoked is still the only one
// (a second one finds the ConfigMap); the boot's credential expires anyway.
func (s *Server) storeReport(r *http.Request, sbc *metalv1alpha1.ServerBootConfiguration, server *metalv1alpha1.Server, mode string, body []byte) error {
	ctx := r.Context()
	sum := sha256.Sum256(body)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: sbc.Namespace,
			Name:      ReportName(sbc.Name),
			Labels:    map[string]string{metalv1alpha1.AgentReportServerLabel: server.Name},
			Annotations: map[string]string{
				ReportBootConfigurationUIDAnnotation: string(sbc.UID),
				ReportDigestAnnotation:               "sha256:" + hex.EncodeToString(sum[:]),
				ReportModeAnnotation:                 mode,
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: metalv1alpha1.GroupVersion.String(), Kind: "ServerBootConfiguration",
				Name: sbc.Name, UID: sbc.UID,
			}},
		},
		Data: map[string]string{ReportKey: string(body)},
	}
	if err := s.client.Create(ctx, cm); err != nil {
		return fmt.Errorf("creating ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return s.revokeCredential(ctx, client.ObjectKeyFromObject(sbc), sbc.Status.BootCredential.Hash, metav1.Condition{
		Type:    metalv1alpha1.BootConfigurationBootStateReceived,
		Status:  metav1.ConditionTrue,
		Reason:  metalv1alpha1.ReasonBootStateReceived,
		Message: fmt.Sprintf("The agent on server %s sent its %s report", server.Name, mode),
	})
}

// agentKernelArgs are the kernel parameters of an agent boot: where the boot server is, the
// mode and, for a wipe, the policy (see internal/agent/report). Other boots get none.
func (s *Server) agentKernelArgs(sbc *metalv1alpha1.ServerBootConfiguration) []string {
	mode := sbc.Annotations[metalv1alpha1.AgentModeAnnotation]
	if mode == "" || s.opts.AgentNamespace == "" || !isAgentBoot(sbc, s.opts.AgentNamespace, mode) {
		return nil
	}
	args := []string{report.CmdlineServer + "=" + s.base, report.CmdlineMode + "=" + mode}
	if mode == metalv1alpha1.AgentModeWipe {
		args = append(args, report.CmdlineWipePolicy+"="+sbc.Annotations[metalv1alpha1.WipePolicyAnnotation])
	}
	return args
}
