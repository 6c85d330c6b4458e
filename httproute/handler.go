package httproute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oneport/oneport/internal/xconnect/h2ws"
)

// Option configures NewTable and NewHandler.
type Option func(*options)

type options struct {
	log         *slog.Logger
	observe     func(RequestInfo)
	accessAttrs func(*http.Request) []slog.Attr
}

// RequestInfo describes a finished request, for metrics.
type RequestInfo struct {
	Route, Upstream string // empty when no route matched
	Status          int
	Bytes           int64
	Duration, TTFB  time.Duration
}

// WithObserver has f called after every request, from the request's
// goroutine; it must be fast and safe for concurrent use.
func WithObserver(f func(RequestInfo)) Option { return func(o *options) { o.observe = f } }

// WithAccessAttrs has f add attributes to a request's access line, such
// as the name of the key a handler in front let it in with; f runs only
// when the line is logged, and returns nil to add none.
func WithAccessAttrs(f func(*http.Request) []slog.Attr) Option {
	return func(o *options) { o.accessAttrs = f }
}

// WithLogger sets the logger for access and proxy error lines; without it
// they are discarded.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

func (o options) logger() *slog.Logger {
	if o.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.log
}

// Handler routes requests by host and path to upstreams through
// httputil.ReverseProxy. Its routes can be replaced at any time with
// SetTable; requests already in flight finish on the table they started
// with. Create it with NewHandler.
type Handler struct {
	table atomic.Pointer[Table]
	opts  options

	mu        sync.Mutex                // serializes SetTable and upstream changes
	upstreams map[string]*upstreamState // by upstreamKey
}

// NewHandler returns a Handler serving routes.
func NewHandler(routes []Route, opts ...Option) (*Handler, error) {
	h := &Handler{}
	for _, f := range opts {
		f(&h.opts)
	}
	t, err := NewTable(routes)
	if err != nil {
		return nil, err
	}
	h.SetTable(t)
	return h, nil
}

// Table returns the routes in use: an immutable snapshot, which SetTable
// replaces rather than changes. It is the Handler's copy of the Table
// last given to SetTable, not that Table itself.
func (h *Handler) Table() *Table { return h.table.Load() }

// SetTable swaps in the routes of t at once; requests in flight finish on
// the table they started with. t is not changed: the Handler serves a copy
// of it wired to its upstream state, so t may be served by other Handlers
// too. Upstreams the new routes share with the old ones keep their
// connections, health and drain state; health checks of upstreams they
// drop stop.
func (h *Handler) SetTable(t *Table) {
	h.mu.Lock()
	defer h.mu.Unlock()
	next := map[string]*upstreamState{}
	served := &Table{routes: make([]*compiled, len(t.routes))}
	for i, c := range t.routes {
		sc := *c
		sc.upstreams = make([]*upstream, len(c.upstreams))
		for j, u := range c.upstreams {
			su := *u
			key := upstreamKey(&su, sc.Route)
			st := next[key]
			if st == nil {
				st = h.upstreams[key]
			}
			if st == nil {
				st = newUpstreamState(&su, sc.Route)
				st.startCheck(&su, sc.Route.Health, h.opts.logger())
			}
			su.st, next[key] = st, st
			sc.upstreams[j] = &su
		}
		sc.next = new(atomic.Uint64)
		sc.proxy = newProxy(&sc, h.opts)
		served.routes[i] = &sc
	}
	h.table.Store(served)
	for key, st := range h.upstreams {
		if next[key] == nil {
			st.stop()
		}
	}
	h.upstreams = next
}

// upstreamKey identifies an upstream with the settings its transport and
// checks are built from.
func upstreamKey(u *upstream, r *Route) string {
	return fmt.Sprint(u.raw, r.DialTimeout, r.ResponseHeaderTimeout, r.MaxResponseHeaderBytes, r.Health)
}

// CloseIdleConnections closes idle connections to upstreams and stops
// health checks; call it at shutdown, after the HTTP server has stopped.
func (h *Handler) CloseIdleConnections() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, st := range h.upstreams {
		st.stop()
	}
}

