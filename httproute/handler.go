package httproute

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Option configures NewTable and NewHandler.
type Option func(*options)

type options struct {
	log *slog.Logger
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
}

// NewHandler returns a Handler serving routes.
func NewHandler(routes []Route, opts ...Option) (*Handler, error) {
	h := &Handler{}
	for _, f := range opts {
		f(&h.opts)
	}
	t, err := NewTable(routes, opts...)
	if err != nil {
		return nil, err
	}
	h.table.Store(t)
	return h, nil
}

// Table returns the routes in use.
func (h *Handler) Table() *Table { return h.table.Load() }

// SetTable swaps in a new table at once; the old one's idle upstream
// connections are closed.
func (h *Handler) SetTable(t *Table) {
	if old := h.table.Swap(t); old != nil {
		old.closeIdle()
	}
}

// CloseIdleConnections closes idle connections to upstreams; call it at
// shutdown, after the HTTP server has stopped.
func (h *Handler) CloseIdleConnections() { h.table.Load().closeIdle() }

// ServeHTTP proxies r to the upstream of the best matching route, and logs
// one access line.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	lw := logWriterPool.Get().(*logWriter)
	*lw = logWriter{ResponseWriter: w, start: time.Now()}
	defer func() {
		h.access(r, lw)
		*lw = logWriter{}
		logWriterPool.Put(lw)
	}()
	t := h.table.Load()
	if r.Method == http.MethodConnect {
		http.Error(lw, "oneport: CONNECT is not supported", http.StatusMethodNotAllowed)
		return
	}
	c, fwd := t.match(normalizeHost(r.Host), CleanPath(r.URL.Path))
	if c == nil {
		if t.Len() == 0 {
			serveWelcome(lw, r)
			return
		}
		http.Error(lw, "oneport: no route for this host and path", http.StatusNotFound)
		return
	}
	u := c.upstreams[0]
	if len(c.upstreams) > 1 {
		u = c.upstreams[c.next.Add(1)%uint64(len(c.upstreams))]
	}
	lw.route, lw.upstream = c.name(), u.raw
	out := *r
	url := *r.URL
	url.Path, url.RawPath = fwd, ""
	out.URL = &url
	u.proxy.ServeHTTP(lw, &out)
}

func (h *Handler) access(r *http.Request, lw *logWriter) {
	log := h.opts.logger()
	if !log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	var ttfb time.Duration
	if !lw.first.IsZero() {
		ttfb = lw.first.Sub(lw.start)
	}
	status := lw.status
	if status == 0 {
		status = http.StatusOK
	}
	log.LogAttrs(r.Context(), slog.LevelInfo, "http",
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.String("route", lw.route),
		slog.String("upstream", lw.upstream),
		slog.Int("status", status),
		slog.Int64("bytes", lw.bytes),
		slog.Duration("duration", time.Since(lw.start)),
		slog.Duration("ttfb", ttfb),
	)
}

// newProxy builds the reverse proxy for one upstream of a route.
func newProxy(c *compiled, u *upstream, o options) *httputil.ReverseProxy {
	route := c.Route
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u.target)
			pr.SetXForwarded()
			if pr.In.TLS == nil && isTLS(pr.In) {
				pr.Out.Header.Set("X-Forwarded-Proto", "https")
			}
			if !route.UpstreamHost {
				pr.Out.Host = pr.In.Host
			}
			if !route.RequestHeaders.empty() {
				route.RequestHeaders.apply(pr.Out.Header)
			}
		},
		Transport:  u.transport(route),
		BufferPool: bufferPool{},
		ErrorLog:   slog.NewLogLogger(o.logger().Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status := errorStatus(r, err)
			if lw, ok := w.(*logWriter); ok {
				lw.err = err
			}
			if status == StatusClientClosedRequest {
				if lw, ok := w.(*logWriter); ok {
					lw.status = status
				}
				return
			}
			o.logger().Warn("upstream failed", "route", route.name(), "upstream", u.raw, "status", status, "err", err)
			http.Error(w, fmt.Sprintf("oneport: upstream %s: %s", u.raw, reason(err)), status)
		},
	}
	if !route.ResponseHeaders.empty() {
		p.ModifyResponse = func(resp *http.Response) error {
			route.ResponseHeaders.apply(resp.Header)
			return nil
		}
	}
	return p
}

// reason shortens a proxy error to its last, most specific part.
func reason(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		return s[i+2:]
	}
	return s
}

// bufferPool lends ReverseProxy 32 KiB copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// logWriter records what the access log needs. Unwrap lets
// http.ResponseController reach the connection for flushes and upgrades.
type logWriter struct {
	http.ResponseWriter
	start, first    time.Time
	status          int
	bytes           int64
	route, upstream string
	err             error
}

var logWriterPool = sync.Pool{New: func() any { return new(logWriter) }}

func (w *logWriter) WriteHeader(code int) {
	if w.first.IsZero() && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.first = time.Now()
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.first.IsZero() {
		w.first = time.Now()
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
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
