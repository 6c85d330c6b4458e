package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/oneport/oneport/internal/rawsock"
	"github.com/oneport/oneport/mux"
)

// Server is oneport's own HTTP/1.1 server engine. Plain HTTP/1
// connections that the mux sniffed are served by Server's own HTTP/1.1
// loop; everything else (h2c, and HTTP that came out of TLS) goes to
// Fallback.
//
// The HTTP/1 loop exists for what net/http's server costs a proxy in front
// of model servers. net/http keeps two 4 KiB buffers and a grown goroutine
// stack for every idle keep-alive connection, and starts a goroutine per
// request to notice clients that leave. Once a connection of Server's has
// been idle for a moment, it holds no buffer and no goroutine: it waits in
// an epoll set that one goroutine watches for all of them. Server watches
// for clients that leave only when a request runs longer than a tenth of
// a second, which is when cancelling the upstream saves anything.
//
// Requests are parsed by http.ReadRequest, so framing, header validation
// and smuggling defences are net/http's own; responses are framed as
// net/http frames them (Content-Length for short bodies, chunked
// otherwise, Date, content sniffing, 1xx, 100-continue, trailers, Hijack).
// Unlike net/http's HTTP/1 server, a handler may read the request body
// after it has started the response (full duplex), as a proxy must, and a
// request framed by both Content-Length and Transfer-Encoding closes its
// connection after the response (RFC 9112 6.1).
//
// Create it with NewServer. Fields must not change once serving starts.
type Server struct {
	// Handler answers requests.
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request's header once its first
	// byte has arrived; zero means no limit.
	ReadHeaderTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request; zero means no limit.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header; zero means
	// http.DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// Fallback receives the connections this engine does not serve: h2c,
	// HTTP that came out of TLS, anything not on a TCP socket. It must be
	// set.
	Fallback mux.Target
	// HTTPServer is what requests' contexts carry under
	// http.ServerContextKey, where net/http's server puts itself; nil
	// means an empty http.Server. httputil.ReverseProxy aborts a response
	// whose upstream body breaks off (http.ErrAbortHandler) only when the
	// key is there, as under net/http's server; without it the response
	// would end cleanly and a cut stream would look complete.
	HTTPServer *http.Server

	log *slog.Logger

	baseOnce sync.Once
	base     context.Context // of every connection

	mu      sync.Mutex
	conns   map[*h1conn]struct{}
	closing atomic.Bool

	parkOnce sync.Once
	parker   *parker // nil where idle connections wait in goroutines
}

// NewServer returns a Server for h that logs to log (nil discards).
func NewServer(h http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{Handler: h, log: log}
}

// HandleConn serves c until the client or the server closes it; it makes
// Server a mux.Target.
func (s *Server) HandleConn(c net.Conn) {
	mc, ok := c.(*mux.Conn)
	if !ok || mc.Sniffed().Proto != mux.ProtoHTTP {
		s.Fallback.HandleConn(c)
		return
	}
	tcp, ok := mc.NetConn().(*net.TCPConn)
	if !ok {
		s.Fallback.HandleConn(c)
		return
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		s.Fallback.HandleConn(c)
		return
	}
	hc := &h1conn{srv: s, mc: mc, tcp: tcp, raw: raw, remote: tcp.RemoteAddr().String()}
	hc.src.c = hc
	hc.peekFn = hc.peek
	hc.watch.c = hc
	if !s.track(hc) {
		mc.Close()
		return
	}
	hc.ctx = context.WithValue(context.WithValue(s.baseContext(), http.LocalAddrContextKey, tcp.LocalAddr()),
		cancelSlotKey{}, &hc.slot)
	hc.serve()
}

// baseContext returns the context every connection's requests derive from.
func (s *Server) baseContext() context.Context {
	s.baseOnce.Do(func() {
		hs := s.HTTPServer
		if hs == nil {
			hs = &http.Server{Handler: s.Handler}
		}
		s.base = context.WithValue(context.Background(), http.ServerContextKey, hs)
	})
	return s.base
}

// Serve serves the connections ln accepts, as HandleConn does, until ln
// fails. It returns http.ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			return err
		}
		go s.HandleConn(c)
	}
}

