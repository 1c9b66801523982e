// Package access resolves how to reach a BMC, from a Server (spec.bmcRef or the inline
// spec.bmc) or from a BMC object: address, protocol and the credentials of its BMCSecret,
// and builds a client for it. It also says, in the API's condition reasons, why a BMC cannot
// be used: the one mapping from BMC errors to reasons that every controller shares.
package access

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/redfish"
	"github.com/metalfleet/metal-operator/internal/message"
	"github.com/metalfleet/metal-operator/internal/metrics"
)

// Connector resolves how to reach a server's BMC and returns a client for it. Connect does
// no I/O against the BMC itself; errors about the BMC's configuration (no BMC, missing
// secret, BMC object not ready) are *Error.
type Connector interface {
	Connect(ctx context.Context, server *metalv1alpha1.Server) (bmc.BMC, error)
}

// Error says why a server's BMC cannot be used before any request is sent to it.
// Reason is one of the API's Server condition reasons.
type Error struct {
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Message }

// NewError returns an *Error with the reason and a formatted message.
func NewError(reason, format string, args ...any) error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// ErrSystemNotFound: the BMC does not report a system with the server's UUID.
var ErrSystemNotFound = errors.New("system not found")

// Failure says why a BMC cannot be used, as an API condition reason, and whether the BMC
// answered at all (a BMC that refuses the credentials answered; one that cannot be reached
// did not). It is the one mapping from BMC errors to reasons: the Server and BMC controllers
// both go by it. The reason is "" for errors that say nothing about whether the BMC can be
// used: a power transition in flight, an unsupported operation, a cancelled context, and any
// error that did not come from the BMC, such as a failed Kubernetes API call. Only the bmc
// package's sentinels count, so an unreachable API server is never taken for an
// unreachable BMC.
func Failure(err error) (reason string, answered bool) {
	var ae *Error
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return "", false
	case errors.As(err, &ae):
		return ae.Reason, false
	case errors.Is(err, ErrSystemNotFound), errors.Is(err, bmc.ErrNotFound):
		// No system with the UUID, or the system resource answered 404: it is gone.
		return metalv1alpha1.ReasonSystemNotFound, true
	}
	switch {
	case errors.Is(err, bmc.ErrUnauthorized):
		return metalv1alpha1.ReasonBMCUnauthorized, true
	case errors.Is(err, bmc.ErrTLS):
		return metalv1alpha1.ReasonBMCTLSError, true
	case errors.Is(err, bmc.ErrUnavailable):
		return metalv1alpha1.ReasonBMCUnreachable, false
	}
	return "", false
}

// Reason is the reason of Failure.
func Reason(err error) string {
	reason, _ := Failure(err)
	return reason
}

// StatusCode is the HTTP status a BMC answered with, when err carries one; 0 when the BMC
// did not answer at all (connection refused, timeout, unresolvable name) or err is not the
// BMC's.
func StatusCode(err error) int {
	if he, ok := errors.AsType[*redfish.HTTPError](err); ok {
		return he.StatusCode
	}
	return 0
}

// UntrustedCertificateHint says what to do about a BMC certificate the manager does not trust.
const UntrustedCertificateHint = "The manager does not trust the BMC's certificate: give the BMC a certificate " +
	"from a CA the manager trusts, or start the manager with --bmc-insecure-skip-verify"

// bmcErrorMessage is the condition message for a failure of a BMC: the error, shortened to
// maxConditionMessage, and for a certificate the manager does not trust what to do about it.
func Message(err error) string {
	msg := message.Truncate(err.Error(), message.MaxCondition)
	if bmc.UntrustedCertificate(err) {
		msg += ". " + UntrustedCertificateHint
	}
	return msg
}

