package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

const (
	eventSvcPath      = "/redfish/v1/EventService"
	subscriptionsPath = eventSvcPath + "/Subscriptions"

	// DefaultEventQueue is the number of deliveries that may wait; more are dropped.
	DefaultEventQueue = 64
	// DefaultEventTimeout bounds one delivery.
	DefaultEventTimeout = 2 * time.Second
	// maxSubscriptions bounds the subscriptions the BMC keeps.
	maxSubscriptions = 32
	// maxDeliveryAnswer bounds what is read of a subscriber's answer.
	maxDeliveryAnswer = 4 << 10
)

// Subscription is one event subscription of the emulated BMC.
type Subscription struct {
	ID              string
	Destination     string
	Context         string
	EventFormatType string
}

// MetricValue is one reading of a metric report (Redfish MetricReport.MetricValues).
type MetricValue struct {
	MetricID       string
	MetricProperty string
	MetricValue    string
	Units          string
}

// delivery is one payload for one subscriber.
type delivery struct {
	url  string
	body []byte
}

// eventService holds the subscriptions and delivers events to them from one goroutine,
// started with the first delivery and stopped by Close. Its zero value is ready to use.
type eventService struct {
	mu       sync.Mutex
	seq      int
	eventSeq int
	subs     []Subscription
	queue    chan delivery
	started  bool
	stopped  bool
	wg       sync.WaitGroup

	delivered, failed, dropped int
}

// Subscriptions returns the BMC's event subscriptions, oldest first.
func (e *Emulator) Subscriptions() []Subscription {
	e.events.mu.Lock()
	defer e.events.mu.Unlock()
	return slices.Clone(e.events.subs)
}

// EventDeliveries returns how many deliveries to subscribers succeeded (2xx), failed, and
// were dropped because the queue was full.
func (e *Emulator) EventDeliveries() (delivered, failed, dropped int) {
	e.events.mu.Lock()
	defer e.events.mu.Unlock()
	return e.events.delivered, e.events.failed, e.events.dropped
}

// Alert sends an alert about a system (by UUID) to every Event subscriber, as a BMC does
// for a hardware fault. It reports whether the system exists.
func (e *Emulator) Alert(uuid, messageID, severity, message string) bool {
	s := e.lookup(uuid)
	if s == nil {
		return false
	}
	e.publishEvent(s.uri, messageID, severity, message)
	return true
}

// ReportMetrics sends a metric report with the values to every MetricReport subscriber.
func (e *Emulator) ReportMetrics(values ...MetricValue) {
	now := time.Now().UTC().Format(time.RFC3339)
	mv := make([]obj, 0, len(values))
	for _, v := range values {
		mv = append(mv, obj{"MetricId": v.MetricID, "MetricProperty": v.MetricProperty, "MetricValue": v.MetricValue,
			"Units": v.Units, "Timestamp": now})
	}
	e.publish(string(bmc.EventFormatMetricReport), func(id string) obj {
		return obj{
			"@odata.type": "#MetricReport.v1_4_2.MetricReport", "Id": "Report" + id, "Name": "Metric report",
			"Timestamp": now, "MetricValues": mv,
		}
	})
}

// powerChanged announces a system's new power state to Event subscribers. It is called
// with the system's lock held and does not block.
func (e *Emulator) powerChanged(uri string, state bmc.PowerState) {
	e.publishEvent(uri, "ResourceEvent.1.3.ResourceChanged", "OK", "The power state of "+uri+" changed to "+string(state)+".")
}

func (e *Emulator) publishEvent(origin, messageID, severity, message string) {
	e.publish(string(bmc.EventFormatEvent), func(id string) obj {
		return obj{
			"@odata.type": "#Event.v1_7_0.Event", "Id": id, "Name": "Event Array",
			"Events": []obj{{
				"EventType": "Alert", "EventId": id, "MessageId": messageID, "Message": message,
				"MessageSeverity": severity, "EventTimestamp": time.Now().UTC().Format(time.RFC3339),
				"OriginOfCondition": ref(origin),
			}},
		}
	})
}

// publish queues a payload for every subscriber of the format, without blocking: a full
// queue drops it.
func (e *Emulator) publish(format string, payload func(id string) obj) {
	es := &e.events
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.stopped {
		return
	}
	for _, sub := range es.subs {
		if sub.EventFormatType != format {
			continue
		}
		es.eventSeq++
		body := payload(strconv.Itoa(es.eventSeq))
		body["Context"] = sub.Context
		data, err := json.Marshal(body)
		if err != nil {
			continue
		}
		if !es.started {
			es.started = true
			n := e.opts.EventQueue
			if n <= 0 {
				n = DefaultEventQueue
			}
			es.queue = make(chan delivery, n)
			es.wg.Add(1)
			go e.deliverEvents(es.queue)
		}
		select {
		case es.queue <- delivery{url: sub.Destination, body: data}:
		default:
			es.dropped++
		}
	}
}

