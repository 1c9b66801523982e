package boot

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// MinTokenKeyLength is the shortest accepted ignition token key, in bytes.
const MinTokenKeyLength = 32

// tokenSigner makes and checks ignition tokens.
//
// A token is base64url(namespace "/" name) "." base64url(HMAC-SHA256(key, namespace "/" name
// "/" uid)). The first part only says which configuration is meant; the second proves that
// the token was made by this server for that very object (its uid): it cannot be guessed
// without the key, and a configuration deleted and re-created under the same name gets a
// new one. Nothing is stored.
type tokenSigner struct {
	key []byte
}

func newTokenSigner(key []byte) (*tokenSigner, error) {
	if len(key) == 0 {
		key = make([]byte, MinTokenKeyLength)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generating an ignition token key: %w", err)
		}
	}
	if len(key) < MinTokenKeyLength {
		return nil, fmt.Errorf("the ignition token key has %d bytes, want at least %d", len(key), MinTokenKeyLength)
	}
	return &tokenSigner{key: key}, nil
}

func (s *tokenSigner) mac(key types.NamespacedName, uid types.UID) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(key.Namespace + "/" + key.Name + "/" + string(uid)))
	return h.Sum(nil)
}

// token returns the token of the configuration key with uid.
func (s *tokenSigner) token(key types.NamespacedName, uid types.UID) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(key.Namespace+"/"+key.Name)) + "." + enc.EncodeToString(s.mac(key, uid))
}

var errMalformedToken = errors.New("malformed token")

// parse returns the configuration a token names, and its MAC, without verifying it.
func (s *tokenSigner) parse(token string) (types.NamespacedName, []byte, error) {
	enc := base64.RawURLEncoding
	id, sig, ok := strings.Cut(token, ".")
	if !ok {
		return types.NamespacedName{}, nil, errMalformedToken
	}
	rawID, err := enc.DecodeString(id)
	if err != nil {
		return types.NamespacedName{}, nil, errMalformedToken
	}
	mac, err := enc.DecodeString(sig)
	if err != nil || len(mac) != sha256.Size {
		return types.NamespacedName{}, nil, errMalformedToken
	}
	ns, name, ok := strings.Cut(string(rawID), "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, nil, errMalformedToken
	}
	return types.NamespacedName{Namespace: ns, Name: name}, mac, nil
}

// verify tells, in constant time, whether mac is the MAC of the configuration key with uid.
func (s *tokenSigner) verify(key types.NamespacedName, uid types.UID, mac []byte) bool {
	return hmac.Equal(mac, s.mac(key, uid))
}

// ReadTokenKeyFile reads an ignition token key from a file (for example a mounted Secret):
// its raw bytes, with surrounding white space removed, at least MinTokenKeyLength long.
func ReadTokenKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the ignition token key: %w", err)
	}
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) < MinTokenKeyLength {
		return nil, fmt.Errorf("the ignition token key in %s has %d bytes, want at least %d", path, len(b), MinTokenKeyLength)
	}
	return b, nil
}
