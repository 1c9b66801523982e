package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// Bounds of the receiver.
const (
	// MaxBody bounds one request body (the reference's 1 MiB).
	MaxBody = 1 << 20
	// DefaultMaxConcurrent bounds the requests handled at once; more are answered 503.
	DefaultMaxConcurrent = 16
	// maxEventsPerRequest and maxValuesPerRequest bound the entries of one payload that are
	// looked at; the rest are ignored.
	maxEventsPerRequest = 64
	maxValuesPerRequest = 512
	// lookupTimeout bounds the cache read that identifies the BMC.
	lookupTimeout   = 5 * time.Second
	shutdownTimeout = 5 * time.Second
)

// Options configure a Receiver.
type Options struct {
	// Addr is the listen address (Start).
	Addr string
	// MaxConcurrent bounds the requests handled at once (default DefaultMaxConcurrent).
	MaxConcurrent int
}

// Receiver is the HTTP server BMCs post their events to. Start runs it as a manager
// Runnable on every replica.
type Receiver struct {
	reader   client.Reader
	recorder events.EventRecorder
	opts     Options
	sem      chan struct{}
}

// NewReceiver builds a receiver that identifies BMCs through reader (the manager's cache)
// and emits events with recorder (nil: none). It registers the metrics.
func NewReceiver(reader client.Reader, recorder events.EventRecorder, opts Options) (*Receiver, error) {
	if reader == nil {
		return nil, errors.New("the event receiver needs a reader")
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	RegisterMetrics()
	return &Receiver{reader: reader, recorder: recorder, opts: opts, sem: make(chan struct{}, opts.MaxConcurrent)}, nil
}

// NeedLeaderElection is false: BMCs post to any replica.
func (r *Receiver) NeedLeaderElection() bool { return false }

// Start listens on Options.Addr and serves until ctx ends.
func (r *Receiver) Start(ctx context.Context) error {
	l, err := net.Listen("tcp", r.opts.Addr)
	if err != nil {
		return fmt.Errorf("event receiver: listen on %s: %w", r.opts.Addr, err)
	}
	return r.Serve(ctx, l)
}

// Serve serves on l until ctx ends, then shuts down.
func (r *Receiver) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           r.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	errCh := make(chan error, 1)
	go func() { errCh <- srv.Serve(l) }()
	select {
	case err := <-errCh:
		return fmt.Errorf("event receiver: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errCh; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("event receiver: %w", err)
	}
	return nil
}

// Handler returns the receiver's HTTP handler.
func (r *Receiver) Handler() http.Handler { return http.HandlerFunc(r.serve) }

// serve answers: 405 for anything but POST, 404 for another path, an unknown BMC or a wrong
// token, 413 for a body over MaxBody, 400 for a body that is not JSON, 503 when
// MaxConcurrent requests are being handled, else 200.
func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	select {
	case r.sem <- struct{}{}:
		defer func() { <-r.sem }()
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	kind, bmcName, token, ok := parsePath(req.URL.Path)
	if !ok {
		http.NotFound(w, req)
		return
	}
	obj, err := r.lookup(req.Context(), bmcName)
	if err != nil {
		ctrl.LoggerFrom(req.Context()).Error(err, "Reading the BMC of an event", "BMC", bmcName)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	if obj == nil || !tokenMatches(token, obj.Status.EventTokenHash) {
		http.NotFound(w, req)
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBody))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			http.Error(w, "Request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	switch kind {
	case KindAlerts:
		err = r.alerts(obj, data)
	case KindMetricsReport:
		err = metricReport(obj.Name, data)
	}
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// parsePath splits /serverevents/<kind>/<bmc>/<token>.
func parsePath(p string) (Kind, string, string, bool) {
	rest, ok := strings.CutPrefix(p, pathPrefix)
	if !ok {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" || len(parts[1]) > 253 {
		return "", "", "", false
	}
	switch k := Kind(parts[0]); k {
	case KindAlerts, KindMetricsReport:
		return k, parts[1], parts[2], true
	}
	return "", "", "", false
}

// lookup reads the BMC from the cache; nil if there is none.
func (r *Receiver) lookup(ctx context.Context, name string) (*metalv1alpha1.BMC, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	obj := &metalv1alpha1.BMC{}
	if err := r.reader.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return obj, nil
}

// flexString decodes a JSON string or number (BMCs disagree) as a string; anything else,
// null included, as "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if dec.Decode(&n) == nil {
		*f = flexString(n.String())
		return nil
	}
	*f = ""
	return nil
}