// ServeHTTP proxies r to the upstream of the best matching route, and logs
// one access line.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	lw := logWriterPool.Get().(*logWriter)
	*lw = logWriter{ResponseWriter: w, start: time.Now(), served: lw.served}
	defer func() {
		h.access(r, lw)
		*lw = logWriter{served: lw.served}
		logWriterPool.Put(lw)
	}()
	if r.Context().Err() != nil {
		// Gone before it started (an HTTP/2 stream reset at once): no
		// work for it, and no response.
		lw.status = StatusClientClosedRequest
		panic(http.ErrAbortHandler)
	}
	t := h.table.Load()
	xproto := h2ws.Protocol(r)
	if r.Method == http.MethodConnect && xproto == "" {
		http.Error(lw, "oneport: CONNECT is not supported", http.StatusMethodNotAllowed)
		return
	}
	if xproto != "" && refuseExtendedConnect(lw, xproto, nil) {
		return
	}
	if !validHostPort(r.Host) {
		http.Error(lw, "oneport: malformed Host header: bad port", http.StatusBadRequest)
		return
	}
	c, fwd := t.match(normalizeHost(r.Host), CleanPath(r.URL.Path))
	if c == nil {
		if t.Len() == 0 && xproto == "" {
			serveWelcome(lw, r)
			return
		}
		http.Error(lw, "oneport: no route for this host and path", http.StatusNotFound)
		return
	}
	lw.route = c.name()
	out := r.WithContext(context.WithValue(r.Context(), logWriterKey{}, lw))
	if xproto != "" && refuseExtendedConnect(lw, xproto, c) {
		return
	}
	if c.Serve != nil {
		url := *r.URL
		url.Path, url.RawPath = fwd, ""
		out.URL = &url
		c.Serve.ServeHTTP(lw, out)
		return
	}
	// The route's proxy, with copy buffers sized for this response. The
	// forwarded path is set on the proxy's own copy of the URL, by
	// Rewrite.
	lw.fwd = fwd
	lw.proxy = *c.proxy
	lw.proxy.BufferPool = responseBuffers{lw}
	if xproto != "" {
		client := out.Body // the stream: the client's bytes once upgraded
		out = h2ws.Upgrade(out)
		lw.proxy.Transport = &xconnectTransport{next: c.proxy.Transport, client: client, lw: lw}
	}
	lw.proxy.ServeHTTP(lw, out)
}

func (h *Handler) access(r *http.Request, lw *logWriter) {
	var ttfb time.Duration
	if !lw.first.IsZero() {
		ttfb = lw.first.Sub(lw.start)
	}
	status, bytes := lw.status, lw.bytes
	if status == 0 {
		status = http.StatusOK
	}
	if lw.upgrade != nil { // an upgraded session, ended now
		status, bytes = http.StatusSwitchingProtocols, lw.upgrade.tx.Load()
	}
	if h.opts.observe != nil {
		h.opts.observe(RequestInfo{Route: lw.route, Upstream: lw.upstream, Status: status, Bytes: bytes,
			Duration: time.Since(lw.start), TTFB: ttfb})
	}
	log := h.opts.logger()
	if !log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	// The record is made here rather than by log.LogAttrs, which records
	// the caller's program counter: a stack walk per request for a source
	// position this line does not show.
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, "http", 0)
	rec.AddAttrs(
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.String("route", lw.route),
		slog.String("upstream", lw.upstream),
		slog.Int("status", status),
		slog.Int64("bytes", bytes),
		slog.Duration("duration", time.Since(lw.start)),
		slog.Duration("ttfb", ttfb),
	)
	if h.opts.accessAttrs != nil {
		rec.AddAttrs(h.opts.accessAttrs(r)...)
	}
	rec.AddAttrs(lw.extra...)
	if lw.upgrade != nil {
		rec.AddAttrs(slog.Int64("rx", lw.upgrade.rx.Load()), slog.Int64("tx", lw.upgrade.tx.Load()))
	}
	log.Handler().Handle(r.Context(), rec)
}

