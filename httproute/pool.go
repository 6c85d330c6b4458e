package httproute

import (
	"context"
	"errors"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// upstreamState is what oneport knows of one upstream across reloads: its
// transport, requests in flight, and health. The Handler keeps one per
// upstream and hands it to every table that uses the upstream, so health
// and drains survive route changes.
type upstreamState struct {
	addr      string
	transport http.RoundTripper
	closeIdle func()
	active    atomic.Int64
	drained   atomic.Bool
	healthy   atomic.Bool  // active checks; true until they say otherwise
	ejected   atomic.Int64 // passive: unix nanoseconds until which it is out

	mu    sync.Mutex
	fails []time.Time

	stopCheck func()
}

func newUpstreamState(u *upstream, r *Route) *upstreamState {
	st := &upstreamState{addr: u.raw}
	st.transport, st.closeIdle = u.transport(r)
	st.healthy.Store(true)
	return st
}

func (st *upstreamState) available(now int64) bool {
	return !st.drained.Load() && st.healthy.Load() && st.ejected.Load() <= now
}

// failed records a failed request and takes the upstream out when there
// were too many within the window.
func (st *upstreamState) failed(p PassiveHealth, log *slog.Logger) {
	max, window, cooldown := p.MaxFails, p.Window, p.Cooldown
	if max < 0 {
		return
	}
	if max == 0 {
		max = 3
	}
	if window <= 0 {
		window = 10 * time.Second
	}
	if cooldown <= 0 {
		cooldown = 30 * time.Second
	}
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.fails = slices.DeleteFunc(append(st.fails, now), func(t time.Time) bool { return now.Sub(t) > window })
	if len(st.fails) >= max {
		st.fails = nil
		st.ejected.Store(now.Add(cooldown).UnixNano())
		log.Warn("upstream taken out after failures", "upstream", st.addr, "failures", max, "within", window, "for", cooldown)
	}
}

// pick chooses an upstream for r among those available and not tried.
func (c *compiled) pick(r *http.Request, tried []*upstream) *upstream {
	var buf [8]*upstream
	cands := buf[:0]
	now := time.Now().UnixNano()
	for _, u := range c.upstreams {
		if c.Route.Tag != "" && !slices.Contains(u.tags, c.Route.Tag) {
			continue
		}
		if u.st == nil || !u.st.available(now) || slices.Contains(tried, u) {
			continue
		}
		cands = append(cands, u)
	}
	switch len(cands) {
	case 0:
		return nil
	case 1:
		return cands[0]
	}
	switch c.Route.Policy {
	case PolicyFirst:
		return cands[0]
	case PolicyRoundRobin:
		total := 0
		for _, u := range cands {
			total += u.weight
		}
		n := int(c.next.Add(1) % uint64(total))
		for _, u := range cands {
			if n < u.weight {
				return u
			}
			n -= u.weight
		}
		return cands[0]
	case PolicyIPHash:
		return ipHash(r, cands)
	default: // least connections, relative to weight; ties rotate
		start := int(c.next.Add(1) % uint64(len(cands)))
		best := cands[start]
		for i := 1; i < len(cands); i++ {
			u := cands[(start+i)%len(cands)]
			if u.st.active.Load()*int64(best.weight) < best.st.active.Load()*int64(u.weight) {
				best = u
			}
		}
		return best
	}
}

// ipHash is weighted rendezvous hashing on the client's IP: a client keeps
// its upstream while that one is available, and only its clients move
// when the set changes.
func ipHash(r *http.Request, cands []*upstream) *upstream {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	var best *upstream
	var bestScore uint64
	for _, u := range cands {
		h := fnv.New64a()
		h.Write([]byte(ip))
		h.Write([]byte{0})
		h.Write([]byte(u.raw))
		score := (h.Sum64() >> 16) * uint64(u.weight)
		if best == nil || score > bestScore {
			best, bestScore = u, score
		}
	}
	return best
}

// errNoUpstream reports that no upstream of a route is available.
type errNoUpstream struct {
	route string
}

func (e *errNoUpstream) Error() string {
	return "no healthy upstream (all are down, drained or taken out)"
}

// poolTransport sends a request to one of its route's upstreams and
// retries on another where that is safe: a request with no body that is
// idempotent, or any request whose connection was refused (nothing was
// sent).
type poolTransport struct {
	c   *compiled
	log *slog.Logger
}

type logWriterKey struct{}

func (p *poolTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	lw, _ := req.Context().Value(logWriterKey{}).(*logWriter)
	// The inbound body stays open after RoundTrip returns: a bidi stream
	// keeps sending it while the response flows. The server closes it.
	hasBody := req.Body != nil && req.Body != http.NoBody
	body := req.Body
	retries := p.c.Route.Retries
	if retries == 0 {
		retries = DefaultRetries
	}
	var tried []*upstream
	var lastErr error
	for attempt := 0; ; attempt++ {
		u := p.c.pick(req, tried)
		if u == nil && lastErr != nil {
			return nil, lastErr // nowhere else to try: report what failed
		}
		if u == nil {
			return nil, &errNoUpstream{route: p.c.name()}
		}
		out := *req
		url := *req.URL
		url.Scheme, url.Host = u.target.Scheme, u.target.Host
		if u.target.Path != "" {
			url.Path, url.RawPath = joinPath(u.target.Path, url.Path), ""
		}
		out.URL = &url
		if p.c.Route.UpstreamHost {
			out.Host = ""
		}
		var cb *clientBody
		if hasBody {
			cb = &clientBody{r: body} // the transport closes it; the real body stays for a retry
			out.Body = cb
			out = *out.WithContext(httptrace.WithClientTrace(out.Context(), traceConn(cb)))
		}
		if lw != nil {
			lw.upstream = u.raw
		}
		u.st.active.Add(1)
		resp, err := u.st.transport.RoundTrip(&out)
		if err == nil {
			resp.Body = releaseOnClose(resp.Body, u.st, lw)
			return resp, nil
		}
		u.st.active.Add(-1)
		if req.Context().Err() != nil {
			return nil, err
		}
		if cerr := cb.failure(); cerr != nil {
			return nil, cerr // the client's fault, not the upstream's
		}
		u.st.failed(p.c.Route.Passive, p.log)
		refused := isDialError(err)
		if attempt >= retries || !(refused || !hasBody && idempotent(req.Method)) {
			return nil, err
		}
		if len(tried)+1 >= len(p.c.upstreams) {
			return nil, err
		}
		p.log.Info("retrying on another upstream", "route", p.c.name(), "upstream", u.raw, "err", err)
		tried, lastErr = append(tried, u), err
	}
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// releaseOnClose counts a response as in flight until its body is closed.
// Upgraded connections (101) keep their read-write body, as ReverseProxy
// needs. Under a Handler (lw not nil) the wrapper is lw's own: the proxy
// closes the body before the Handler is done with lw, and a wrapper per
// response would be an allocation each.
func releaseOnClose(b io.ReadCloser, st *upstreamState, lw *logWriter) io.ReadCloser {
	if rwc, ok := b.(io.ReadWriteCloser); ok {
		return &releasingRWC{ReadWriteCloser: rwc, st: st}
	}
	if lw != nil {
		lw.release = releasingBody{ReadCloser: b, st: st}
		return &lw.release
	}
	return &releasingBody{ReadCloser: b, st: st}
}

type releasingBody struct {
	io.ReadCloser
	st   *upstreamState
	once sync.Once
}

// Buffered returns how many bytes of the body have arrived unread, where
// the transport can tell; 0 otherwise.
func (b *releasingBody) Buffered() int { return bodyBuffered(b.ReadCloser) }

func (b *releasingBody) Close() error {
	b.once.Do(func() { b.st.active.Add(-1) })
	return b.ReadCloser.Close()
}

type releasingRWC struct {
	io.ReadWriteCloser
	st   *upstreamState
	once sync.Once
}

// CloseWrite closes the sending side of the upgraded connection, where
// the connection can.
func (b *releasingRWC) CloseWrite() error {
	if cw, ok := b.ReadWriteCloser.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (b *releasingRWC) Close() error {
	b.once.Do(func() { b.st.active.Add(-1) })
	return b.ReadWriteCloser.Close()
}

// checker runs an upstream's active health check until stopped.
func (st *upstreamState) startCheck(u *upstream, hc HealthCheck, log *slog.Logger) {
	if hc.Kind == "" {
		return
	}
	interval, timeout := hc.Interval, hc.Timeout
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	healthyN, unhealthyN := hc.Healthy, hc.Unhealthy
	if healthyN <= 0 {
		healthyN = 2
	}
	if unhealthyN <= 0 {
		unhealthyN = 3
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	st.stopCheck = func() { cancel(); <-done }
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		ok, bad := 0, 0
		for {
			cctx, ccancel := context.WithTimeout(ctx, timeout)
			err := st.check(cctx, u, hc)
			ccancel()
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				ok, bad = ok+1, 0
				if ok >= healthyN && !st.healthy.Load() {
					st.healthy.Store(true)
					log.Info("upstream healthy again", "upstream", st.addr)
				}
			} else {
				ok, bad = 0, bad+1
				if bad >= unhealthyN && st.healthy.Load() {
					st.healthy.Store(false)
					log.Warn("upstream unhealthy", "upstream", st.addr, "err", err)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (st *upstreamState) check(ctx context.Context, u *upstream, hc HealthCheck) error {
	if hc.Kind == "tcp" {
		var d net.Dialer
		network, addr := "tcp", u.target.Host
		if u.socket != "" {
			network, addr = "unix", u.socket
		}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	path := hc.Path
	if path == "" {
		path = "/health"
	}
	url := *u.target
	url.Path = joinPath(u.target.Path, path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url.String(), nil)
	if err != nil {
		return err
	}
	resp, err := st.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return errors.New(resp.Status)
	}
	return nil
}

func (st *upstreamState) stop() {
	if st.stopCheck != nil {
		st.stopCheck()
	}
	st.closeIdle()
}
