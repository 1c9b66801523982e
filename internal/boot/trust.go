package boot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	bootmetrics "github.com/metalfleet/metal-operator/internal/boot/metrics"
)

// Why a credential is refused. Each maps to one status code (refusalCode).
var (
	// errNoWindow: no boot is expected, or its credential was already issued.
	errNoWindow = errors.New("no boot expected")
	// errDenied: a malformed, unknown, expired or revoked credential.
	errDenied = errors.New("credential denied")
	// errWrongAddress: a valid credential from another address than the pinned one.
	errWrongAddress = errors.New("credential presented from another address")
	// errFetchLimit: the ignition was already fetched as often as allowed.
	errFetchLimit = errors.New("ignition fetch limit reached")
)

// refusalCode is the status code of a refused credential; any other error is a 500.
func refusalCode(err error) int {
	switch {
	case errors.Is(err, errDenied), errors.Is(err, errNoWindow):
		return http.StatusNotFound
	case errors.Is(err, errWrongAddress):
		return http.StatusForbidden
	case errors.Is(err, errFetchLimit):
		return http.StatusGone
	}
	return http.StatusInternalServerError
}

// patchCredential reads a configuration live, lets change decide on and modify its
// credential, and writes the status under the optimistic lock, again on a conflict: of two
// requests racing for one credential or one fetch, exactly one wins. change returns an
// error to write nothing.
func (s *Server) patchCredential(ctx context.Context, key types.NamespacedName, change func(*metalv1alpha1.ServerBootConfiguration) error) (*metalv1alpha1.ServerBootConfiguration, error) {
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := s.reader.Get(ctx, key, sbc); err != nil {
			if apierrors.IsNotFound(err) {
				return errDenied
			}
			return err
		}
		before := sbc.DeepCopy()
		if err := change(sbc); err != nil {
			return err
		}
		return s.client.Status().Patch(ctx, sbc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	})
	return sbc, err
}

// issueCredential issues the credential of the boot a configuration expects to the
// requester at ip, and pins it there. It returns errNoWindow when no boot is expected or the
// credential of this boot was already issued (to anyone).
func (s *Server) issueCredential(ctx context.Context, key types.NamespacedName, ip string) (string, error) {
	var credential string
	_, err := s.patchCredential(ctx, key, func(sbc *metalv1alpha1.ServerBootConfiguration) error {
		now := time.Now()
		c := sbc.Status.BootCredential
		retry := ip != "" && credentialActive(c, now) && c.PinnedIP == ip && c.IgnitionFetches == 0
		if ip == "" || (!windowOpen(c, now, s.opts.CredentialTTL) && !retry) {
			return errNoWindow
		}
		var hash string
		var err error
		if credential, hash, err = newCredential(key); err != nil {
			return err
		}
		if retry {
			// The machine the boot is pinned to asks again before it fetched its ignition
			// (a lost answer, an iPXE retry): the credential is rotated, its expiry kept.
			c.Hash = hash
			return nil
		}
		c.Hash, c.PinnedIP, c.IgnitionFetches = hash, ip, 0
		c.IssuedAt, c.ExpiresAt = &metav1.Time{Time: now}, &metav1.Time{Time: now.Add(s.opts.CredentialTTL)}
		return nil
	})
	if errors.Is(err, errDenied) {
		err = errNoWindow
	}
	return credential, err
}

// pinHTTPBoot issues the credential of an expected boot to a UEFI HTTP boot request, or
// accepts the request if the active credential is already pinned to its address.
func (s *Server) pinHTTPBoot(r *http.Request, key types.NamespacedName) error {
	ip := clientIP(r)
	_, err := s.issueCredential(r.Context(), key, ip)
	if !errors.Is(err, errNoWindow) {
		return err
	}
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	if err := s.reader.Get(r.Context(), key, sbc); err != nil {
		return fmt.Errorf("reading boot configuration %s: %w", key, err)
	}
	if c := sbc.Status.BootCredential; credentialActive(c, time.Now()) && c.PinnedIP == ip {
		return nil
	}
	return errNoWindow
}

