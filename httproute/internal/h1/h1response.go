package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// h1response is the http.ResponseWriter of Server's HTTP/1 loop. It is
// used by one request and pooled.
type h1response struct {
	c      *h1conn
	req    *http.Request
	header http.Header
	snap   http.Header // header as of WriteHeader, once the handler may change it
	bw     *bufio.Writer
	body   h1body

	status        int
	contentLength int64 // -1: not declared
	written       int64
	wroteHeader   bool // logically: the handler chose its status
	committed     bool // the header is on its way to the client
	chunking      bool
	handlerDone   bool
	closeAfter    bool
	hijacked      bool
	isHEAD        bool

	contMu      sync.Mutex // guards 100 Continue against the response header
	canContinue bool

	pending []byte // body bytes held back until pendingSize or the end
	pendBuf [pendingSize]byte
	scratch [64]byte
}

var responsePool sync.Pool

func getResponse(c *h1conn, req *http.Request) *h1response {
	w, _ := responsePool.Get().(*h1response)
	if w == nil {
		w = new(h1response)
	}
	w.c, w.req = c, req
	if w.header == nil {
		w.header = make(http.Header)
	}
	w.bw = getWriter(c.mc)
	w.contentLength = -1
	w.isHEAD = req.Method == "HEAD"
	w.pending = w.pendBuf[:0]
	return w
}

func putResponse(w *h1response) {
	if w.bw != nil {
		putWriter(w.bw)
	}
	if w.hijacked {
		w.header = nil // the handler that took the connection may hold it still
	} else {
		clear(w.header) // kept for the next response: one allocation fewer
	}
	w.c, w.req, w.snap, w.bw = nil, nil, nil, nil
	w.body = h1body{}
	w.status, w.contentLength, w.written = 0, 0, 0
	w.wroteHeader, w.committed, w.chunking, w.handlerDone, w.closeAfter, w.hijacked, w.isHEAD = false, false, false, false, false, false, false
	w.canContinue = false
	w.pending = nil
	responsePool.Put(w)
}

// Header returns the response header. Changes made after WriteHeader do
// not reach the response's header, only its trailers, as in net/http.
func (w *h1response) Header() http.Header {
	if w.snap == nil && w.wroteHeader && !w.committed && !w.hijacked {
		if w.contentLength != -1 && (headerHas(w.header, "Content-Type") || len(w.pending) >= 512) {
			// Nothing the rest of the body could change is left to
			// decide (ReverseProxy asks for the header after every
			// body, for trailers): send it rather than copy it.
			w.commit(w.pending)
			w.sendPending()
		} else {
			w.snap = w.header.Clone()
		}
	}
	return w.header
}

func bodyAllowedForStatus(code int) bool {
	return !(code >= 100 && code <= 199 || code == http.StatusNoContent || code == http.StatusNotModified)
}

func (w *h1response) WriteHeader(code int) {
	if w.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	if cl := w.header.Get("Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.header.Del("Content-Length")
		}
	}
}

// writeInformational sends a 1xx response with the current header.
func (w *h1response) writeInformational(code int) {
	if w.body.expect {
		w.contMu.Lock()
		defer w.contMu.Unlock()
		if code == http.StatusContinue {
			w.canContinue = false
		}
	}
	w.writeStatusLine(code)
	w.header.WriteSubset(w.bw, map[string]bool{"Content-Length": true, "Transfer-Encoding": true})
	w.bw.WriteString("\r\n")
	w.bw.Flush()
}