// newProxy builds a route's reverse proxy; its transport picks the
// upstream.
func newProxy(c *compiled, o options) *httputil.ReverseProxy {
	route := c.Route
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			if lw, _ := pr.In.Context().Value(logWriterKey{}).(*logWriter); lw != nil {
				pr.Out.URL.Path, pr.Out.URL.RawPath = lw.fwd, ""
			}
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "upstream" // the transport sets the chosen one
			pr.SetXForwarded()
			if pr.In.TLS == nil && isTLS(pr.In) {
				pr.Out.Header.Set("X-Forwarded-Proto", "https")
			}
			pr.Out.Host = pr.In.Host
			forwardPrefix(pr, c)
			dropH2CUpgrade(pr.Out.Header)
			if !route.RequestHeaders.empty() {
				route.RequestHeaders.apply(pr.Out.Header)
			}
		},
		Transport: &poolTransport{c: c, log: o.logger()},
		ErrorLog:  slog.NewLogLogger(o.logger().Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status := errorStatus(r, err)
			lw, _ := w.(*logWriter)
			if lw != nil {
				lw.err = err
			}
			if status == StatusClientClosedRequest {
				if lw != nil {
					lw.status = status
				}
				// No response: a client that only half-closed must not
				// take an empty one for the answer.
				panic(http.ErrAbortHandler)
			}
			if status == http.StatusBadRequest {
				http.Error(w, "oneport: "+reason(err), status)
				return
			}
			up := ""
			if lw != nil {
				up = lw.upstream
			}
			o.logger().Warn("upstream failed", "route", route.name(), "upstream", up, "status", status, "err", err)
			if _, ok := errors.AsType[*errNoUpstream](err); ok || up == "" {
				http.Error(w, fmt.Sprintf("oneport: route %s: %s", route.name(), reason(err)), status)
				return
			}
			why := reason(err)
			if status == http.StatusGatewayTimeout {
				why = timeoutReason(route, err)
			}
			http.Error(w, fmt.Sprintf("oneport: upstream %s: %s", up, why), status)
		},
	}
	modify := modifyResponse(c)
	p.ModifyResponse = func(res *http.Response) error {
		if modify != nil {
			if err := modify(res); err != nil {
				return err
			}
		}
		if res.Request != nil {
			if lw, _ := res.Request.Context().Value(logWriterKey{}).(*logWriter); lw != nil {
				lw.takeFlushing(res)
			}
		}
		return nil
	}
	return p
}

// takeFlushing has w flush a response ReverseProxy would flush after
// every write (server-sent events, and bodies of unknown length) in place
// of ReverseProxy. For those, ReverseProxy starts a timer that fires at
// once to flush the header: a goroutine and the wake-up of a second
// thread on the way to every stream's first byte, which then often goes
// out alone, a write before the first event's. w instead flushes the
// header in the handler's goroutine, only when no body byte has arrived
// yet (otherwise the header leaves with the first write), and flushes
// after every write. ReverseProxy is kept from doing it too by what it
// decides on: the response's Content-Type, which w sets on the client's
// response itself, and its ContentLength, which no longer says unknown.
// A Content-Type the upstream did not send is not sniffed from the first
// write: the header of a stream may go before any body. Whether body bytes
// have arrived is asked of res.Body, as it is when takeFlushing runs (see
// bodyBuffered).
func (w *logWriter) takeFlushing(res *http.Response) {
	if res.StatusCode == http.StatusSwitchingProtocols {
		return
	}
	ct, haveType := res.Header["Content-Type"]
	if res.ContentLength != -1 && !(len(ct) > 0 && isEventStream(ct[0])) {
		return
	}
	w.stream, w.body = true, res.Body
	delete(res.Header, "Content-Type")
	w.Header()["Content-Type"] = ct
	if !haveType {
		w.Header()["Content-Type"] = nil // no sniffing
	}
	res.ContentLength = 0 // only ReverseProxy's flushing reads it
}

// bodyBuffered returns how many bytes of a response body have arrived
// unread, where the body can tell: a Buffered method, which oneport's
// HTTP/1 client has (h1Body), and which a wrapper over such a body passes
// on (releasingBody, and the model gateway's). A body that cannot tell
// counts as empty, so a stream's header is not held back for it.
func bodyBuffered(body io.Reader) int {
	if b, ok := body.(interface{ Buffered() int }); ok {
		return b.Buffered()
	}
	return 0
}

func isEventStream(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

// reason shortens a proxy error to its last, most specific part.
func reason(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		return s[i+2:]
	}
	return s
}