// RedfishConnector is the default Connector: it reaches the BMC through spec.bmcRef (a BMC
// object) or the inline spec.bmc, reads the credentials from the BMCSecret, and builds a
// Redfish client. Building a client is cheap (connections are pooled inside the redfish
// package), so one is built per reconcile. Every request of its clients is timed in
// metal_bmc_request_duration_seconds.
type RedfishConnector struct {
	// Reader reads BMC and BMCSecret objects, normally the manager's cached client.
	Reader client.Reader
	// Timeout bounds one HTTP request to the BMC (redfish.DefaultTimeout when zero).
	Timeout time.Duration
	// InsecureSkipVerify disables verification of the BMCs' TLS certificates.
	InsecureSkipVerify bool
	// CACertPEM, when set, is the CA bundle BMC certificates are verified against (in place
	// of the system's trust store): a site's BMCs usually carry certificates of its own CA.
	CACertPEM []byte
	// UseSessions authenticates with a Redfish session (created on the first request of a
	// reconcile, deleted by its Logout) instead of HTTP basic auth.
	UseSessions bool
	// MaxResponseBytes and MaxCollectionMembers bound what one BMC answer may cost
	// (redfish.DefaultMaxResponseBytes and redfish.DefaultMaxCollectionMembers when zero).
	MaxResponseBytes     int64
	MaxCollectionMembers int
}

var _ Connector = (*RedfishConnector)(nil)

// bmcEndpoint is where and how a BMC is reached.
type bmcEndpoint struct {
	address  string
	protocol metalv1alpha1.Protocol
	secret   string
}

// Connect returns a Redfish client for the server's BMC.
func (c *RedfishConnector) Connect(ctx context.Context, server *metalv1alpha1.Server) (bmc.BMC, error) {
	ep, err := c.endpoint(ctx, server)
	if err != nil {
		return nil, err
	}
	return c.connectEndpoint(ctx, ep)
}

// connectEndpoint reads the credentials of ep and builds a Redfish client for it.
func (c *RedfishConnector) connectEndpoint(ctx context.Context, ep bmcEndpoint) (bmc.BMC, error) {
	switch ep.protocol.Name {
	case metalv1alpha1.ProtocolRedfish, metalv1alpha1.ProtocolRedfishLocal, metalv1alpha1.ProtocolRedfishWithRegistryPatch:
	default:
		return nil, NewError(metalv1alpha1.ReasonUnsupportedProtocol,
			"BMC protocol %q is not supported; use Redfish", ep.protocol.Name)
	}
	username, password, err := c.credentials(ctx, ep.secret)
	if err != nil {
		return nil, err
	}
	scheme := ep.protocol.Scheme
	if scheme == "" {
		scheme = metalv1alpha1.HTTPSScheme
		if ep.protocol.Name == metalv1alpha1.ProtocolRedfishLocal {
			scheme = metalv1alpha1.HTTPScheme
		}
	}
	hostPort := ep.address
	if ep.protocol.Port != 0 {
		hostPort = net.JoinHostPort(ep.address, strconv.Itoa(int(ep.protocol.Port)))
	}
	cl, err := redfish.New(redfish.Config{
		Endpoint:             string(scheme) + "://" + hostPort,
		Username:             username,
		Password:             password,
		Timeout:              c.Timeout,
		InsecureSkipVerify:   c.InsecureSkipVerify,
		CACertPEM:            c.CACertPEM,
		UseSessions:          c.UseSessions,
		MaxResponseBytes:     c.MaxResponseBytes,
		MaxCollectionMembers: c.MaxCollectionMembers,
		Observer:             metrics.ObserveBMCRequest,
	})
	if err != nil {
		// The configuration is invalid (e.g. a malformed address); the message has no secrets.
		return nil, NewError(metalv1alpha1.ReasonBMCUnreachable, "invalid BMC address %q: %v", ep.address, err)
	}
	return cl, nil
}

func (c *RedfishConnector) endpoint(ctx context.Context, server *metalv1alpha1.Server) (bmcEndpoint, error) {
	switch {
	case server.Spec.BMCRef != nil:
		obj := &metalv1alpha1.BMC{}
		if err := c.Reader.Get(ctx, client.ObjectKey{Name: server.Spec.BMCRef.Name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				return bmcEndpoint{}, NewError(metalv1alpha1.ReasonBMCNotFound, "BMC %s does not exist", server.Spec.BMCRef.Name)
			}
			return bmcEndpoint{}, fmt.Errorf("reading BMC %s: %w", server.Spec.BMCRef.Name, err)
		}
		if !Usable(obj) {
			return bmcEndpoint{}, NewError(metalv1alpha1.ReasonBMCNotReady, "%s", notReadyMessage(obj))
		}
		address := Address(obj)
		if address == "" {
			return bmcEndpoint{}, NewError(metalv1alpha1.ReasonBMCNotReady, "BMC %s has no address yet", obj.Name)
		}
		return bmcEndpoint{address: address, protocol: obj.Spec.Protocol, secret: obj.Spec.BMCSecretRef.Name}, nil
	case server.Spec.BMC != nil:
		b := server.Spec.BMC
		return bmcEndpoint{address: b.Address, protocol: b.Protocol, secret: b.BMCSecretRef.Name}, nil
	}
	return bmcEndpoint{}, NewError(metalv1alpha1.ReasonNoBMC, "neither spec.bmcRef nor spec.bmc is set")
}

