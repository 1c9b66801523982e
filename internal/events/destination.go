// Package events receives the Redfish events BMCs post to the operator: alerts and metric
// reports, on the reference operator's paths (/serverevents/alerts/<bmc>,
// /serverevents/metricsreport/<bmc>), exported as the reference's metrics
// redfish_event_alert_total and redfish_monitor_reading.
//
// Unlike the reference, the receiver does not take a BMC's name as proof of who posts: each
// destination ends in a random token whose SHA-256 the BMC controller keeps in the BMC's
// status.eventTokenHash. A request for an unknown BMC or with the wrong token is answered
// 404, before its body is read, and creates no metric series; the label values a BMC sends
// are bounded in number and length.
package events

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Kind is what a subscription delivers: the first path segment after /serverevents/.
type Kind string

// Kinds of destinations.
const (
	KindAlerts        Kind = "alerts"
	KindMetricsReport Kind = "metricsreport"
)

// pathPrefix is the path below which the receiver serves, as in the reference.
const pathPrefix = "/serverevents/"

// SubscriptionContext is the Context of the operator's subscriptions, as in the reference.
const SubscriptionContext = "metal-operator"

// Destination is the URL a BMC posts to: <base>/serverevents/<kind>/<bmc>/<token>.
func Destination(baseURL string, kind Kind, bmcName, token string) string {
	return strings.TrimRight(baseURL, "/") + pathPrefix + string(kind) + "/" + url.PathEscape(bmcName) + "/" + token
}

// OwnDestination reports whether a subscription's destination is one of the operator's for
// the BMC (any kind, any token): what a lost status write leaves behind.
func OwnDestination(destination, baseURL, bmcName string) bool {
	base := strings.TrimRight(baseURL, "/") + pathPrefix
	for _, k := range []Kind{KindAlerts, KindMetricsReport} {
		if strings.HasPrefix(destination, base+string(k)+"/"+url.PathEscape(bmcName)+"/") {
			return true
		}
	}
	return false
}

// NewToken returns a random token for a BMC's destinations and its hash.
func NewToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("generating an event token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken is what status.eventTokenHash holds: the SHA-256 of the token, hex.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// tokenMatches compares a token with a stored hash in constant time; an empty hash matches
// nothing.
func tokenMatches(token, hash string) bool {
	if hash == "" || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(HashToken(token)), []byte(hash)) == 1
}

// ValidateBaseURL checks a --event-url: http or https, a host, no credentials, query or
// fragment.
func ValidateBaseURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("invalid event URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("invalid event URL %q: the scheme must be http or https", s)
	case u.Host == "":
		return fmt.Errorf("invalid event URL %q: no host", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return errors.New("invalid event URL: it must not carry credentials, a query or a fragment")
	}
	return nil
}