func (s *Server) track(c *h1conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*h1conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *h1conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// closeIdle closes the HTTP/1 connections that wait for a request and
// reports how many connections remain.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	var idle []*h1conn
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			idle = append(idle, c)
		}
	}
	s.mu.Unlock()
	for _, c := range idle {
		if s.parker != nil && s.parker.take(c) {
			c.close() // parked: no goroutine of its own to do it
		} else {
			c.mc.Close() // its goroutine sees the error and cleans up
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// park hands c to the parker, which starts it again when its client
// sends; false if there is no parker.
func (s *Server) park(c *h1conn, since time.Time) bool {
	s.parkOnce.Do(func() {
		p, err := newParker()
		if err != nil {
			s.log.Debug("idle connections wait in goroutines", "err", err)
			return
		}
		s.parker = p
	})
	if s.parker == nil {
		return false
	}
	c.tcp.SetReadDeadline(time.Time{}) // the parker keeps the idle timeout
	return s.parker.add(c, since)
}

// Shutdown stops taking connections, closes idle ones, lets requests in
// progress finish (their connections close after the response), and
// returns once none is left or ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	wait := time.Millisecond
	for s.closeIdle() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
	s.stopParker()
	return nil
}

func (s *Server) stopParker() {
	s.parkOnce.Do(func() {}) // no parker from now on
	if s.parker != nil {
		s.parker.stop()
	}
}

// Close closes every connection at once, idle or not.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.mu.Lock()
	conns := make([]*h1conn, 0, len(s.conns))
	for c := range s.conns {
		c.state.Store(stateClosed)
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.stopParker()
	for _, c := range conns {
		if s.parker != nil && s.parker.take(c) {
			c.close()
		} else {
			c.mc.Close()
		}
	}
	return nil
}

// Connection states, for Shutdown.
const (
	stateActive int32 = iota
	stateIdle
	stateClosed
)

const (
	// idlePark is how long an idle connection waits in the goroutine that
	// served its last request, reading into a buffer, before it gives both
	// up and is parked: under load the next request usually comes sooner.
	idlePark = 50 * time.Millisecond
	// watchDelay is how long a request runs before the server starts
	// watching for the client to leave. A watch costs a goroutine, a
	// system call and a hand-off when it stops, tens of microseconds of
	// CPU: on a busy box, where queueing alone makes requests take
	// milliseconds, a shorter delay had every small request pay it. An
	// upstream whose client left within the delay wastes at most that
	// much work.
	watchDelay = 100 * time.Millisecond
	// maxPostHandlerRead is how much of a request body the handler left
	// unread is discarded to keep the connection; net/http's figure.
	maxPostHandlerRead = 256 << 10
	// pendingSize is how much of a body is held before the header goes
	// out, so short bodies get a Content-Length; net/http's figure.
	pendingSize = 2048
)

// h1conn is one plain HTTP/1 connection. Only the goroutine serving it
// touches its fields, except state (Shutdown) and watch (its own lock).
type h1conn struct {
	srv    *Server
	mc     *mux.Conn
	tcp    *net.TCPConn
	raw    syscall.RawConn
	remote string
	ctx    context.Context

	state atomic.Int32
	slot  cancelSlot // the current request's upstream connection, for its cancellation
	src   h1source
	br    *bufio.Reader // nil while idle
	watch watcher

	// Guarded by the parker's lock: the connection's epoll token while
	// parked, and its place in the parker's list of idle deadlines.
	parkTok            uint32
	parkPrev, parkNext *h1conn
	idleAt             time.Time
	inEpoll            bool

	peekFn     func(fd uintptr) bool
	peekEOF    bool
	hijacked   bool
	lastMethod string
	one        [1]byte
}

// serve runs the request loop until the connection closes or is parked.
func (c *h1conn) serve() {
	fresh := true // the sniffed bytes are the first request
	for {
		if c.br == nil {
			if len(c.mc.Peeked()) == 0 && !fresh {
				if !c.waitIdle() {
					return
				}
			} else {
				c.br = getReader(&c.src)
			}
		}
		fresh = false
		if !c.state.CompareAndSwap(stateIdle, stateActive) && c.state.Load() != stateActive {
			c.close()
			return
		}
		if !c.serveOne() {
			if !c.hijacked {
				c.close()
			}
			return
		}
		if !c.state.CompareAndSwap(stateActive, stateIdle) || c.srv.closing.Load() {
			c.close()
			return
		}
		if c.br.Buffered() == 0 {
			putReader(c.br)
			c.br = nil
		}
	}
}

// waitIdle waits for the next request and reports whether it came. For
// idlePark it waits in a read, into a buffer: under load the next request
// comes sooner, and one read is all it costs. After that it gives the
// buffer back and parks the connection, or where there is no parker moves
// it to a fresh goroutine, whose stack is small.
func (c *h1conn) waitIdle() bool {
	c.tcp.SetReadDeadline(time.Now().Add(idlePark))
	c.br = getReader(&c.src)
	_, err := c.br.Peek(1)
	if err == nil {
		return true
	}
	putReader(c.br)
	c.br = nil
	if errors.Is(err, os.ErrDeadlineExceeded) {
		since := time.Now().Add(-idlePark)
		if !c.srv.park(c, since) {
			go c.parked(since)
		}
		runHook(&hookIdle)
		return false
	}
	c.close()
	return false
}

// resume serves a connection the parker saw readable.
func (c *h1conn) resume() {
	c.br = getReader(&c.src)
	c.serve()
}

// parked waits for the next request in a goroutine with a small stack,
// then serves on; it is how idle connections wait where there is no
// parker.
func (c *h1conn) parked(since time.Time) {
	if t := c.srv.IdleTimeout; t > 0 {
		c.tcp.SetReadDeadline(since.Add(t))
	} else {
		c.tcp.SetReadDeadline(time.Time{})
	}
	if c.waitReadable() != nil {
		c.close()
		return
	}
	c.br = getReader(&c.src)
	c.serve()
}

// waitReadable waits until the connection has a byte to read, without
// reading it. It returns io.EOF when the client has closed, the deadline
// error, or the socket's error.
func (c *h1conn) waitReadable() error {
	c.peekEOF = false
	if err := c.raw.Read(c.peekFn); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return os.ErrDeadlineExceeded
		}
		return err
	}
	if c.peekEOF {
		return io.EOF
	}
	return nil
}

