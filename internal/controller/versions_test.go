package controller

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// TestObjectVersions: a cached copy older than the controller's own last write is not
// trusted (and says how long it has waited); the written version or a newer one is, and
// drops the expectation; forget drops it for an object that is gone.
func TestObjectVersions(t *testing.T) {
	g := NewWithT(t)
	v := newObjectVersions()

	trusted, _ := v.observe("ns/a", "5")
	g.Expect(trusted).To(BeTrue(), "nothing expected")

	v.expect("ns/a", "10")
	trusted, waiting := v.observe("ns/a", "9")
	g.Expect(trusted).To(BeFalse(), "9 is older than 10, compared as numbers")
	g.Expect(waiting).To(BeNumerically(">=", 0))
	g.Expect(waiting).To(BeNumerically("<", time.Second))

	trusted, _ = v.observe("ns/a", "10")
	g.Expect(trusted).To(BeTrue())
	trusted, _ = v.observe("ns/a", "9")
	g.Expect(trusted).To(BeTrue(), "the expectation was dropped once the cache caught up")

	v.expect("ns/b", "20")
	v.forget("ns/b")
	trusted, _ = v.observe("ns/b", "1")
	g.Expect(trusted).To(BeTrue())
	g.Expect(v.m).To(BeEmpty())
}

// TestObjectVersionsPrunesStaleEntries: entries of objects never looked at again do not
// pile up.
func TestObjectVersionsPrunesStaleEntries(t *testing.T) {
	g := NewWithT(t)
	v := newObjectVersions()
	v.expect("old", "1")
	v.m["old"] = expectedVersion{rv: "1", at: time.Now().Add(-2 * versionRetention)}
	for i := range 1100 {
		v.expect(fmt.Sprintf("ns/claim-%d", i), "1")
	}
	g.Expect(v.m).NotTo(HaveKey("old"))
	g.Expect(len(v.m)).To(BeNumerically(">=", 1000), "recent entries are kept")
}