// Copy buffers: large ones for bodies that are large or of unknown
// length, which then move in a few large reads and writes instead of many
// small ones; small ones for small bodies and for streams (server-sent
// events, NDJSON, gRPC), which hold their buffer for their whole life.
// At most maxLargeBuffers are lent at once (32 MiB); past that, large
// bodies make do with small buffers.
const (
	smallBuffer     = 32 << 10
	largeBuffer     = 1 << 20
	largeBody       = 128 << 10
	maxLargeBuffers = 32
)

var (
	smallBuffers = sync.Pool{New: func() any { b := make([]byte, smallBuffer); return &b }}
	largeBuffers = sync.Pool{New: func() any { b := make([]byte, largeBuffer); return &b }}
	largeLent    atomic.Int32
)

// responseBuffers lends ReverseProxy the copy buffer for one response:
// ReverseProxy asks for it after writing the response header, when the
// logWriter has seen the body's length and type.
type responseBuffers struct{ w *logWriter }

func (b responseBuffers) Get() []byte {
	if b.w.bulk {
		if largeLent.Add(1) <= maxLargeBuffers {
			b.w.lent = largeBuffers.Get().(*[]byte)
			return *b.w.lent
		}
		largeLent.Add(-1)
	}
	b.w.lent = smallBuffers.Get().(*[]byte)
	return *b.w.lent
}

// Put takes back the buffer Get lent, through the pointer Get kept:
// taking the address of b would cost an allocation per response.
func (b responseBuffers) Put(buf []byte) {
	p := b.w.lent
	if p == nil || cap(*p) != cap(buf) {
		own := buf // declared here, so that only this case allocates
		p = &own
	}
	b.w.lent = nil
	switch cap(buf) {
	case largeBuffer:
		largeBuffers.Put(p)
		largeLent.Add(-1)
	case smallBuffer:
		smallBuffers.Put(p)
	}
}

// logWriter records what the access log needs. Unwrap lets
// http.ResponseController reach the connection for flushes and upgrades.
type logWriter struct {
	http.ResponseWriter
	start, first    time.Time
	status          int
	bytes           int64
	bulk            bool      // the response body is large, or of unknown length and not a stream
	stream          bool      // flush after every write; see takeFlushing
	body            io.Reader // a stream's body, for bodyBuffered; see takeFlushing
	route, upstream string
	fwd             string        // the path the proxy forwards
	lent            *[]byte       // the copy buffer lent by responseBuffers
	release         releasingBody // the response body, see releaseOnClose
	err             error
	proxy           httputil.ReverseProxy      // the route's, with responseBuffers
	modify          func(*http.Response) error // a served proxy's ModifyResponse; see ServeProxy
	served          func(*http.Response) error // w.modifyServed, bound once per pooled logWriter, not per request
	extra           []slog.Attr                // added by Annotate
	upgrade         *upgradeCounts             // set by Hijack for an upgraded session
}

// Annotate names the upstream a route's Serve handler sent r to, and adds
// attrs to r's access log line. Outside a Handler it does nothing.
func Annotate(r *http.Request, upstream string, attrs ...slog.Attr) {
	lw, _ := r.Context().Value(logWriterKey{}).(*logWriter)
	if lw == nil {
		return
	}
	if upstream != "" {
		lw.upstream = upstream
	}
	lw.extra = append(lw.extra, attrs...)
}

// ServeProxy serves r with p for a route's Serve handler. When w is the
// ResponseWriter a Handler gave that Serve handler, p's responses are
// served as a plain route's: with the route proxies' copy buffers
// (pooled, and sized for the response once its header is known), and,
// once p.ModifyResponse has run, with the Handler's own flushing of
// streams in place of ReverseProxy's (see takeFlushing). A response body
// p.ModifyResponse wraps should then have a Buffered() int method, passed
// on from the body it wraps, for a stream's header to leave with its
// first event. Elsewhere, or when p has a BufferPool of its own, it is
// p.ServeHTTP. ReverseProxy's own default is a new 32 KiB buffer per
// response.
func ServeProxy(p *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
	lw, ok := w.(*logWriter)
	if !ok || p.BufferPool != nil || lw.proxy.Transport != nil {
		p.ServeHTTP(w, r)
		return
	}
	lw.proxy = *p
	lw.proxy.BufferPool = responseBuffers{lw}
	if lw.served != nil {
		lw.modify, lw.proxy.ModifyResponse = p.ModifyResponse, lw.served
	}
	lw.proxy.ServeHTTP(w, r)
}

