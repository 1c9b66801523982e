package bmc

import "testing"

func sign(c int) int { return min(max(c, -1), 1) }

// FuzzCompareSystems: whatever URIs and UUIDs a BMC reports, CompareSystems is a total
// order: reflexive, antisymmetric, zero only for the same URI and UUID, and transitive.
// Seeds: testdata/fuzz/FuzzCompareSystems.
func FuzzCompareSystems(f *testing.F) {
	f.Fuzz(func(t *testing.T, uriA, uuidA, uriB, uuidB, uriC, uuidC string) {
		a, b, c := System{URI: uriA, UUID: uuidA}, System{URI: uriB, UUID: uuidB}, System{URI: uriC, UUID: uuidC}
		if CompareSystems(a, a) != 0 {
			t.Fatalf("%v is not equal to itself", a)
		}
		ab, ba := sign(CompareSystems(a, b)), sign(CompareSystems(b, a))
		if ab != -ba {
			t.Fatalf("not antisymmetric: %v, %v: %d and %d", a, b, ab, ba)
		}
		if (ab == 0) != (a == b) {
			t.Fatalf("%v and %v compare %d", a, b, ab)
		}
		bc, ac := sign(CompareSystems(b, c)), sign(CompareSystems(a, c))
		if ab <= 0 && bc <= 0 && ac > 0 {
			t.Fatalf("not transitive: %v <= %v <= %v but %v > %v", a, b, c, a, c)
		}
	})
}