// peek is the RawConn callback of waitReadable: it reports true once a
// byte, the end of the stream or an error is there.
func (c *h1conn) peek(fd uintptr) bool {
	n, e := rawsock.Peek(fd, c.one[:1])
	switch {
	case e == syscall.EAGAIN || e == syscall.EINTR:
		return false
	case e == 0 && n == 0:
		c.peekEOF = true
	}
	return true
}

func (c *h1conn) close() {
	c.state.Store(stateClosed)
	if c.br != nil {
		putReader(c.br)
		c.br = nil
	}
	c.mc.Close()
	c.srv.untrack(c)
}

// h1source is what the request reader reads: the connection, with the
// header's size and time bounded while a header is read.
type h1source struct {
	c         *h1conn
	inHeader  bool
	fresh     bool // the next read follows a wait for readability
	deadlined bool // a header deadline is set
	remain    int64
	tooLarge  bool
	refilled  bool // a read came after hdr was taken: hdr may be overwritten
}

func (r *h1source) Read(p []byte) (int, error) {
	c := r.c
	if !r.inHeader {
		return c.mc.Read(p)
	}
	if r.remain <= 0 {
		r.tooLarge = true
		return 0, errHeaderTooLarge
	}
	if !r.fresh && !r.deadlined && c.srv.ReadHeaderTimeout > 0 {
		// The header did not come in one piece: bound the rest.
		c.tcp.SetReadDeadline(time.Now().Add(c.srv.ReadHeaderTimeout))
		r.deadlined = true
	}
	r.fresh = false
	r.refilled = true
	if int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	n, err := c.mc.Read(p)
	r.remain -= int64(n)
	runHook(&hookHeaderRead)
	return n, err
}

var errHeaderTooLarge = errors.New("request header too large")

var readerPool sync.Pool

func getReader(r io.Reader) *bufio.Reader {
	if br, ok := readerPool.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, 4<<10)
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readerPool.Put(br)
}

var writerPool sync.Pool

func getWriter(w io.Writer) *bufio.Writer {
	if bw, ok := writerPool.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, 4<<10)
}

func putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	writerPool.Put(bw)
}

