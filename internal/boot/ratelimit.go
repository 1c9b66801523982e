package boot

import (
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/metalfleet/metal-operator/internal/boot/metrics"
	"github.com/metalfleet/metal-operator/internal/cachelag"
)

// clientLimits bounds the requests one source address may make, before a handler does any
// work: what a machine on the boot network can make the boot server (and through it the API
// server) do. A boot takes a handful of requests, so the default leaves a booting machine
// untouched. The addresses are kept in a bounded store: the least recently seen go first,
// and an address not seen for a while starts afresh.
type clientLimits struct {
	perSecond rate.Limit
	burst     int
	limiters  *cachelag.Store[string, *rate.Limiter]
}

const (
	// clientLimitRetention is how long an idle address keeps its limiter.
	clientLimitRetention = 10 * time.Minute
	// maxClientLimiters bounds the addresses remembered.
	maxClientLimiters = 65536
)

// newClientLimits allows perSecond requests per source address on average, burst at once;
// perSecond <= 0 turns the limit off.
func newClientLimits(perSecond float64, burst int) *clientLimits {
	if perSecond <= 0 {
		return nil
	}
	return &clientLimits{
		perSecond: rate.Limit(perSecond), burst: max(burst, 1),
		limiters: cachelag.NewStore[string, *rate.Limiter](cachelag.Options{Retention: clientLimitRetention, Limit: maxClientLimiters}),
	}
}

// allow reports whether a request from ip may go on now.
func (l *clientLimits) allow(ip string) bool {
	if l == nil {
		return true
	}
	lim, _, ok := l.limiters.Get(ip)
	if !ok {
		lim = rate.NewLimiter(l.perSecond, l.burst)
	}
	// Set on every request: an address in use stays remembered.
	l.limiters.Set(ip, lim)
	return lim.Allow()
}

// wrap answers 429 to a request over its address's limit, before h does any work.
func (l *clientLimits) wrap(h http.Handler) http.Handler {
	if l == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.allow(clientIP(r)) {
			metrics.RequestsLimited.Inc()
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many requests", http.StatusTooManyRequests)
			return
		}
		h.ServeHTTP(w, r)
	})
}