// origin decodes OriginOfCondition: an object with @odata.id, or a string (Dell).
type origin string

func (o *origin) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*o = origin(s)
		return nil
	}
	var ref struct {
		ID string `json:"@odata.id"`
	}
	if json.Unmarshal(b, &ref) == nil {
		*o = origin(ref.ID)
		return nil
	}
	*o = ""
	return nil
}

// alertEvent is one entry of an Event payload.
type alertEvent struct {
	EventID           flexString `json:"EventId"`
	MessageID         flexString `json:"MessageId"`
	Severity          flexString `json:"Severity"`
	MessageSeverity   flexString `json:"MessageSeverity"`
	OriginOfCondition origin     `json:"OriginOfCondition"`
}

// alerts counts the events of an Event payload, and makes a Warning event on the BMC for
// each Critical one (message id and component only, never the BMC's text).
func (r *Receiver) alerts(obj *metalv1alpha1.BMC, data []byte) error {
	var p struct {
		Events []alertEvent `json:"Events"`
		Alerts []alertEvent `json:"Alerts"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	all := append(p.Events, p.Alerts...)
	for _, ev := range all[:min(len(all), maxEventsPerRequest)] {
		severity := severityLabel(string(firstNonEmpty(ev.MessageSeverity, ev.Severity)))
		messageID := labelValue(string(firstNonEmpty(ev.MessageID, ev.EventID)), "unknown")
		component := "system"
		if o := strings.TrimRight(string(ev.OriginOfCondition), "/"); o != "" {
			component = labelValue(o[strings.LastIndexByte(o, '/')+1:], "system")
		}
		countAlert(obj.Name, severity, messageID, component)
		if severity == "Critical" && r.recorder != nil {
			r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, "CriticalAlert", "ReceiveAlert",
				"The BMC reported a Critical alert %s on %s", messageID, component)
		}
	}
	return nil
}

func firstNonEmpty(a, b flexString) flexString {
	if strings.TrimSpace(string(a)) != "" {
		return a
	}
	return b
}

// metricValue is one entry of a MetricReport's MetricValues.
type metricValue struct {
	MetricID        flexString `json:"MetricId"`
	MetricProperty  flexString `json:"MetricProperty"`
	MetricValue     flexString `json:"MetricValue"`
	Units           flexString `json:"Units"`
	MetricValueKind flexString `json:"MetricValueKind"`
}

// metricReport records the readings of a MetricReport payload, as the reference labels
// them: type is MetricValueKind, else Temperature for an id with "temp" in it, else Gauge;
// unit defaults to seconds.
func metricReport(host string, data []byte) error {
	var p struct {
		MetricValues []metricValue `json:"MetricValues"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	for _, mv := range p.MetricValues[:min(len(p.MetricValues), maxValuesPerRequest)] {
		v, err := strconv.ParseFloat(strings.TrimSpace(string(mv.MetricValue)), 64)
		if err != nil {
			continue
		}
		id := labelValue(string(mv.MetricID), "unknown")
		kind := string(mv.MetricValueKind)
		switch {
		case kind != "":
		case strings.Contains(strings.ToLower(id), "temp"):
			kind = "Temperature"
		default:
			kind = "Gauge"
		}
		defaultReadings.set(readingKey{
			host: host, metricID: id, kind: labelValue(kind, "Gauge"), unit: labelValue(string(mv.Units), "seconds"),
			origin: propertyLabel(string(mv.MetricProperty)),
		}, v)
	}
	return nil
}

// propertyLabel bounds a MetricProperty (a Redfish URI with a JSON pointer) as a label
// value: printable ASCII only, at most 2*maxLabelLen bytes.
func propertyLabel(s string) string {
	for _, c := range s {
		if c < 0x21 || c > 0x7e {
			return otherLabel
		}
	}
	if len(s) > 2*maxLabelLen {
		return s[:2*maxLabelLen]
	}
	return s
}
