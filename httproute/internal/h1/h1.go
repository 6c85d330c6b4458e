package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/oneport/oneport/internal/rawsock"
)

// maxFastBody is the largest request body the HTTP/1.1 fast path buffers
// (so it can resend it on a fresh connection); larger bodies stream
// through http.Transport.
const maxFastBody = 64 << 10

// h1Transport is a lean HTTP/1.1 client for plain-HTTP and unix-socket
// upstreams. It writes the request and reads the response headers in the
// caller's goroutine, where http.Transport hands each request to a write
// goroutine and each response back from a read goroutine: two scheduler
// hops per request, which dominate small requests on a loaded box.
//
// It takes the common case only: no body, or a body of known length up to
// maxFastBody; no Upgrade, no Expect, no trailers. Everything else goes to
// fallback. Like http.Transport, it resends a request once on a fresh
// connection when a reused one turns out to be closed before any response
// byte, if the request is idempotent or was not written.
//
// Against hostile upstreams and clients it bounds each response header
// (maxHeader) and the dials under way at once (maxDials), and a request
// cancelled early costs little: before it has a connection it opens none,
// a dial it started goes to the pool, and a connection whose answer is
// small and quick is kept (see rescue).
type h1Transport struct {
	dial          func(ctx context.Context) (net.Conn, error)
	fallback      *http.Transport
	headerTimeout time.Duration
	maxIdle       int
	idleTimeout   time.Duration
	maxHeader     int // response header limit in bytes; see NewTransport
	maxDials      int // dials under way at once; see NewTransport

	mu      sync.Mutex
	idle    []*h1Conn // most recently used last
	closed  bool
	dialing int           // dials under way
	freed   chan struct{} // closed when a connection or a dial slot frees; nil if nobody waits
}

type h1Conn struct {
	net.Conn
	lim      headerLimit // what br reads
	br       *bufio.Reader
	bw       *bufio.Writer
	reused   bool
	lastUsed time.Time
	poisoned atomic.Bool // a cancel set the deadline in the past
}

func (t *h1Transport) fits(req *http.Request) bool {
	if req.URL.Scheme != "http" || len(req.Trailer) > 0 {
		return false
	}
	if req.Header.Get("Upgrade") != "" || req.Header.Get("Expect") != "" {
		return false
	}
	if hasToken(req.Header.Get("Connection"), "upgrade") {
		return false
	}
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	return req.ContentLength > 0 && req.ContentLength <= maxFastBody
}

// hasToken reports whether the lowercase, non-empty token appears in the
// header value v, in any case, bounded by v's ends, spaces, tabs or
// commas. That is net/http's test for Connection and Expect, which the
// engine answers as net/http does: "0 100-continue" expects a 100
// Continue there too.
func hasToken(v, token string) bool {
	for sp := 0; sp+len(token) <= len(v); sp++ {
		if b := v[sp]; b != token[0] && b|0x20 != token[0] {
			continue
		}
		if sp > 0 && !isTokenBoundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !isTokenBoundary(v[end]) {
			continue
		}
		if strings.EqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }

// errNoResponse marks a reused connection that was closed before any
// response byte: the upstream had closed it while idle.
var errNoResponse = errors.New("upstream closed the connection before responding")

// RoundTrip implements http.RoundTripper.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.fits(req) {
		return t.fallback.RoundTrip(req)
	}
	var body []byte // read once there is a connection to send it on
	mustCheck := !idempotent(req.Method)
	for attempt := 0; ; attempt++ {
		// Connect before touching the body: if the upstream refuses, the
		// body is unread and the caller may send it elsewhere, as with
		// http.Transport.
		pc, err := t.get(req.Context(), mustCheck)
		if err == nil && req.Context().Err() != nil {
			// Cancelled (an HTTP/2 stream reset) before anything was
			// written: the connection stays good for the next request.
			t.put(pc)
			err = req.Context().Err()
		}
		if err != nil {
			if req.Body != nil {
				req.Body.Close() // RoundTripper's contract; the pool's wrapper keeps the body
			}
			return nil, err
		}
		if body == nil && req.Body != nil && req.Body != http.NoBody {
			if body, err = readBody(req); err != nil {
				t.put(pc)
				return nil, err
			}
		}
		if mustCheck && pc.reused && !pc.alive() {
			// A request that is not resent if the connection turns out
			// closed is checked on every reuse, here rather than in get:
			// the upstream may also have closed it while the body was
			// read from a slow client.
			pc.Close()
			continue
		}
		resp, written, err := t.roundTrip(pc, req, body)
		if err == nil {
			return resp, nil
		}
		if err == errConnKept {
			return nil, req.Context().Err()
		}
		pc.Close()
		if attempt == 0 && pc.reused && errors.Is(err, errNoResponse) && (!written || idempotent(req.Method)) {
			continue
		}
		return nil, err
	}
}

