package operator

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
)

// TestNewRejectsClientRateLimitsThatThrottleEverything: a zero QPS would fall back to
// client-go's 5 requests per second, and a positive QPS with no burst lets nothing through.
func TestNewRejectsClientRateLimitsThatThrottleEverything(t *testing.T) {
	for _, tc := range []struct {
		qps   float64
		burst int
	}{{0, 2000}, {100, 0}} {
		o := DefaultOptions()
		o.ClientQPS, o.ClientBurst = tc.qps, tc.burst
		_, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, o)
		NewWithT(t).Expect(err).To(MatchError(ContainSubstring("--kube-api-qps must be positive")))
	}
}