// serveOne reads one request, serves it and reports whether the
// connection may carry another.
func (c *h1conn) serveOne() (keep bool) {
	src := &c.src
	src.inHeader, src.deadlined, src.tooLarge = true, false, false
	src.fresh = c.br.Buffered() == 0
	src.remain = int64(c.srv.maxHeaderBytes())
	if c.lastMethod == "POST" {
		// RFC 9112 2.2: tolerate the CRLF old clients send after a body.
		if peek, _ := c.br.Peek(4); len(peek) > 0 {
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			c.br.Discard(n)
		}
	}
	if c.br.Buffered() == 0 {
		// The read ReadRequest would start with, made here so that hdr
		// sees what it brought.
		if _, err := c.br.Peek(1); err != nil {
			src.inHeader = false
			c.refuse(err)
			return false
		}
	}
	// The header if it came whole, for framedTwice. A read after this
	// point moves the buffer's bytes under hdr, so then refilled decides.
	src.refilled = false
	hdr, _ := c.br.Peek(c.br.Buffered())
	req, err := http.ReadRequest(c.br)
	src.inHeader = false
	if err != nil {
		c.refuse(err)
		return false
	}
	c.lastMethod = req.Method
	if msg, code := checkRequest(req); code != 0 {
		c.refuse(statusError{code, msg})
		return false
	}
	if src.deadlined || req.Body != http.NoBody {
		// Bodies stream for as long as they take.
		c.tcp.SetReadDeadline(time.Time{})
	}
	ctx, cancel := context.WithCancel(c.ctx)
	c.slot.begin(ctx.Done())
	req = req.WithContext(ctx)
	req.RemoteAddr = c.remote

	w := getResponse(c, req)
	// RFC 9112 6.1: a request framed by both Content-Length and
	// Transfer-Encoding closes the connection after the response.
	// A header that came in pieces cannot be scanned afterwards: such a
	// request with Transfer-Encoding closes too, to be safe.
	w.closeAfter = req.TransferEncoding != nil && (src.refilled || framedTwice(hdr))
	expect := req.Header.Get("Expect")
	if expect != "" && !hasToken(expect, "100-continue") {
		w.header.Set("Connection", "close")
		w.closeAfter = true
		w.WriteHeader(http.StatusExpectationFailed)
		w.finish()
		putResponse(w)
		c.slot.end(cancel)
		return false
	}
	c.watch.setCancel(cancel)
	if req.Body != http.NoBody {
		w.body.rc, w.body.w = req.Body, w
		req.Body = &w.body // arms the watch at the body's end
		if expect != "" && req.ProtoAtLeast(1, 1) {
			w.body.expect, w.canContinue = true, true
		}
	} else {
		c.watch.arm()
	}

	ok := c.runHandler(w, req)
	c.watch.stop()
	if w.hijacked {
		c.slot.end(cancel)
		putResponse(w)
		return false
	}
	if ok {
		w.finish()
		w.drainBody()
	}
	c.slot.end(cancel)
	keep = ok && !w.closeAfter
	putResponse(w)
	return keep
}

// runHandler calls the handler and reports false if it panicked.
func (c *h1conn) runHandler(w *h1response, req *http.Request) (ok bool) {
	defer func() {
		if err := recover(); err != nil {
			if err != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.log.Error("http handler panicked", "client", c.remote, "path", req.URL.Path,
					"panic", fmt.Sprint(err), "stack", string(buf))
			}
			ok = false
		}
	}()
	c.srv.Handler.ServeHTTP(w, req)
	return true
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes + 4096
	}
	return http.DefaultMaxHeaderBytes + 4096 // net/http's slack
}

// statusError is a request refused with a status and a reason.
type statusError struct {
	code int
	msg  string
}

func (e statusError) Error() string { return e.msg }

// checkRequest applies what net/http's server checks beyond ReadRequest.
// ReadRequest drops the Host field, so two cases differ from net/http: an
// empty Host field is refused as missing, and an absolute-form target
// without a Host field is taken, its host being the one a proxy must use
// (RFC 9112 3.2.2).
func checkRequest(req *http.Request) (string, int) {
	if req.ProtoMajor != 1 {
		return "unsupported protocol version", http.StatusHTTPVersionNotSupported
	}
	if req.Host == "" && req.ProtoAtLeast(1, 1) && req.Method != "CONNECT" {
		return "missing required Host header", http.StatusBadRequest
	}
	if req.Host != "" && !httpguts.ValidHostHeader(req.Host) {
		return "malformed Host header", http.StatusBadRequest
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) { // ReadRequest lets a space through
			return "invalid header name", http.StatusBadRequest
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return "invalid header value", http.StatusBadRequest
			}
		}
	}
	return "", 0
}

// refuse answers a request that could not be read, in net/http's words,
// and says nothing to a client that simply left.
func (c *h1conn) refuse(err error) {
	const errorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	var msg string
	var se statusError
	switch {
	case c.src.tooLarge:
		const publicErr = "431 Request Header Fields Too Large"
		msg = "HTTP/1.1 " + publicErr + errorHeaders + publicErr
	case errors.As(err, &se):
		text := fmt.Sprintf("%d %s: %s", se.code, http.StatusText(se.code), se.msg)
		msg = "HTTP/1.1 " + text + errorHeaders + text
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, os.ErrDeadlineExceeded) || isConnError(err):
		return
	case strings.HasPrefix(err.Error(), "unsupported transfer encoding"):
		msg = "HTTP/1.1 501 Not Implemented" + errorHeaders + "Unsupported transfer encoding"
	default:
		const publicErr = "400 Bad Request"
		msg = "HTTP/1.1 " + publicErr + errorHeaders + publicErr
	}
	c.mc.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(c.mc, msg)
	if c.src.tooLarge {
		// Let the client read the answer before the rest of what it
		// sends meets a closed socket and resets the connection.
		c.tcp.CloseWrite()
		time.Sleep(500 * time.Millisecond)
	}
}

func isConnError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}
