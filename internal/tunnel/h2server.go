package tunnel

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oneport/oneport/internal/xconnect/h2ws"
)

// A WebSocket over HTTP/2 (RFC 8441) arrives as an extended CONNECT
// stream: method CONNECT, :protocol "websocket", and no handshake key.
// github.com/coder/websocket accepts only HTTP/1.1 upgrades, so the
// stream is dressed as one (asHTTP1): the request gains the upgrade
// headers and a key, and the ResponseWriter answers Accept's 101 with the
// stream's 200 and hands over the stream itself as the hijacked
// connection. Unlike a hijacked HTTP/1.1 connection, the stream ends when
// the handler returns, so ServeHTTP waits for the session to end.

// asHTTP1 returns the HTTP/1.1 upgrade request and the ResponseWriter
// that websocket.Accept needs for the extended CONNECT r on w. The
// stream's connection is closed once the session is over.
func asHTTP1(w http.ResponseWriter, r *http.Request) (*h2Writer, *http.Request) {
	return &h2Writer{ResponseWriter: w, body: r.Body, remote: r.RemoteAddr}, h2ws.Upgrade(r)
}

// h2Writer is the ResponseWriter websocket.Accept sees for an extended
// CONNECT stream. It has no Unwrap: Accept must find its Hijack, not the
// HTTP/2 writer's lack of one.
type h2Writer struct {
	http.ResponseWriter
	body   io.ReadCloser
	remote string
	conn   *h2Conn
}

// WriteHeader answers the upgrade's 101 with 200, the RFC 8441 success,
// without the HTTP/1.1 handshake headers, and sends it at once.
func (w *h2Writer) WriteHeader(code int) {
	if code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	for _, k := range []string{"Upgrade", "Connection", "Sec-WebSocket-Accept"} {
		w.Header().Del(k)
	}
	w.ResponseWriter.WriteHeader(http.StatusOK)
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack returns the stream as a connection: reads read the request
// body, writes write the response body and flush it.
func (w *h2Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.conn = &h2Conn{r: w.body, w: w.ResponseWriter, rc: http.NewResponseController(w.ResponseWriter),
		remote: addr(w.remote)}
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// finish waits until no write is in progress and makes later writes
// fail, so that the handler may return: writing to an HTTP/2 stream
// after its handler returned panics. A write stuck on flow control is cut
// after a second.
func (w *h2Writer) finish() {
	if w.conn == nil {
		return
	}
	w.conn.closed.Store(true)
	w.conn.rc.SetWriteDeadline(time.Now().Add(time.Second))
	w.conn.mu.Lock()
	w.conn.done = true
	w.conn.mu.Unlock()
}

// h2Conn is an extended CONNECT stream as a net.Conn.
type h2Conn struct {
	r      io.ReadCloser
	w      http.ResponseWriter
	rc     *http.ResponseController
	remote net.Addr

	closed atomic.Bool
	mu     sync.Mutex // held by writes
	done   bool       // the handler is returning: no more writes
}

func (c *h2Conn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *h2Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || c.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := c.w.Write(p)
	if err == nil {
		err = c.rc.Flush()
	}
	return n, err
}

// Close ends reading; the handler's return ends the stream.
func (c *h2Conn) Close() error {
	if !c.closed.Swap(true) {
		c.r.Close()
	}
	return nil
}

func (c *h2Conn) LocalAddr() net.Addr                { return addr("") }
func (c *h2Conn) RemoteAddr() net.Addr               { return c.remote }
func (c *h2Conn) SetDeadline(t time.Time) error      { c.SetReadDeadline(t); return c.SetWriteDeadline(t) }
func (c *h2Conn) SetReadDeadline(t time.Time) error  { return c.rc.SetReadDeadline(t) }
func (c *h2Conn) SetWriteDeadline(t time.Time) error { return c.rc.SetWriteDeadline(t) }

// addr is a net.Addr given as text.
type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }
