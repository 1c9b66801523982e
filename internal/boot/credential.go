package boot

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// A boot credential is base64url(namespace "/" name) "." base64url(secret), where secret is
// credentialSecretLength random bytes. The first part only says which boot configuration is
// meant; the secret proves the bearer got it from the boot server's iPXE script for the
// current boot. Only hex(SHA-256(secret)) is stored, in the configuration's
// status.bootCredential.hash. See docs/security.md.

// credentialSecretLength is the length of a credential's random part: 256 bits.
const credentialSecretLength = 32

// maxCredentialLength bounds what is parsed: a namespace and a name of at most 253
// characters each, and the secret.
const maxCredentialLength = 1024

var errMalformedCredential = errors.New("malformed boot credential")

// newCredential returns a fresh credential for the configuration key and the hash to store.
func newCredential(key types.NamespacedName) (credential, hash string, err error) {
	secret := make([]byte, credentialSecretLength)
	if _, err := rand.Read(secret); err != nil {
		return "", "", fmt.Errorf("generating a boot credential: %w", err)
	}
	enc := base64.RawURLEncoding
	credential = enc.EncodeToString([]byte(key.Namespace+"/"+key.Name)) + "." + enc.EncodeToString(secret)
	return credential, hashSecret(secret), nil
}

func hashSecret(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:])
}

// parseCredential returns the configuration a credential names and its secret, without
// checking the secret.
func parseCredential(credential string) (types.NamespacedName, []byte, error) {
	if len(credential) > maxCredentialLength {
		return types.NamespacedName{}, nil, errMalformedCredential
	}
	enc := base64.RawURLEncoding
	id, encSecret, ok := strings.Cut(credential, ".")
	if !ok {
		return types.NamespacedName{}, nil, errMalformedCredential
	}
	rawID, err := enc.DecodeString(id)
	if err != nil {
		return types.NamespacedName{}, nil, errMalformedCredential
	}
	secret, err := enc.DecodeString(encSecret)
	if err != nil || len(secret) != credentialSecretLength {
		return types.NamespacedName{}, nil, errMalformedCredential
	}
	ns, name, ok := strings.Cut(string(rawID), "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, nil, errMalformedCredential
	}
	return types.NamespacedName{Namespace: ns, Name: name}, secret, nil
}

// secretMatches tells, in constant time, whether secret hashes to the stored hash.
func secretMatches(secret []byte, stored string) bool {
	want, err := hex.DecodeString(stored)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	got := sha256.Sum256(secret)
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

// windowOpen tells whether a boot is expected and no credential was issued for it yet.
func windowOpen(c *metalv1alpha1.BootCredentialStatus, now time.Time, ttl time.Duration) bool {
	return c != nil && c.Hash == "" && !c.BootDone && now.Before(c.WindowOpenedAt.Add(ttl))
}

// credentialActive tells whether an issued credential is still honoured: not expired and
// not revoked by a reported boot state.
func credentialActive(c *metalv1alpha1.BootCredentialStatus, now time.Time) bool {
	return c != nil && c.Hash != "" && !c.BootDone && c.ExpiresAt != nil && now.Before(c.ExpiresAt.Time)
}

// clientIP is the request's source address in canonical form, "" if it has none.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	return ip.Unmap().WithZone("").String()
}

// bearerCredential is the credential of an "Authorization: Bearer" header, "" without one.
func bearerCredential(r *http.Request) string {
	scheme, credential, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(credential)
}

// issuedRecently tells whether this boot's credential was issued and its TTL has not run
// out, reported done or not: a boot reported done by whoever held the credential still makes
// a later request from another address worth a Warning.
func issuedRecently(c *metalv1alpha1.BootCredentialStatus, now time.Time) bool {
	return c != nil && c.Hash != "" && c.ExpiresAt != nil && now.Before(c.ExpiresAt.Time)
}

// misuseRecorded tells whether the configuration already says BootCredentialMisused with
// this reason for this address, so that a repeat costs no write.
func misuseRecorded(sbc *metalv1alpha1.ServerBootConfiguration, reason, ip string) bool {
	c := meta.FindStatusCondition(sbc.Status.Conditions, metalv1alpha1.BootConfigurationBootCredentialMisused)
	return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason && strings.Contains(c.Message, "from "+ip+" ")
}
