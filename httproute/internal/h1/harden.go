package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/oneport/oneport/internal/rawsock"
)

// headerLimit bounds what the response header of a connection to an
// upstream may read. It sits between the connection and its bufio.Reader,
// so it counts what the header made the reader fetch, up to one buffer
// more than the header itself.
type headerLimit struct {
	r      io.Reader
	on     bool
	remain int
	hit    bool // the header ran past the limit
}

// start bounds reads to limit bytes (plus a reader's buffer, net/http's
// slack) until stop.
func (l *headerLimit) start(limit int) {
	l.on, l.remain, l.hit = true, limit+4096, false
}

func (l *headerLimit) stop() { l.on = false }

func (l *headerLimit) Read(p []byte) (int, error) {
	if !l.on {
		return l.r.Read(p)
	}
	if l.remain <= 0 {
		l.hit = true
		return 0, errResponseHeaderLimit
	}
	if len(p) > l.remain {
		p = p[:l.remain]
	}
	n, err := l.r.Read(p)
	l.remain -= n
	return n, err
}

var errResponseHeaderLimit = &responseHeaderTooLargeError{}

// responseHeaderTooLargeError reports an upstream whose response header
// ran past the limit; the client gets a 502 that says so.
type responseHeaderTooLargeError struct{ limit int }

func (e *responseHeaderTooLargeError) Error() string {
	return "response header larger than " + strconv.Itoa(e.limit) + " bytes"
}

// Rescuing the connection of a request cancelled while it waited for its
// response: the upstream has the whole request and will answer, so
// rather than close the connection (and open a new one for the next
// request), rescue reads a small, quick answer to its end and keeps the
// connection. A flood of requests cancelled right after they are sent
// (HTTP/2 rapid reset) then reuses connections instead of opening one
// each. Anything longer or slower closes the connection, which is how
// the upstream learns of the cancel; it learns at most rescueWindow late.
const (
	rescueWindow  = 50 * time.Millisecond
	maxRescueBody = 64 << 10
)

// errConnKept reports a cancelled request whose connection rescue kept.
var errConnKept = errors.New("request cancelled; connection kept")

// rescue reads the response to req, which was cancelled before any of it
// arrived, and returns pc to the pool if it could be read to its end
// within rescueWindow; otherwise the caller closes pc.
func (t *h1Transport) rescue(pc *h1Conn, req *http.Request) bool {
	if req.Close || pc.br.Buffered() > 0 {
		return false
	}
	pc.unpoison()
	pc.SetReadDeadline(time.Now().Add(rescueWindow))
	pc.lim.start(t.maxHeader)
	var resp *http.Response
	for {
		r, err := http.ReadResponse(pc.br, req)
		if err != nil || r.StatusCode == http.StatusSwitchingProtocols {
			return false
		}
		if r.StatusCode >= 200 {
			resp = r
			break
		}
	}
	pc.lim.stop()
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxRescueBody+1))
	if err != nil || n > maxRescueBody || resp.Close {
		return false
	}
	resp.Body.Close()
	if pc.br.Buffered() > 0 {
		return false
	}
	pc.SetDeadline(time.Time{})
	t.put(pc)
	return true
}

// unpoison clears the deadline a cancel set, once it is set: the caller
// knows the cancel fired, and its function runs for no more than that.
func (pc *h1Conn) unpoison() {
	for !pc.poisoned.Load() {
		runtime.Gosched()
	}
	pc.SetDeadline(time.Time{})
}

// framedTwice reports whether a chunked request also had a Content-Length
// field, which http.ReadRequest removes. hdr is what was buffered before
// the request was read: if it holds the whole header, reading did not
// refill the buffer and hdr is still that header; if not, the answer is
// true, and the connection closes for want of knowing.
func framedTwice(hdr []byte) bool {
	end := bytes.Index(hdr, []byte("\n\r\n"))
	if end < 0 {
		if end = bytes.Index(hdr, []byte("\n\n")); end < 0 {
			return true
		}
	}
	const name = "content-length"
	for line := range bytes.SplitSeq(hdr[:end+1], []byte("\n")) {
		if len(line) >= len(name) && bytes.EqualFold(line[:len(name)], []byte(name)) {
			return true
		}
	}
	return false
}

// pendingDial is a connection being opened for a request.
type pendingDial struct {
	done chan struct{} // closed when pc or err is set
	pc   *h1Conn
	err  error
	gone bool // the request left: the connection goes to the pool
}

// dialFor opens a connection for a request. The dial runs on if the
// request is cancelled meanwhile, and its connection then waits in the
// pool for the next request: a cancelled dial would have cost the
// upstream a connection all the same. The caller holds a dial slot, which
// the dial gives back.
func (t *h1Transport) dialFor(ctx context.Context) (*h1Conn, error) {
	d := &pendingDial{done: make(chan struct{})}
	go func() {
		c, err := t.dial(context.WithoutCancel(ctx)) // the dialer's timeout still bounds it
		var pc *h1Conn
		if err == nil {
			rw := rawsock.NewConn(c)
			pc = &h1Conn{Conn: c, bw: bufio.NewWriterSize(rw, 4<<10)}
			pc.lim.r = rw
			pc.br = bufio.NewReaderSize(&pc.lim, 4<<10)
		}
		t.mu.Lock()
		t.dialing--
		gone := d.gone
		d.pc, d.err = pc, err
		close(d.done)
		t.wakeLocked()
		t.mu.Unlock()
		if gone && pc != nil {
			t.put(pc)
		}
	}()
	select {
	case <-d.done:
		return d.pc, d.err
	case <-ctx.Done():
	}
	t.mu.Lock()
	select {
	case <-d.done:
		t.mu.Unlock()
		if d.pc != nil {
			t.put(d.pc)
		}
	default:
		d.gone = true
		t.mu.Unlock()
	}
	return nil, ctx.Err()
}

// waitFreed waits, with t.mu held, until a connection or a dial slot
// frees, and returns with t.mu held; or until ctx is done, and returns
// its error without the lock.
func (t *h1Transport) waitFreed(ctx context.Context) error {
	if t.freed == nil {
		t.freed = make(chan struct{})
	}
	freed := t.freed
	t.mu.Unlock()
	select {
	case <-freed:
		t.mu.Lock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