// deliverEvents posts queued payloads one at a time until Close.
func (e *Emulator) deliverEvents(queue <-chan delivery) {
	defer e.events.wg.Done()
	timeout := e.opts.EventTimeout
	if timeout <= 0 {
		timeout = DefaultEventTimeout
	}
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2}, Timeout: timeout}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Close ends a running delivery at once.
		select {
		case <-e.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-e.done:
			return
		case d := <-queue:
			ok := post(ctx, hc, d)
			e.events.mu.Lock()
			if ok {
				e.events.delivered++
			} else {
				e.events.failed++
			}
			e.events.mu.Unlock()
		}
	}
}

// post delivers one payload and reports whether the subscriber took it (2xx).
func post(ctx context.Context, hc *http.Client, d delivery) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDeliveryAnswer))
	_ = resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

// stopEvents marks the event service stopped and waits for its delivery goroutine; Close
// calls it after closing done.
func (e *Emulator) stopEvents() {
	e.events.mu.Lock()
	e.events.stopped = true
	e.events.mu.Unlock()
	e.events.wg.Wait()
}

// serveEvents routes /redfish/v1/EventService/...
func (e *Emulator) serveEvents(w http.ResponseWriter, r *http.Request, segs []string) {
	switch {
	case len(segs) == 0:
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, obj{
				"@odata.type": "#EventService.v1_10_0.EventService", "@odata.id": eventSvcPath,
				"Id": "EventService", "Name": "Event Service", "ServiceEnabled": true,
				"DeliveryRetryAttempts": 0, "EventFormatTypes": []string{string(bmc.EventFormatEvent), string(bmc.EventFormatMetricReport)},
				"Subscriptions": ref(subscriptionsPath),
			})
		}
	case segs[0] != "Subscriptions" || len(segs) > 2:
		notFound(w, r)
	case len(segs) == 1:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			subs := e.Subscriptions()
			members := make([]obj, 0, len(subs))
			for _, s := range subs {
				members = append(members, ref(subscriptionsPath+"/"+s.ID))
			}
			writeJSON(w, http.StatusOK, collectionOf("#EventDestinationCollection.EventDestinationCollection",
				subscriptionsPath, "Event Subscriptions Collection", members))
		case http.MethodPost:
			e.createSubscription(w, r)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPost)
		}
	default:
		e.serveSubscription(w, r, segs[1])
	}
}

func subscriptionJSON(s Subscription) obj {
	return obj{
		"@odata.type": "#EventDestination.v1_13_0.EventDestination", "@odata.id": subscriptionsPath + "/" + s.ID,
		"Id": s.ID, "Name": "Event Subscription " + s.ID, "Destination": s.Destination, "Context": s.Context,
		"EventFormatType": s.EventFormatType, "Protocol": "Redfish", "SubscriptionType": "RedfishEvent",
	}
}

// createSubscription handles POST .../Subscriptions: 201 with Location, 400 for a bad
// request or a destination subscribed already (ResourceAlreadyExists).
func (e *Emulator) createSubscription(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Destination     string `json:"Destination"`
		Context         string `json:"Context"`
		EventFormatType string `json:"EventFormatType"`
		Protocol        string `json:"Protocol"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if u, err := url.Parse(req.Destination); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		writeError(w, http.StatusBadRequest, "PropertyValueFormatError", "The value for the property Destination is not a valid URI.")
		return
	}
	if req.Protocol != "Redfish" {
		notInList(w, "Protocol", req.Protocol)
		return
	}
	if req.EventFormatType == "" {
		req.EventFormatType = string(bmc.EventFormatEvent)
	}
	if req.EventFormatType != string(bmc.EventFormatEvent) && req.EventFormatType != string(bmc.EventFormatMetricReport) {
		notInList(w, "EventFormatType", req.EventFormatType)
		return
	}
	es := &e.events
	es.mu.Lock()
	if slices.ContainsFunc(es.subs, func(s Subscription) bool { return s.Destination == req.Destination }) {
		es.mu.Unlock()
		writeError(w, http.StatusBadRequest, "ResourceAlreadyExists", "The requested resource already exists.")
		return
	}
	if len(es.subs) >= maxSubscriptions {
		es.mu.Unlock()
		writeError(w, http.StatusBadRequest, "CreateLimitReachedForResource", "The create operation failed because the resource has reached the limit of possible resources.")
		return
	}
	es.seq++
	sub := Subscription{ID: strconv.Itoa(es.seq), Destination: req.Destination, Context: req.Context, EventFormatType: req.EventFormatType}
	es.subs = append(es.subs, sub)
	es.mu.Unlock()
	w.Header().Set("Location", subscriptionsPath+"/"+sub.ID)
	writeJSON(w, http.StatusCreated, subscriptionJSON(sub))
}

// serveSubscription handles GET and DELETE of one subscription.
func (e *Emulator) serveSubscription(w http.ResponseWriter, r *http.Request, id string) {
	if !allow(w, r, http.MethodGet, http.MethodDelete) {
		return
	}
	es := &e.events
	es.mu.Lock()
	i := slices.IndexFunc(es.subs, func(s Subscription) bool { return s.ID == id })
	var sub Subscription
	if i >= 0 {
		sub = es.subs[i]
		if r.Method == http.MethodDelete {
			es.subs = slices.Delete(es.subs, i, i+1)
		}
	}
	es.mu.Unlock()
	switch {
	case i < 0:
		notFound(w, r)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusOK, subscriptionJSON(sub))
	}
}
