package boot

import "testing"

// TestStreamLimiterCaps: at most perIP streams for one address and total in all; a
// released slot is free again.
func TestStreamLimiterCaps(t *testing.T) {
	l := newStreamLimiter(3, 2)
	steps := []struct {
		ip      string
		release bool
		want    bool
	}{
		{ip: "192.0.2.1", want: true},
		{ip: "192.0.2.1", want: true},
		{ip: "192.0.2.1", want: false}, // per-address cap
		{ip: "192.0.2.2", want: true},
		{ip: "192.0.2.3", want: false}, // total cap
		{ip: "192.0.2.1", release: true},
		{ip: "192.0.2.3", want: true},
		{ip: "192.0.2.1", want: false}, // total cap again
	}
	for i, s := range steps {
		if s.release {
			l.release(s.ip)
			continue
		}
		if got := l.acquire(s.ip); got != s.want {
			t.Fatalf("step %d: acquire(%s) = %v, want %v", i, s.ip, got, s.want)
		}
	}
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		l.release(ip)
	}
	if l.running != 0 || len(l.runningByClient) != 0 {
		t.Fatalf("after releasing every slot: %d running, %v by client", l.running, l.runningByClient)
	}
}