func (w *h1response) writeStatusLine(code int) {
	b := w.scratch[:0]
	if w.req.ProtoAtLeast(1, 1) {
		b = append(b, "HTTP/1.1 "...)
	} else {
		b = append(b, "HTTP/1.0 "...)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	b = append(b, "\r\n"...)
	w.bw.Write(b)
}

// sendContinue answers Expect: 100-continue when the handler first reads
// the body, unless the response has begun.
func (w *h1response) sendContinue() {
	w.contMu.Lock()
	defer w.contMu.Unlock()
	if !w.canContinue {
		return
	}
	w.canContinue = false
	w.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	w.bw.Flush()
}

func (w *h1response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.contentLength != -1 && w.written+int64(len(p)) > w.contentLength {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed {
		if len(w.pending)+len(p) <= cap(w.pending) {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		first := p
		if len(w.pending) > 0 {
			first = w.pending
		}
		w.commit(first)
		if err := w.sendPending(); err != nil {
			return 0, err
		}
	}
	return w.writeBody(p)
}

func (w *h1response) WriteString(s string) (int, error) {
	if len(s) <= cap(w.pending)-len(w.pending) && w.wroteHeader && !w.committed && !w.hijacked &&
		bodyAllowedForStatus(w.status) && (w.contentLength == -1 || w.written+int64(len(s)) <= w.contentLength) {
		w.written += int64(len(s))
		w.pending = append(w.pending, s...)
		return len(s), nil
	}
	return w.Write([]byte(s))
}

func (w *h1response) sendPending() error {
	if len(w.pending) == 0 {
		return nil
	}
	_, err := w.writeBody(w.pending)
	w.pending = w.pending[:0]
	return err
}

// writeBody frames p as the response's body.
func (w *h1response) writeBody(p []byte) (int, error) {
	if w.isHEAD {
		return len(p), nil
	}
	if w.chunking {
		b := strconv.AppendInt(w.scratch[:0], int64(len(p)), 16)
		b = append(b, '\r', '\n')
		w.bw.Write(b)
		w.bw.Write(p)
		if _, err := w.bw.WriteString("\r\n"); err != nil {
			w.closeAfter = true
			return 0, err
		}
		return len(p), nil
	}
	n, err := w.bw.Write(p)
	if err != nil {
		w.closeAfter = true
	}
	return n, err
}

// commit decides the response's framing and writes its header; first is
// the start of the body, for a Content-Length and content sniffing.
func (w *h1response) commit(first []byte) {
	w.committed = true
	if w.body.expect {
		w.contMu.Lock()
		w.canContinue = false
		w.contMu.Unlock()
	}
	h, req := w.header, w.req
	if w.snap != nil {
		h = w.snap
	}
	trailers := len(h["Trailer"]) > 0
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			delete(h, k)
			trailers = true
		}
	}
	te := h.Get("Transfer-Encoding")
	hasTE := te != ""
	bodyAllowed := bodyAllowedForStatus(w.status)
	if w.handlerDone && !trailers && !hasTE && bodyAllowed && !headerHas(h, "Content-Length") && (!w.isHEAD || len(first) > 0) {
		w.contentLength = int64(len(first))
		h["Content-Length"] = []string{strconv.Itoa(len(first))}
	}
	wants10KeepAlive := !req.ProtoAtLeast(1, 1) && hasToken(req.Header.Get("Connection"), "keep-alive")
	hasCL := w.contentLength != -1
	if wants10KeepAlive && (w.isHEAD || hasCL || !bodyAllowed) {
		if _, ok := h["Connection"]; !ok {
			h["Connection"] = []string{"keep-alive"}
		}
	} else if !req.ProtoAtLeast(1, 1) || req.Close {
		w.closeAfter = true
	}
	if hasToken(h.Get("Connection"), "close") || w.c.srv.closing.Load() {
		w.closeAfter = true
	}
	if w.body.expect && !w.body.sawEOF.Load() {
		w.closeAfter = true
	}
	if bodyAllowed {
		_, haveType := h["Content-Type"]
		if !haveType && !hasTE && h.Get("Content-Encoding") == "" && len(first) > 0 {
			h["Content-Type"] = []string{http.DetectContentType(first)}
		}
	} else {
		if w.status == http.StatusNotModified {
			delete(h, "Content-Type")
		}
		delete(h, "Content-Length")
		delete(h, "Transfer-Encoding")
	}
	if _, ok := h["Date"]; !ok {
		h["Date"] = []string{httpDate()}
	}
	if hasCL && hasTE && te != "identity" {
		delete(h, "Content-Length")
		hasCL = false
		w.contentLength = -1
	}
	switch {
	case w.isHEAD || !bodyAllowed:
		delete(h, "Transfer-Encoding")
	case hasCL:
		delete(h, "Transfer-Encoding")
	case req.ProtoAtLeast(1, 1):
		if te == "identity" {
			w.closeAfter = true
			delete(h, "Transfer-Encoding")
		} else {
			w.chunking = true
			h["Transfer-Encoding"] = []string{"chunked"}
		}
	default:
		w.closeAfter = true
		delete(h, "Transfer-Encoding")
	}
	if w.closeAfter && !hasToken(h.Get("Connection"), "close") && !isProtocolSwitch(w.status, h) {
		delete(h, "Connection")
		if req.ProtoAtLeast(1, 1) {
			h["Connection"] = []string{"close"}
		}
	}
	w.writeStatusLine(w.status)
	h.Write(w.bw)
	w.bw.WriteString("\r\n")
}

// isProtocolSwitch reports whether a response switches protocols: its
// Connection: Upgrade must stay even when the server closes afterwards.
func isProtocolSwitch(status int, h http.Header) bool {
	return status == http.StatusSwitchingProtocols && h.Get("Upgrade") != ""
}

func headerHas(h http.Header, key string) bool {
	_, ok := h[key]
	return ok
}

// Flush sends what the handler wrote so far.
func (w *h1response) Flush() { w.FlushError() }

// FlushError is Flush reporting the write's error, for
// http.ResponseController.
func (w *h1response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(w.pending)
		if err := w.sendPending(); err != nil {
			return err
		}
	}
	err := w.bw.Flush()
	if err != nil {
		w.closeAfter = true
	}
	return err
}

