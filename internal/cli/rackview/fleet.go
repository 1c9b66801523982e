package rackview

import (
	"strconv"
	"sync"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
)

// Item is one server as the page draws it.
type Item struct {
	Name     string `json:"name"`
	Location string `json:"location"`
	Rack     string `json:"rack"`
	// Shelf is the bottom rack unit (from 1) and Height the height in units; 0 when the
	// server's labels do not say (it is listed beside its rack).
	Shelf  int    `json:"shelf"`
	Height int    `json:"height"`
	State  string `json:"state"`
	Power  string `json:"power"`
	// Pool is free, claimed or out-of-pool.
	Pool string `json:"pool"`
	// Claim and Namespace name the claim the server is bound to.
	Claim     string `json:"claim,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// itemOf is what the page shows of a server.
func itemOf(s *metalv1alpha1.Server) Item {
	it := Item{
		Name:     s.Name,
		Location: s.Labels[metalv1alpha1.LocationLabel],
		Rack:     s.Labels[metalv1alpha1.RackLabel],
		State:    string(s.Status.State),
		Power:    string(s.Status.PowerState),
	}
	shelf, errS := strconv.Atoi(s.Labels[metalv1alpha1.ShelfLabel])
	height, errH := strconv.Atoi(s.Labels[metalv1alpha1.HeightLabel])
	if errS == nil && errH == nil && shelf >= 1 && height >= 1 && shelf <= maxUnits && height <= maxUnits {
		it.Shelf, it.Height = shelf, height
	}
	if it.State == "" {
		it.State = "Unknown"
	}
	if it.Power == "" {
		it.Power = "Unknown"
	}
	switch {
	case s.Spec.ServerClaimRef != nil:
		it.Pool, it.Claim, it.Namespace = "claimed", s.Spec.ServerClaimRef.Name, s.Spec.ServerClaimRef.Namespace
	case binding.IsFree(s):
		it.Pool = "free"
	default:
		it.Pool = "out-of-pool"
	}
	return it
}

// maxUnits bounds the rack positions the page draws: a label claiming unit 10000 must not
// make the page draw ten thousand rows.
const maxUnits = 100

// message is one line of the event stream: a server changed (Server set) or went (Name set).
type message struct {
	Op     string `json:"op"`
	Server *Item  `json:"server,omitempty"`
	Name   string `json:"name,omitempty"`
}

// fleet is the servers as the watch last showed them, and the page streams that follow them.
type fleet struct {
	mu      sync.Mutex
	servers map[string]Item
	subs    map[chan message]struct{}
	// maxSubs bounds the open streams, and so the goroutines they hold.
	maxSubs int
}

func newFleet(maxSubs int) *fleet {
	return &fleet{servers: map[string]Item{}, subs: map[chan message]struct{}{}, maxSubs: maxSubs}
}

// upsert records a server and tells the streams when what they draw changed.
func (f *fleet) upsert(s *metalv1alpha1.Server) {
	it := itemOf(s)
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.servers[it.Name]; ok && old == it {
		return
	}
	f.servers[it.Name] = it
	f.broadcastLocked(message{Op: "upsert", Server: &it})
}

func (f *fleet) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.servers[name]; !ok {
		return
	}
	delete(f.servers, name)
	f.broadcastLocked(message{Op: "delete", Name: name})
}

// broadcastLocked sends m to every stream; a stream too slow to keep up is closed (the
// browser reconnects and starts again from a snapshot) rather than blocking the watch.
func (f *fleet) broadcastLocked(m message) {
	for ch := range f.subs {
		select {
		case ch <- m:
		default:
			delete(f.subs, ch)
			close(ch)
		}
	}
}

// subscribe returns the servers now and a channel of the changes after them, or ok false
// when too many streams are open.
func (f *fleet) subscribe() (snapshot []Item, ch chan message, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) >= f.maxSubs {
		return nil, nil, false
	}
	snapshot = make([]Item, 0, len(f.servers))
	for _, it := range f.servers {
		snapshot = append(snapshot, it)
	}
	ch = make(chan message, streamBuffer)
	f.subs[ch] = struct{}{}
	return snapshot, ch, true
}

func (f *fleet) unsubscribe(ch chan message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[ch]; ok {
		delete(f.subs, ch)
		close(ch)
	}
}

// streamBuffer is how many changes a stream may lag behind before it is dropped.
const streamBuffer = 1024
