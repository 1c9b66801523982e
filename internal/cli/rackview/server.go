// Package rackview is the live rack view of kubectl-metal (`kubectl metal ui`): a page on
// 127.0.0.1 that draws the fleet by location and rack, each server coloured by state with
// its claim, kept current from a watch on Servers through server-sent events.
//
// It runs with the user's kubeconfig, so it adds no attack surface to the cluster; what it
// must keep out are other local users and web pages: it listens on loopback only, answers
// only requests whose Host is its own address (no DNS rebinding), and serves data only with
// the random token of the URL it printed (no cross-site reads).
package rackview

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/scheme"
)

//go:embed static
var static embed.FS

// Options configure the view.
type Options struct {
	// Address is the listen address, host:port; the host must be a loopback address
	// ("localhost" is 127.0.0.1). Port 0 picks a free port.
	Address string
	// MaxStreams bounds the pages open at once.
	MaxStreams int
	// KeepAlive is how often an idle stream gets a comment, so that proxies and browsers
	// keep it open.
	KeepAlive time.Duration
}

// DefaultOptions listen on 127.0.0.1 on a free port.
func DefaultOptions() Options {
	return Options{Address: "127.0.0.1:0", MaxStreams: 16, KeepAlive: 15 * time.Second}
}

// View is a running rack view.
type View struct {
	// URL is the page's address with its token: the one thing to give the user.
	URL string

	token  string
	host   string
	fleet  *fleet
	cache  cache.Cache
	reader client.Reader
	opts   Options
	srv    *http.Server
	ln     net.Listener
}

// Start watches the servers with cfg, waits for the first list, and starts serving. It
// stops when ctx is cancelled; Wait returns then.
func Start(ctx context.Context, cfg *rest.Config, o Options) (*View, error) {
	addr, err := loopbackAddress(o.Address)
	if err != nil {
		return nil, err
	}
	if o.MaxStreams <= 0 || o.KeepAlive <= 0 {
		return nil, errors.New("rackview: MaxStreams and KeepAlive must be positive")
	}
	s := scheme.New()
	c, err := cache.New(cfg, cache.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("rackview: %w", err)
	}
	reader, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("rackview: %w", err)
	}
	v := &View{fleet: newFleet(o.MaxStreams), cache: c, reader: reader, opts: o}
	inf, err := c.GetInformer(ctx, &metalv1alpha1.Server{})
	if err != nil {
		return nil, fmt.Errorf("rackview: watching servers: %w", err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { v.observe(obj) },
		UpdateFunc: func(_, obj any) { v.observe(obj) },
		DeleteFunc: func(obj any) { v.forget(obj) },
	}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !c.WaitForCacheSync(syncCtx) {
		return nil, errors.New("rackview: the server list did not arrive within a minute (can your kubeconfig list and watch servers.metal.ironcore.dev?)")
	}

	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		return nil, err
	}
	v.token = hex.EncodeToString(token)
	v.ln, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rackview: %w", err)
	}
	v.host = v.ln.Addr().String()
	v.URL = "http://" + v.host + "/?token=" + v.token
	v.srv = &http.Server{
		Handler:           v.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = v.srv.Shutdown(shutdown)
	}()
	return v, nil
}

// Serve serves the page until the context given to Start is cancelled.
func (v *View) Serve() error {
	if err := v.srv.Serve(v.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// loopbackAddress checks that addr listens on loopback only.
func loopbackAddress(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("rackview: listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("rackview: refusing to listen on %q: the view serves your cluster's data with your credentials, so it listens on a loopback address (127.0.0.1 or ::1) only", addr)
	}
	return net.JoinHostPort(host, port), nil
}

func (v *View) observe(obj any) {
	if s, ok := obj.(*metalv1alpha1.Server); ok {
		v.fleet.upsert(s)
	}
}

func (v *View) forget(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if s, ok := obj.(*metalv1alpha1.Server); ok {
		v.fleet.remove(s.Name)
	}
}

func (v *View) handler() http.Handler {
	mux := http.NewServeMux()
	assets, _ := fs.Sub(static, "static")
	files := http.FileServerFS(assets)
	mux.Handle("GET /static/", http.StripPrefix("/static/", files))
	mux.Handle("GET /{$}", v.withToken(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, assets, "index.html")
	}))
	mux.Handle("GET /events", v.withToken(v.events))
	mux.Handle("GET /api/servers/{name}", v.withToken(v.serverDetail))
	return v.guard(mux)
}

// guard answers only requests for our own address, with headers that keep the page out of
// frames and its token out of referrers.
func (v *View) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != v.host {
			http.Error(w, "wrong host", http.StatusMisdirectedRequest)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// withToken serves only requests that carry the view's token.
func (v *View) withToken(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.URL.Query().Get("token")
		if subtle.ConstantTimeCompare([]byte(got), []byte(v.token)) != 1 {
			http.Error(w, "missing or wrong token: open the URL kubectl metal ui printed", http.StatusForbidden)
			return
		}
		next(w, r)
	})
}

// events streams the fleet: a snapshot, then every change, as server-sent events.
func (v *View) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	snapshot, ch, ok := v.fleet.subscribe()
	if !ok {
		http.Error(w, "too many open views", http.StatusServiceUnavailable)
		return
	}
	defer v.fleet.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	if err := writeEvent(w, "snapshot", snapshot); err != nil {
		return
	}
	flusher.Flush()
	tick := time.NewTicker(v.opts.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case m, open := <-ch:
			if !open {
				return // too slow: the browser reconnects and gets a new snapshot
			}
			if err := writeEvent(w, "change", m); err != nil {
				return
			}
		}
		flusher.Flush()
	}
}

func writeEvent(w http.ResponseWriter, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data)
	return err
}

// Detail is what a click on a server shows.
type Detail struct {
	Item
	Conditions []metav1.Condition `json:"conditions"`
	// LastWipe is the server's status.lastWipe as the API server holds it, if any.
	LastWipe any `json:"lastWipe,omitempty"`
}

func (v *View) serverDetail(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		http.Error(w, "not a server name", http.StatusBadRequest)
		return
	}
	s := &metalv1alpha1.Server{}
	if err := v.cache.Get(r.Context(), client.ObjectKey{Name: name}, s); err != nil {
		http.Error(w, "no such server", http.StatusNotFound)
		return
	}
	d := Detail{Item: itemOf(s), Conditions: s.Status.Conditions}
	if d.Conditions == nil {
		d.Conditions = []metav1.Condition{}
	}
	// The wipe record is read without the typed API, so that the view works with an operator
	// that does not record wipes yet.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(metalv1alpha1.GroupVersion.WithKind("Server"))
	if err := v.reader.Get(r.Context(), client.ObjectKey{Name: name}, u); err == nil {
		if wipe, found, _ := unstructured.NestedFieldCopy(u.Object, "status", "lastWipe"); found {
			d.LastWipe = wipe
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(d)
}
