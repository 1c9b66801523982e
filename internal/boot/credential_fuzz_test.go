package boot

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// FuzzParseCredential: parsing any string a peer presents as a credential never panics,
// accepts only the credential shape, and a parsed credential matches only its own hash.
func FuzzParseCredential(f *testing.F) {
	good, hash, err := newCredential(types.NamespacedName{Namespace: "ns", Name: "sbc"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, s string) {
		key, secret, err := parseCredential(s)
		if err != nil {
			return
		}
		if key.Namespace == "" || key.Name == "" || strings.Contains(key.Name, "/") || len(secret) != credentialSecretLength {
			t.Fatalf("parsed %q into %v with a %d-byte secret", s, key, len(secret))
		}
		if secretMatches(secret, hash) != (s == good) {
			t.Fatalf("%q: match with the seed's hash is %v", s, !(s == good))
		}
		if secretMatches(secret, "") || secretMatches(secret, "zz") {
			t.Fatalf("%q matches a malformed hash", s)
		}
	})
}