// Usable reports whether servers may be reached through the BMC object: not while it is
// Pending or in Error.
func Usable(obj *metalv1alpha1.BMC) bool {
	return obj.Status.State != metalv1alpha1.BMCStatePending && obj.Status.State != metalv1alpha1.BMCStateError
}

// notReadyMessage says why a BMC object cannot be used, for its servers' conditions: its
// state and, while its Ready condition is False, that condition's reason and message (so
// that a server, and a claim of it, carry the BMC's cause: unreachable, the HTTP status).
func notReadyMessage(obj *metalv1alpha1.BMC) string {
	msg := fmt.Sprintf("BMC %s is %s", obj.Name, obj.Status.State)
	if c := meta.FindStatusCondition(obj.Status.Conditions, metalv1alpha1.BMCReady); c != nil && c.Status == metav1.ConditionFalse {
		msg += fmt.Sprintf(" (%s): %s", c.Reason, c.Message)
	}
	return message.Truncate(msg, message.MaxCondition)
}

// Address is where a BMC object is reached: spec.hostname, else spec.access.ip, else
// status.ip; "" when none is known.
func Address(obj *metalv1alpha1.BMC) string {
	switch {
	case obj.Spec.Hostname != nil && *obj.Spec.Hostname != "":
		return *obj.Spec.Hostname
	case obj.Spec.Access != nil && obj.Spec.Access.IP != "":
		return obj.Spec.Access.IP
	}
	return obj.Status.IP
}

func (c *RedfishConnector) credentials(ctx context.Context, name string) (string, string, error) {
	secret := &metalv1alpha1.BMCSecret{}
	if err := c.Reader.Get(ctx, client.ObjectKey{Name: name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return "", "", NewError(metalv1alpha1.ReasonSecretNotFound, "BMCSecret %s does not exist", name)
		}
		return "", "", fmt.Errorf("reading BMCSecret %s: %w", name, err)
	}
	username, password, ok := secret.Credentials()
	if !ok {
		return "", "", NewError(metalv1alpha1.ReasonSecretNotFound, "BMCSecret %s lacks %s or %s",
			name, metalv1alpha1.BMCSecretUsernameKey, metalv1alpha1.BMCSecretPasswordKey)
	}
	return username, password, nil
}

// ObjectConnector builds a client for the BMC a BMC object describes. ConnectBMC does no
// I/O against the BMC itself; errors about the object's configuration (no address, missing
// secret, unsupported protocol) are *Error. Unlike Connector.Connect for a
// server, it does not look at the object's status.state: it is how the BMC controller reaches
// a BMC that is still Pending or in Error.
type ObjectConnector interface {
	ConnectBMC(ctx context.Context, obj *metalv1alpha1.BMC) (bmc.BMC, error)
}

var _ ObjectConnector = (*RedfishConnector)(nil)

// ConnectBMC returns a Redfish client for the BMC object: address spec.hostname, else
// spec.access.ip; port and scheme from spec.protocol (the scheme defaults as for servers:
// https, http for RedfishLocal); credentials from the BMCSecret spec.bmcSecretRef.
func (c *RedfishConnector) ConnectBMC(ctx context.Context, obj *metalv1alpha1.BMC) (bmc.BMC, error) {
	address := Address(obj)
	if address == "" {
		return nil, NewError(metalv1alpha1.ReasonNoAddress, "BMC %s has neither spec.hostname nor spec.access.ip", obj.Name)
	}
	return c.connectEndpoint(ctx, bmcEndpoint{
		address:  address,
		protocol: obj.Spec.Protocol,
		secret:   obj.Spec.BMCSecretRef.Name,
	})
}