// finish completes the response after the handler returned.
func (w *h1response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.handlerDone = true
	if !w.committed {
		w.commit(w.pending)
		w.sendPending()
	}
	if w.chunking {
		w.bw.WriteString("0\r\n")
		w.writeTrailers()
		w.bw.WriteString("\r\n")
	}
	if err := w.bw.Flush(); err != nil {
		w.closeAfter = true
	}
	if w.contentLength != -1 && !w.isHEAD && bodyAllowedForStatus(w.status) && w.written != w.contentLength {
		// The client waits for bytes that will not come.
		w.closeAfter = true
	}
}

// writeTrailers writes the trailer fields the handler declared in the
// Trailer header or set with http.TrailerPrefix.
func (w *h1response) writeTrailers() {
	t := make(http.Header)
	for _, v := range w.header["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			switch k {
			case "", "Transfer-Encoding", "Trailer", "Content-Length":
				continue
			}
			if vv := w.header[k]; len(vv) > 0 {
				t[k] = vv
			}
		}
	}
	for k, vv := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			t[http.CanonicalHeaderKey(strings.TrimPrefix(k, http.TrailerPrefix))] = vv
		}
	}
	t.Write(w.bw)
}

// drainBody reads what the handler left of the request body, so the
// connection can carry the next request, or marks it for closing.
func (w *h1response) drainBody() {
	b := &w.body
	if b.rc == nil || b.sawEOF.Load() {
		return
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed || (b.expect && !b.continued.Load()) {
		w.closeAfter = true
		return
	}
	n, err := io.CopyN(io.Discard, b, maxPostHandlerRead+1)
	if err != io.EOF || n > maxPostHandlerRead {
		w.closeAfter = true
	}
}

// Hijack hands the connection to the handler, for upgrades. As in
// net/http, a status the handler chose (a 101 set with WriteHeader, as
// websocket.Accept does) is sent first: the response header and what the
// engine already framed are flushed; body bytes still held back are
// dropped. The returned writer is empty and writes to the connection; the
// reader holds the bytes that followed the request.
func (w *h1response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.body.expect {
		// No 100 Continue on the connection the handler now owns.
		w.contMu.Lock()
		w.canContinue = false
		w.contMu.Unlock()
	}
	if w.wroteHeader {
		if !w.committed {
			w.commit(nil)
		}
		w.bw.Flush() // an error shows on the handler's first write
	}
	c := w.c
	c.watch.stop()
	w.hijacked, c.hijacked = true, true
	c.tcp.SetReadDeadline(time.Time{})
	c.state.Store(stateClosed)
	c.srv.untrack(c)
	br := c.br
	c.br = nil
	if br.Buffered() == 0 {
		putReader(br)
		br = bufio.NewReaderSize(c.mc, 4<<10)
	} else {
		// The buffered bytes are the upgraded protocol's: hand them over.
		br = bufio.NewReaderSize(io.MultiReader(byteReader(br), c.mc), 4<<10)
	}
	bw := w.bw
	w.bw = nil
	bw.Reset(c.mc)
	return c.mc, bufio.NewReadWriter(br, bw), nil
}

// byteReader returns what br holds, as a reader that never touches br's
// source.
func byteReader(br *bufio.Reader) io.Reader {
	b, _ := br.Peek(br.Buffered())
	return strings.NewReader(string(b))
}

// h1body is the request body as the handler sees it: it sends 100
// Continue on the first read when the client asked for it, notes the end
// of the body, and never reads the rest of the body on Close (net/http's
// ReadRequest bodies do).
type h1body struct {
	rc        io.ReadCloser
	w         *h1response
	expect    bool
	continued atomic.Bool
	sawEOF    atomic.Bool

	mu     sync.Mutex
	closed bool
}

func (b *h1body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.expect && !b.continued.Load() {
		b.continued.Store(true)
		b.w.sendContinue()
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		if !b.sawEOF.Swap(true) {
			b.w.c.watch.arm()
		}
	}
	return n, err
}

func (b *h1body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// watcher cancels a request's context when its client closes the
// connection while the handler runs. It starts watchDelay after it is
// armed, so short requests never pay for it.
type watcher struct {
	c *h1conn

	mu     sync.Mutex
	state  uint8
	cancel context.CancelFunc
	timer  *time.Timer
	done   chan struct{}
}

const (
	watchOff uint8 = iota
	watchArmed
	watchRunning
	watchStopping
)

func (wt *watcher) setCancel(cancel context.CancelFunc) {
	wt.mu.Lock()
	wt.cancel = cancel
	wt.mu.Unlock()
}

// arm starts the watch after watchDelay.
func (wt *watcher) arm() {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if wt.state != watchOff {
		return
	}
	wt.state = watchArmed
	if wt.timer == nil {
		wt.timer = time.AfterFunc(watchDelay, wt.run)
	} else {
		wt.timer.Reset(watchDelay)
	}
}

func (wt *watcher) run() {
	wt.mu.Lock()
	if wt.state != watchArmed {
		wt.mu.Unlock()
		return
	}
	wt.state = watchRunning
	done := make(chan struct{})
	wt.done = done
	c := wt.c
	wt.mu.Unlock()
	defer close(done)
	runHook(&hookWatching)
	for {
		err := c.waitReadable()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			wt.mu.Lock()
			if wt.state == watchStopping {
				wt.mu.Unlock()
				return
			}
			// The deadline left from the idle wait.
			c.tcp.SetReadDeadline(time.Time{})
			wt.mu.Unlock()
			continue
		}
		if err != nil {
			wt.mu.Lock()
			if wt.state == watchRunning && wt.cancel != nil {
				c.slot.cancel(wt.cancel)
			}
			wt.mu.Unlock()
		}
		return // gone, or the next request is here
	}
}

// stop ends the watch and returns once it no longer reads the connection.
func (wt *watcher) stop() {
	wt.mu.Lock()
	switch wt.state {
	case watchOff:
		wt.cancel = nil
		wt.mu.Unlock()
		return
	case watchArmed:
		wt.timer.Stop() // a run already started sees watchOff and returns
		wt.state, wt.cancel = watchOff, nil
		wt.mu.Unlock()
		return
	}
	wt.state = watchStopping
	done := wt.done
	c := wt.c
	c.tcp.SetReadDeadline(aLongTimeAgo)
	wt.mu.Unlock()
	<-done
	c.tcp.SetReadDeadline(time.Time{})
	wt.mu.Lock()
	wt.state, wt.cancel, wt.done = watchOff, nil, nil
	wt.mu.Unlock()
}

var aLongTimeAgo = time.Unix(1, 0)

// httpDate returns the Date header value, formatted once a second.
func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := cachedDate.Load(); d != nil && d.sec == sec {
		return d.s
	}
	d := &dateCache{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	cachedDate.Store(d)
	return d.s
}

type dateCache struct {
	sec int64
	s   string
}

var cachedDate atomic.Pointer[dateCache]
