package index

import (
	"strings"
	"testing"
)

// FuzzNormalizeMAC: whatever a BMC or a booting machine reports as a MAC address, its index
// key holds only lower-case hex digits, normalising it again changes nothing, and the
// spellings of one address (colons, dashes, dots, either case) give one key.
// Seeds: testdata/fuzz/FuzzNormalizeMAC.
func FuzzNormalizeMAC(f *testing.F) {
	f.Fuzz(func(t *testing.T, mac string) {
		key := NormalizeMAC(mac)
		if strings.Trim(key, "0123456789abcdef") != "" {
			t.Fatalf("NormalizeMAC(%q) = %q holds more than lower-case hex digits", mac, key)
		}
		if again := NormalizeMAC(key); again != key {
			t.Fatalf("NormalizeMAC is not idempotent on %q: %q then %q", mac, key, again)
		}
		if len(key) > len(mac) {
			t.Fatalf("NormalizeMAC(%q) = %q grew", mac, key)
		}
		if len(key) != 12 {
			return
		}
		pairs := make([]string, 6)
		for i := range pairs {
			pairs[i] = key[2*i : 2*i+2]
		}
		for _, spelling := range []string{
			strings.Join(pairs, ":"), strings.ToUpper(strings.Join(pairs, "-")),
			key[0:4] + "." + key[4:8] + "." + key[8:12],
		} {
			if got := NormalizeMAC(spelling); got != key {
				t.Fatalf("NormalizeMAC(%q) = %q, want %q", spelling, got, key)
			}
		}
	})
}
