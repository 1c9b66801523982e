package boot_test

import (
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/boot"
)

// TestArtifactStreamsAreCapped: over live HTTP, a client streaming as many artifacts as
// --boot-artifact-streams-per-client allows gets 429 for one more, and is served again once
// a stream ended.
func TestArtifactStreamsAreCapped(t *testing.T) {
	g := NewWithT(t)
	f := start(t, func(o *boot.Options) { o.ArtifactStreamsPerClient = 1 })
	m := f.newMachine(t, "capped", false)
	f.waitReady(t, m)
	k := kernelLine.FindStringSubmatch(f.boot(t, m))
	g.Expect(k).NotTo(BeNil())

	release := f.reg.Hold(t) // the registry holds a stream open
	// The first stream: whoever gets the slot first holds it until the registry answers; this
	// one asks until it is the one.
	first := make(chan int, 1)
	go func() {
		c := &http.Client{Timeout: 30 * time.Second}
		for {
			resp, err := c.Get(k[1])
			if err != nil {
				first <- 0
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusTooManyRequests {
				first <- resp.StatusCode
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	// A second one, while the first holds the slot, is refused; an attempt that took the slot
	// itself times out and lets it go.
	short := &http.Client{Timeout: 300 * time.Millisecond}
	g.Eventually(func() int {
		resp, err := short.Get(k[1])
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}).Should(Equal(http.StatusTooManyRequests), "a second stream of the same client")
	release()
	g.Eventually(first).Should(Receive(Equal(http.StatusOK)))
	code, _ := httpGet(g, k[1])
	g.Expect(code).To(Equal(http.StatusOK), "served again once the stream ended")
}