// authorize checks a credential presented by r: well formed, the hash of its
// configuration's live status, active, and from the pinned address. A valid credential from
// another address is reported as misuse. It returns the configuration read live.
func (s *Server) authorize(r *http.Request, credential string) (*metalv1alpha1.ServerBootConfiguration, error) {
	ctx := r.Context()
	key, secret, err := parseCredential(credential)
	if err != nil {
		return nil, errDenied
	}
	sbc := &metalv1alpha1.ServerBootConfiguration{}
	if err := s.reader.Get(ctx, key, sbc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errDenied
		}
		return nil, fmt.Errorf("reading boot configuration %s: %w", key, err)
	}
	c := sbc.Status.BootCredential
	if c == nil || !secretMatches(secret, c.Hash) || !credentialActive(c, time.Now()) {
		return nil, errDenied
	}
	if ip := clientIP(r); ip != c.PinnedIP {
		s.reportMisuse(ctx, key, metalv1alpha1.ReasonWrongSourceAddress, ip)
		return nil, errWrongAddress
	}
	return sbc, nil
}

// consumeIgnitionFetch counts one ignition fetch of an authorized credential, refusing it
// (and reporting misuse) once the limit is reached.
func (s *Server) consumeIgnitionFetch(r *http.Request, key types.NamespacedName, hash string) error {
	_, err := s.patchCredential(r.Context(), key, func(sbc *metalv1alpha1.ServerBootConfiguration) error {
		c := sbc.Status.BootCredential
		if c == nil || c.Hash != hash || !credentialActive(c, time.Now()) {
			return errDenied
		}
		if c.IgnitionFetches >= s.opts.IgnitionFetchLimit {
			return errFetchLimit
		}
		c.IgnitionFetches++
		return nil
	})
	if errors.Is(err, errFetchLimit) {
		s.reportMisuse(r.Context(), key, metalv1alpha1.ReasonIgnitionRefetched, clientIP(r))
	}
	return err
}

// revokeCredential ends the boot of an authorized credential: it sets the boot state
// condition and BootDone.
func (s *Server) revokeCredential(ctx context.Context, key types.NamespacedName, hash string, cond metav1.Condition) error {
	_, err := s.patchCredential(ctx, key, func(sbc *metalv1alpha1.ServerBootConfiguration) error {
		c := sbc.Status.BootCredential
		if c == nil || c.Hash != hash || c.BootDone {
			return errDenied
		}
		c.BootDone = true
		cond.ObservedGeneration = sbc.Generation
		meta.SetStatusCondition(&sbc.Status.Conditions, cond)
		return nil
	})
	return err
}

// reportMisuse counts a refused credential, sets BootCredentialMisused on the configuration
// and emits a Warning event naming the requester's address (never the credential). A
// failure to record is logged: the request is refused either way.
func (s *Server) reportMisuse(ctx context.Context, key types.NamespacedName, reason, ip string) {
	bootmetrics.CredentialMisuse.WithLabelValues(reason).Inc()
	// A repeat from the same address is counted, not written again: a requester cannot make
	// the boot server write status at will (decided on the cached copy).
	cached := &metalv1alpha1.ServerBootConfiguration{}
	if err := s.client.Get(ctx, key, cached); err == nil && misuseRecorded(cached, reason, ip) {
		return
	}
	msg := fmt.Sprintf("The boot credential was presented from %s after the ignition was fetched", ip)
	switch reason {
	case metalv1alpha1.ReasonWrongSourceAddress:
		msg = fmt.Sprintf("The boot credential was presented from %s while it is pinned to another address", ip)
	case metalv1alpha1.ReasonAnotherRequester:
		msg = fmt.Sprintf("A boot was requested from %s while this boot's credential was out to another address: "+
			"if %s is the server, someone else asked first; rotate what the ignition carries", ip, ip)
	}
	sbc, err := s.patchCredential(ctx, key, func(sbc *metalv1alpha1.ServerBootConfiguration) error {
		meta.SetStatusCondition(&sbc.Status.Conditions, metav1.Condition{
			Type: metalv1alpha1.BootConfigurationBootCredentialMisused, Status: metav1.ConditionTrue,
			Reason: reason, Message: msg, ObservedGeneration: sbc.Generation,
		})
		return nil
	})
	if err != nil {
		s.log.Error(err, "Recording a boot credential misuse", "ServerBootConfiguration", key)
		return
	}
	s.log.Info("Refused a misused boot credential", "ServerBootConfiguration", klog.KObj(sbc), "reason", reason, "source", ip)
	if s.opts.Recorder != nil {
		s.opts.Recorder.Eventf(sbc, nil, corev1.EventTypeWarning, metalv1alpha1.BootConfigurationBootCredentialMisused, "Boot", "%s", msg)
	}
}