// readBody reads a request body of known, small length in full.
func readBody(req *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(req.Body, maxFastBody+1))
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(b)) != req.ContentLength {
		return nil, fmt.Errorf("request body is %d bytes, Content-Length says %d", len(b), req.ContentLength)
	}
	return b, nil
}

// get returns an idle connection, or dials one. A connection idle for
// longer than aliveCheckAfter is checked first, unless checkedLater: a
// request that is not resent, whose every reused connection RoundTrip
// checks once the body is read.
func (t *h1Transport) get(ctx context.Context, checkedLater bool) (*h1Conn, error) {
	now := time.Now()
	t.mu.Lock()
again:
	for len(t.idle) > 0 {
		pc := t.idle[len(t.idle)-1]
		t.idle = t.idle[:len(t.idle)-1]
		idle := now.Sub(pc.lastUsed)
		if idle > t.idleTimeout || (!checkedLater && idle > time.Duration(aliveCheckAfter.Load()) && !pc.alive()) {
			pc.Close()
			continue
		}
		t.mu.Unlock()
		pc.reused = true
		return pc, nil
	}
	if err := ctx.Err(); err != nil {
		t.mu.Unlock()
		return nil, err // a request cancelled before it started opens nothing
	}
	if t.dialing >= max(t.maxDials, 1) {
		if err := t.waitFreed(ctx); err != nil {
			return nil, err
		}
		now = time.Now()
		goto again
	}
	t.dialing++
	t.mu.Unlock()
	return t.dialFor(ctx)
}

// wakeLocked wakes the requests waiting for a connection or a dial slot.
func (t *h1Transport) wakeLocked() {
	if t.freed != nil {
		close(t.freed)
		t.freed = nil
	}
}

// aliveCheckAfter is how long a connection must have been idle before get
// checks, for a request that can be resent, that the upstream has not
// closed it. Upstreams close idle connections after seconds (uvicorn and
// llama.cpp after 5), and under load the check is a system call per
// request. A request that cannot be resent (POST: a chat completion) is
// always checked, by RoundTrip once its body is read: an upstream
// restarted a moment after its last response has closed every
// connection, and such a request would fail on one.
var aliveCheckAfter atomic.Int64 // time.Duration; tests shorten it

func init() { aliveCheckAfter.Store(int64(time.Second)) }

// alive reports whether an idle connection is still open and quiet: the
// upstream may have closed it (uvicorn does after 5 idle seconds), and a
// request that cannot be resent must not be written to it.
func (pc *h1Conn) alive() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	if q, ok := pc.lim.r.(interface{ Quiet() bool }); ok {
		return q.Quiet() // rawsock.Conn: no allocation, no scheduler hand-off
	}
	sc, ok := pc.Conn.(syscall.Conn)
	if !ok || !rawsock.Supported {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, errno := rawsock.Peek(fd, b[:])
		ok = n <= 0 && errno == syscall.EAGAIN // no data, not closed
		return true                            // never wait
	})
	return ok
}

func (t *h1Transport) put(pc *h1Conn) {
	pc.lastUsed = time.Now()
	t.mu.Lock()
	if t.closed || len(t.idle) >= t.maxIdle {
		t.mu.Unlock()
		pc.Close()
		return
	}
	t.idle = append(t.idle, pc)
	t.wakeLocked()
	t.mu.Unlock()
}

// CloseIdleConnections closes idle connections, here and in the fallback.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, pc := range idle {
		pc.Close()
	}
	t.fallback.CloseIdleConnections()
}

var past = time.Unix(1, 0)

// poison wakes any read or write on pc with a deadline in the past, for a
// cancelled request.
func (pc *h1Conn) poison() {
	pc.SetDeadline(past)
	pc.poisoned.Store(true)
}

