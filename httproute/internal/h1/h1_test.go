package h1_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oneport/oneport/httproute/internal/h1"
	"github.com/oneport/oneport/internal/conntest"
	"github.com/oneport/oneport/internal/rawsock"
)

// upstreamConns counts an upstream's connections; closed receives each
// time it closes one.
type upstreamConns struct {
	open   atomic.Int64
	closed chan struct{}
}

// waitAllClosed returns once the upstream has closed every connection it
// accepted.
func (u *upstreamConns) waitAllClosed() {
	for u.open.Load() > 0 {
		<-u.closed
	}
}

// closingUpstream answers each request with keep-alive, then closes the
// connection after idle, as uvicorn does after its keep-alive timeout.
func closingUpstream(t *testing.T, idle time.Duration) (string, *atomic.Int64, *upstreamConns) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var served atomic.Int64
	conns := &upstreamConns{closed: make(chan struct{}, 100)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.open.Add(1)
			go func() {
				defer func() {
					c.Close()
					conns.open.Add(-1)
					conns.closed <- struct{}{}
				}()
				br := bufio.NewReader(c)
				for {
					c.SetReadDeadline(time.Now().Add(idle))
					req, err := http.ReadRequest(br)
					if err != nil {
						return // idle timeout: close without a word
					}
					io.Copy(io.Discard, req.Body)
					n := served.Add(1)
					body := fmt.Sprintf("%s %s #%d", req.Method, req.URL.Path, n)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				}
			}()
		}
	}()
	return ln.Addr().String(), &served, conns
}

// transportClient sends requests to up through a Transport, as the proxy
// does.
func transportClient(t *testing.T, up string) *http.Client {
	d := &net.Dialer{}
	dial := func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", up) }
	tr := h1.NewTransport(dial, &http.Transport{}, time.Minute, 256, 90*time.Second, 64<<10, 8)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// recordingClient is transportClient that records the connections it dials.
func recordingClient(t *testing.T, up string, dialed *clientConns) *http.Client {
	d := &net.Dialer{}
	dial := func(ctx context.Context) (net.Conn, error) {
		c, err := d.DialContext(ctx, "tcp", up)
		if err == nil {
			dialed.add(c.(*net.TCPConn))
		}
		return c, err
	}
	tr := h1.NewTransport(dial, &http.Transport{}, time.Minute, 256, 90*time.Second, 64<<10, 8)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// clientConns are the transport's connections to an upstream.
type clientConns struct {
	mu    sync.Mutex
	conns []*net.TCPConn
}

func (cc *clientConns) add(c *net.TCPConn) {
	cc.mu.Lock()
	cc.conns = append(cc.conns, c)
	cc.mu.Unlock()
}

// waitEOF waits until every connection the transport has not closed has
// the upstream's close waiting to be read, without reading anything. On
// loopback the FIN may reach the socket after the upstream's close
// returns; until it does, the transport's check before reuse cannot see it.
func (cc *clientConns) waitEOF(t *testing.T) {
	t.Helper()
	cc.mu.Lock()
	conns := append([]*net.TCPConn(nil), cc.conns...)
	cc.mu.Unlock()
	for _, c := range conns {
		rc, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		err = rc.Read(func(fd uintptr) bool {
			var b [1]byte
			_, errno := rawsock.Peek(fd, b[:])
			return errno != syscall.EAGAIN // wait while nothing is there
		})
		if err != nil && !errors.Is(err, net.ErrClosed) {
			t.Fatal(err)
		}
	}
}

// Requests after the upstream closed its idle connections still succeed,
// GET and POST alike, however soon after the close: a POST, which is not
// resent, is never written to a closed pooled connection (the idle-time
// threshold of the check applies only to requests that can be resent),
// and a GET on one is resent on a fresh connection.
func TestStaleKeepAliveConnections(t *testing.T) {
	up, served, conns := closingUpstream(t, 30*time.Millisecond)
	var dialed clientConns
	addr, client := up, recordingClient(t, up, &dialed)
	for i := range 4 {
		resp, err := client.Post("http://"+addr+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "POST /v1/chat/completions") {
			t.Fatalf("request %d after an idle close: %d %q", i, resp.StatusCode, b)
		}
		if resp, err = client.Get("http://" + addr + "/v1/models"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %d: %v", i, err)
		}
		resp.Body.Close()
		conns.waitAllClosed() // the upstream closes its side
		dialed.waitEOF(t)     // and the transport's side has received it
	}
	if served.Load() != 8 {
		t.Errorf("upstream served %d requests, want 8 (none twice)", served.Load())
	}
}

// Large and chunked request bodies stream through the standard transport.
func TestLargeAndChunkedBodiesStream(t *testing.T) {
	up, _, _ := closingUpstream(t, time.Second)
	addr, client := up, transportClient(t, up)
	for _, body := range []io.Reader{
		strings.NewReader(strings.Repeat("x", 200<<10)),   // over the fast path's limit
		io.MultiReader(strings.NewReader("chunked body")), // unknown length
	} {
		resp, err := client.Post("http://"+addr+"/upload", "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(b), "POST /upload") {
			t.Fatalf("%q", b)
		}
	}
}

// closableUpstream answers each request with keep-alive until closeAll
// closes every connection it holds, as an upstream whose idle timeout ran
// out does.
func closableUpstream(t *testing.T) (addr string, served *atomic.Int64, closeAll func()) {
	var mu sync.Mutex
	var conns []net.Conn
	served = new(atomic.Int64)
	addr = conntest.Serve(t, func(c net.Conn) {
		defer c.Close()
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			body := fmt.Sprintf("%s %s #%d", req.Method, req.URL.Path, served.Add(1))
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
	closeAll = func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	return addr, served, closeAll
}

// firstReadHook calls f before the first read of r.
type firstReadHook struct {
	r    io.Reader
	once sync.Once
	f    func()
}

func (h *firstReadHook) Read(p []byte) (int, error) {
	h.once.Do(h.f)
	return h.r.Read(p)
}

// A POST is not written to a pooled connection that the upstream closed
// while the transport was reading the request's body (a client still
// sending when the upstream's idle timeout ran out): it would fail, as a
// POST is not resent.
func TestPostNotWrittenToConnectionClosedDuringItsBody(t *testing.T) {
	up, served, closeAll := closableUpstream(t)
	var dialed clientConns
	client := recordingClient(t, up, &dialed)
	url := "http://" + up + "/v1/chat/completions"
	resp, err := client.Post(url, "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	const body = `{"model":"m","stream":true}`
	req, err := http.NewRequest(http.MethodPost, url, &firstReadHook{r: strings.NewReader(body), f: func() {
		closeAll()        // the transport holds the idle connection by now
		dialed.waitEOF(t) // and has received the upstream's close
	}})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	resp, err = client.Do(req)
	if err != nil {
		t.Fatalf("POST after the upstream closed its connection during the body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "POST /v1/chat/completions #2") {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	if served.Load() != 2 {
		t.Errorf("upstream served %d requests, want 2", served.Load())
	}
}
