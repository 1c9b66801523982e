package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/index"
	"github.com/metalfleet/metal-operator/internal/metrics"
)

// Power-on staggering. A power domain is the value of the server label
// --power-domain-label (default the rack label); a server without it is not staggered.
// Within a domain, at most --max-concurrent-power-ons servers are in a power-on transition
// at once, and two power-ons start at least --power-on-interval apart. Power-offs and
// releases never wait.
//
// The servers in a transition are read from the cache (servers whose PoweringOn condition is
// True, through the index index.ServerPowerOnDomain), so a restarted manager counts the
// power-ons its predecessor left running. What this process admitted but the cache does not
// show yet is kept in memory until the cache shows it (or for PowerOffTimeout, after which a
// power-on is sent again anyway). Admission decisions are taken one at a time under a lock, so
// the server controller's workers never admit more than the limit between them. One manager
// is active at a time (leader election); two managers at once each keep their own count
// beyond what their caches show.

// powerQueue admits power-ons per power domain.
type powerQueue struct {
	reader   client.Reader
	opts     ServerOptions
	mu       sync.Mutex
	started  map[string]powerStart // server name -> a power-on this process admitted
	last     map[string]time.Time  // domain -> the last start admitted in this process
	waiting  map[string]powerWait  // server name -> since when it waits
	queueLen int
}

type powerStart struct {
	domain string
	at     time.Time
}

type powerWait struct {
	since, seen time.Time
}

func newPowerQueue(reader client.Reader, opts ServerOptions) *powerQueue {
	return &powerQueue{reader: reader, opts: opts, started: map[string]powerStart{},
		last: map[string]time.Time{}, waiting: map[string]powerWait{}}
}

// admit decides whether server s may start a power-on now. When it may not, the server gets
// condition PowerOnQueued (its claim's Ready reason then says so) and wait is when to look
// again. A server already in its transition (a power-on sent again) is admitted: it holds
// its slot already.
func (q *powerQueue) admit(ctx context.Context, s *metalv1alpha1.Server) (ok bool, wait time.Duration, err error) {
	if q == nil || !q.opts.staggered() || s.Labels[q.opts.PowerDomainLabel] == "" {
		return true, 0, nil
	}
	domain := s.Labels[q.opts.PowerDomainLabel]
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	inFlight, lastStart, err := q.domainState(ctx, domain, now)
	if err != nil {
		return false, 0, err
	}
	if inFlight[s.Name] || meta.IsStatusConditionTrue(s.Status.Conditions, metalv1alpha1.ServerPoweringOn) {
		return true, 0, nil
	}
	switch {
	case q.opts.MaxConcurrentPowerOns > 0 && len(inFlight) >= q.opts.MaxConcurrentPowerOns:
		q.queue(s, now, fmt.Sprintf("Waiting for a power-on slot in power domain %s (at most %d power-ons at once)",
			domain, q.opts.MaxConcurrentPowerOns))
		return false, q.opts.TransitionPollInterval, nil
	case q.opts.PowerOnInterval > 0 && now.Sub(lastStart) < q.opts.PowerOnInterval:
		q.queue(s, now, fmt.Sprintf("Waiting for the power-on interval in power domain %s (%s between starts)",
			domain, q.opts.PowerOnInterval))
		return false, q.opts.PowerOnInterval - now.Sub(lastStart), nil
	}
	q.started[s.Name] = powerStart{domain: domain, at: now}
	q.last[domain] = now
	if w, ok := q.waiting[s.Name]; ok {
		metrics.ObservePowerOnWait(now.Sub(w.since))
		delete(q.waiting, s.Name)
	}
	meta.RemoveStatusCondition(&s.Status.Conditions, metalv1alpha1.ServerPowerOnQueued)
	q.publish(now)
	return true, 0, nil
}

// domainState returns the servers of the domain in a power-on transition (the cache's, and
// those this process admitted that the cache does not show yet) and the latest start among
// them and this process's own.
func (q *powerQueue) domainState(ctx context.Context, domain string, now time.Time) (map[string]bool, time.Time, error) {
	list := &metalv1alpha1.ServerList{}
	if err := q.reader.List(ctx, list, client.MatchingFields{index.ServerPowerOnDomain: domain}); err != nil {
		return nil, time.Time{}, fmt.Errorf("listing the power-ons of power domain %s: %w", domain, err)
	}
	inFlight := map[string]bool{}
	lastStart := q.last[domain]
	for i := range list.Items {
		s := &list.Items[i]
		inFlight[s.Name] = true
		if c := meta.FindStatusCondition(s.Status.Conditions, metalv1alpha1.ServerPoweringOn); c != nil && c.LastTransitionTime.After(lastStart) {
			lastStart = c.LastTransitionTime.Time
		}
	}
	for name, st := range q.started {
		switch {
		case now.Sub(st.at) > q.opts.PowerOffTimeout+conditionResolution:
			delete(q.started, name)
		case st.domain != domain || inFlight[name]:
		case q.shownDone(ctx, name, st):
			delete(q.started, name)
		default:
			inFlight[name] = true
		}
	}
	return inFlight, lastStart, nil
}

// shownDone reports whether the cache shows the power-on admitted at st over: the server's
// PoweringOn condition changed since it was issued and is not True (the cache caught up with
// the start and the end), or the server is gone.
func (q *powerQueue) shownDone(ctx context.Context, name string, st powerStart) bool {
	s := &metalv1alpha1.Server{}
	if err := q.reader.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
		return client.IgnoreNotFound(err) == nil
	}
	c := meta.FindStatusCondition(s.Status.Conditions, metalv1alpha1.ServerPoweringOn)
	return c != nil && c.Status != metav1.ConditionTrue && !c.LastTransitionTime.Time.Before(st.at.Truncate(time.Second))
}

// queue records that s waits, in its status and in the queue's count.
func (q *powerQueue) queue(s *metalv1alpha1.Server, now time.Time, msg string) {
	w, ok := q.waiting[s.Name]
	if !ok {
		w.since = now
	}
	w.seen = now
	q.waiting[s.Name] = w
	setCondition(s, metalv1alpha1.ServerPowerOnQueued, metav1.ConditionTrue, metalv1alpha1.ReasonPowerOnQueued, msg)
	q.publish(now)
}

// publish drops waiters not seen for a while (released, powered off, deleted meanwhile) and
// reports the queue's length.
func (q *powerQueue) publish(now time.Time) {
	stale := 3*q.opts.TransitionPollInterval + q.opts.PowerOnInterval + time.Second
	for name, w := range q.waiting {
		if now.Sub(w.seen) > stale {
			delete(q.waiting, name)
		}
	}
	if n := len(q.waiting); n != q.queueLen {
		q.queueLen = n
		metrics.SetPowerOnQueueLength(n)
	}
}