// roundTrip sends req on pc and reads the response headers. written
// reports whether any of the request may have reached the upstream.
func (t *h1Transport) roundTrip(pc *h1Conn, req *http.Request, body []byte) (*http.Response, bool, error) {
	// A client that goes away cancels the request at once: a deadline in
	// the past wakes any read or write on pc.
	pc.poisoned.Store(false)
	watch := watchCancel(req.Context(), pc)
	if err := writeRequest(pc.bw, req, body); err != nil {
		watch.unwatch()
		return nil, true, t.ctxErr(req, err)
	}
	if err := pc.bw.Flush(); err != nil {
		watch.unwatch()
		return nil, true, t.ctxErr(req, err)
	}
	if t.headerTimeout > 0 {
		pc.SetReadDeadline(time.Now().Add(t.headerTimeout))
	}
	pc.lim.start(t.maxHeader)
	if _, err := pc.br.Peek(1); err != nil {
		fired := !watch.unwatch()
		if req.Context().Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			return nil, true, fmt.Errorf("%w (%w)", errNoResponse, err)
		}
		if fired && errors.Is(err, os.ErrDeadlineExceeded) && t.rescue(pc, req) {
			return nil, true, errConnKept
		}
		return nil, true, t.ctxErr(req, err)
	}
	var resp *http.Response
	for {
		r, err := http.ReadResponse(pc.br, req)
		if err != nil {
			watch.unwatch()
			if pc.lim.hit {
				return nil, true, &responseHeaderTooLargeError{limit: t.maxHeader}
			}
			return nil, true, t.ctxErr(req, err)
		}
		if r.StatusCode >= 100 && r.StatusCode < 200 {
			if r.StatusCode == http.StatusSwitchingProtocols {
				watch.unwatch()
				return nil, true, errors.New("upstream switched protocols without being asked")
			}
			continue // 103 Early Hints and the like
		}
		resp = r
		break
	}
	pc.lim.stop()
	if t.headerTimeout > 0 {
		pc.SetReadDeadline(time.Time{})
	}
	reuse := !resp.Close && !req.Close
	if resp.Body == http.NoBody {
		if !watch.unwatch() {
			pc.unpoison() // cancelled after the response came: the connection is still good
		}
		t.release(pc, reuse)
		return resp, true, nil
	}
	resp.Body = &h1Body{rc: resp.Body, pc: pc, t: t, reuse: reuse, watch: watch}
	return resp, true, nil
}

func (t *h1Transport) release(pc *h1Conn, reuse bool) {
	if reuse && pc.br.Buffered() == 0 {
		t.put(pc)
		return
	}
	pc.Close()
}

// ctxErr prefers the context's error when the request was cancelled.
func (t *h1Transport) ctxErr(req *http.Request, err error) error {
	if cerr := req.Context().Err(); cerr != nil {
		return cerr
	}
	return err
}

// h1Body returns its connection to the pool once read to the end, and
// closes it if closed early.
type h1Body struct {
	rc    io.ReadCloser
	pc    *h1Conn
	t     *h1Transport
	reuse bool
	watch onCancel
	once  sync.Once
	eof   bool
	done  bool // finish ran: pc may serve another request
}

// Buffered returns how many bytes of the body have arrived and wait to be
// read: when it is not zero, the next Read returns without waiting for
// the upstream (a chunk whose size line alone has come excepted). Only
// the body's reader may call it.
func (b *h1Body) Buffered() int {
	if b.done {
		return 0
	}
	return b.pc.br.Buffered()
}

func (b *h1Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
		b.finish()
	}
	return n, err
}

func (b *h1Body) Close() error {
	err := b.rc.Close()
	if err == nil {
		b.eof = true // Close read the rest of a framed body: the connection is clean
	}
	b.finish()
	return err
}

func (b *h1Body) finish() {
	b.once.Do(func() {
		b.done = true
		cancelled := !b.watch.unwatch() // the context fired first and poisoned the deadline
		if b.eof {
			if cancelled {
				b.pc.unpoison() // read to its end: the connection is still good
			}
			b.t.release(b.pc, b.reuse)
			return
		}
		b.pc.Close()
	})
}

// writeRequest writes req with body as req.Write would, for the requests
// fits admits (no body or one of known length, no trailers), without
// Write's formatting, header sorting and transfer machinery. Header
// fields keep their order within a name, not across names.
func writeRequest(bw *bufio.Writer, req *http.Request, body []byte) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	host, err := httpguts.PunycodeHostPort(host)
	if err != nil {
		return err
	}
	if !httpguts.ValidHostHeader(host) {
		return errors.New("http: invalid Host header")
	}
	host = removeZone(host)
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(req.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	ua := "Go-http-client/1.1" // net/http's default
	if vv, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(vv) > 0 {
			ua = vv[0]
		}
	}
	if ua = headerValue(ua); ua != "" {
		writeField(bw, "User-Agent", ua)
	}
	// Request.Write sends a length for every body, and a zero one for
	// the methods that usually have a body.
	if len(body) > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		var n [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(n[:0], int64(len(body)), 10))
		bw.WriteString("\r\n")
	}
	for k, vv := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue // dropped, as Request.Write does
		}
		for _, v := range vv {
			writeField(bw, k, headerValue(v))
		}
	}
	bw.WriteString("\r\n")
	_, err = bw.Write(body)
	return err
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// headerValue makes v safe to send as Request.Write does: line breaks
// become spaces, and surrounding space goes.
func headerValue(v string) string {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\n", " ", "\r", " ").Replace(v)
	}
	return textproto.TrimString(v)
}

// removeZone drops an IPv6 zone from a Host value, as net/http does.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}
