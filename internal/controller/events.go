package controller

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// pendingEvents holds the events of one reconcile until its status write succeeded, so that
// a reconcile whose write is refused (and will run again) announces nothing.
type pendingEvents struct {
	recorder events.EventRecorder
	queued   []func()
}

// add queues an event about regarding.
func (p *pendingEvents) add(regarding, related runtime.Object, eventType, reason, action, note string, args ...any) {
	rec := p.recorder
	p.queued = append(p.queued, func() {
		rec.Eventf(regarding, related, eventType, reason, action, note, args...)
	})
}

// emit sends the queued events.
func (p *pendingEvents) emit() {
	for _, send := range p.queued {
		send()
	}
	p.queued = nil
}

// drop forgets the queued events.
func (p *pendingEvents) drop() { p.queued = nil }
