package cli

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// lockedBuffer is an output a running command writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestUIServesOnLoopbackUntilInterrupted(t *testing.T) {
	g := NewWithT(t)
	c := newCLI(t, env.Namespace(t))

	_, _, err := c.run("", "ui", "--address", "0.0.0.0")
	g.Expect(err).To(MatchError(ContainSubstring("refusing to listen")))

	out := &lockedBuffer{}
	cmd := NewCommand(Streams{In: strings.NewReader(""), Out: out, ErrOut: out})
	cmd.SetArgs([]string{"--kubeconfig", c.kubeconfig, "--context", "test", "ui"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+/\?token=[0-9a-f]{64}`)
	g.Eventually(out.String, 30*time.Second, 20*time.Millisecond).Should(MatchRegexp(url.String()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url.FindString(out.String()), nil)
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))

	cancel() // Ctrl-C
	g.Eventually(done, 10*time.Second).Should(Receive(BeNil()))
}