// modifyServed is the ModifyResponse of a proxy ServeProxy serves: the
// proxy's own, then takeFlushing.
func (w *logWriter) modifyServed(res *http.Response) error {
	if w.modify != nil {
		if err := w.modify(res); err != nil {
			return err
		}
	}
	w.takeFlushing(res)
	return nil
}

var logWriterPool = sync.Pool{New: func() any {
	w := new(logWriter)
	w.served = w.modifyServed
	return w
}}

func (w *logWriter) WriteHeader(code int) {
	if w.first.IsZero() && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.first = time.Now()
		w.status = code
		w.bulk = w.upgrade == nil && isBulk(w.Header())
	}
	w.ResponseWriter.WriteHeader(code)
	if w.stream && code >= 200 && bodyBuffered(w.body) == 0 {
		w.Flush() // the body may be long in coming: the client has the header now
	}
}

// isBulk tells from a response's header whether its body is worth the
// large copy buffer.
func isBulk(h http.Header) bool {
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		return err == nil && n >= largeBody
	}
	ct, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	switch ct = strings.ToLower(strings.TrimSpace(ct)); {
	case ct == "text/event-stream", ct == "application/x-ndjson", ct == "application/jsonl",
		strings.HasPrefix(ct, "application/grpc"), strings.HasPrefix(ct, "multipart/"):
		return false
	}
	return true
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.first.IsZero() {
		w.first = time.Now()
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	if w.stream {
		w.Flush()
	}
	return n, err
}

func (w *logWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveWelcome answers when no route is configured.
func serveWelcome(w http.ResponseWriter, r *http.Request) {
	const hint = `oneport --route /=127.0.0.1:8000 --route /embedding-model/=127.0.0.1:30001`
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"oneport": "running",
			"routes":  0,
			"hint":    "add a route: " + hint,
		})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "oneport is running: SSH, HTTP and TLS share this port.\n\n"+
		"No HTTP route is configured yet. Add one with --route [HOST]/PATH=UPSTREAM, for example\n\n  %s\n\n"+
		"or with [[route]] tables in the config file (see oneport --help).\n", hint)
}

// UpstreamStatus is an upstream's state as the admin API shows it.
type UpstreamStatus struct {
	Address string `json:"address"`
	Healthy bool   `json:"healthy"` // active checks (true when none run)
	Ejected bool   `json:"ejected"` // taken out after failures, for a cool-down
	Drained bool   `json:"drained"` // no new requests, by admin
	Active  int64  `json:"active"`  // requests in flight
}

// Upstreams returns the state of every upstream in use, by address.
func (h *Handler) Upstreams() []UpstreamStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now().UnixNano()
	byAddr := map[string]UpstreamStatus{}
	for _, st := range h.upstreams {
		// An address used by routes with different timeouts or checks has
		// several states: it is healthy only if all are.
		s, seen := byAddr[st.addr]
		s.Address = st.addr
		s.Healthy = st.healthy.Load() && (!seen || s.Healthy)
		s.Ejected = s.Ejected || st.ejected.Load() > now
		s.Drained = st.drained.Load()
		s.Active += st.active.Load()
		byAddr[st.addr] = s
	}
	out := make([]UpstreamStatus, 0, len(byAddr))
	for _, s := range byAddr {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b UpstreamStatus) int { return strings.Compare(a.Address, b.Address) })
	return out
}

// ErrUnknownUpstream is returned for an address no route uses.
var ErrUnknownUpstream = errors.New("no route uses this upstream")

// SetDrained drains an upstream (no new requests; those in flight finish)
// or puts it back in service.
func (h *Handler) SetDrained(addr string, drained bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	found := false
	for _, st := range h.upstreams {
		if st.addr == addr {
			st.drained.Store(drained)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("upstream %q: %w", addr, ErrUnknownUpstream)
	}
	return nil
}
