package h1_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/httproute/internal/h1"
	"github.com/oneport/oneport/internal/conntest"
	"github.com/oneport/oneport/mux"
)

// startServer serves h with the engine's Server behind a mux, as oneport
// does, and returns its address.
func startServer(t testing.TB, h http.Handler, tune func(*h1.Server)) (string, *h1.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := h1.NewServer(h, nil)
	s.Fallback = closeTarget{}
	if tune != nil {
		tune(s)
	}
	m := &mux.Server{HTTP: s, SSH: closeTarget{}}
	go m.Serve(ln)
	t.Cleanup(func() { m.Close(); s.Close() })
	return ln.Addr().String(), s
}

type closeTarget struct{}

func (closeTarget) HandleConn(c net.Conn) { c.Close() }

// startStd serves h with a plain net/http server, the reference.
func startStd(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// behaviours answers by path with the response shapes a server must
// frame: short and long bodies, declared and wrong lengths, no-body
// statuses, flushes, trailers, 1xx, sniffing, bodies read or not, panics.
func behaviours() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			io.WriteString(w, "hello")
		case "/big":
			w.Header().Set("Content-Type", "text/plain")
			w.Write(bytes.Repeat([]byte("0123456789"), 1000))
		case "/cl":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/short":
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "hello")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			io.WriteString(w, "ignored")
		case "/notmodified":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		case "/status":
			w.WriteHeader(599)
		case "/flush":
			io.WriteString(w, "one")
			w.(http.Flusher).Flush()
			io.WriteString(w, "two")
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
		case "/trailerprefix":
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		case "/early":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "after hints")
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/late":
			// A field set after the body has started is not sent, with a
			// declared length or without one.
			w.Header().Set("Content-Length", "5")
			if r.URL.RawQuery == "typed" {
				w.Header().Set("Content-Type", "text/plain")
			}
			io.WriteString(w, "hello")
			w.Header().Set("X-Late", "1")
		case "/sniff":
			io.WriteString(w, "<html><body>hi</body></html>")
		case "/te":
			w.Header().Set("Transfer-Encoding", "chunked")
			io.WriteString(w, "chunked by hand")
		case "/echo":
			b, err := io.ReadAll(r.Body)
			if err != nil {
				w.WriteHeader(400)
			}
			fmt.Fprintf(w, "%s %s %q", r.Method, r.Host, b)
		case "/noread":
			io.WriteString(w, "did not read")
		case "/headers":
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range r.Header {
					if !yield(k) {
						return
					}
				}
			})
			fmt.Fprintf(w, "%s %s %s %v close=%v len=%d", r.Method, r.Host, r.RequestURI, keys, r.Close, r.ContentLength)
		case "/panic":
			panic("boom")
		case "/abort":
			io.WriteString(w, "part")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		default:
			http.NotFound(w, r)
		}
	})
}

const lastReq = "GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

// exchange writes raw to addr and returns everything the server sent
// until it closed the connection.
func exchange(t *testing.T, addr, raw string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Reset rather than close: fuzzing makes thousands of connections a
	// second, and closed ones would hold the box's ephemeral ports.
	defer c.Close()
	c.(*net.TCPConn).SetLinger(0)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		// Then end the stream, so that a server waiting for more of a
		// request (a body shorter than its length) gives up on it.
		io.WriteString(c, raw)
		c.(*net.TCPConn).CloseWrite()
	}()
	out, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("%q: %v", raw, err)
	}
	return out
}

// parsed is a response as a client sees it, without its Date.
type parsed struct {
	Status  int
	Header  http.Header
	Body    string
	Trailer http.Header
	Err     string
}

func parseAll(raw []byte, methods []string) []parsed {
	br := bufio.NewReader(bytes.NewReader(raw))
	var out []parsed
	for i := 0; ; i++ {
		if _, err := br.Peek(1); err != nil {
			return out
		}
		m := "GET"
		if i < len(methods) {
			m = methods[i]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			return append(out, parsed{Err: err.Error()})
		}
		body, err := io.ReadAll(resp.Body)
		p := parsed{Status: resp.StatusCode, Header: resp.Header, Body: string(body), Trailer: resp.Trailer}
		if err != nil {
			p.Err = err.Error()
		}
		delete(p.Header, "Date")
		out = append(out, p)
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			i-- // an interim response: the same request's final one follows
		}
	}
}

// TestServerFramesLikeNetHTTP sends the same bytes to Server and to a
// plain net/http server with the same handler, and compares what a client
// reads back: statuses, headers, bodies, trailers, and where the server
// closed the connection.
func TestServerFramesLikeNetHTTP(t *testing.T) {
	ours, _ := startServer(t, behaviours(), nil)
	std := startStd(t, behaviours())
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }
	cases := []struct {
		name    string
		raw     string
		methods []string
	}{
		{"small", get("/small") + lastReq, nil},
		{"big", get("/big") + lastReq, nil},
		{"declared length", get("/cl") + lastReq, nil},
		{"short body closes", get("/short") + lastReq, nil},
		{"204", get("/nocontent") + lastReq, nil},
		{"304", get("/notmodified") + lastReq, nil},
		{"unknown status", get("/status") + lastReq, nil},
		{"flush", get("/flush") + lastReq, nil},
		{"trailer", get("/trailer") + lastReq, nil},
		{"trailer prefix", get("/trailerprefix") + lastReq, nil},
		{"103 early hints", get("/early") + lastReq, nil},
		{"handler closes", get("/close") + lastReq, nil},
		{"content sniffing", get("/sniff") + lastReq, nil},
		{"field set late", get("/late") + lastReq, nil},
		{"field set late, typed", get("/late?typed") + lastReq, nil},
		{"handler sets chunked", get("/te") + lastReq, nil},
		{"not found", get("/nothing") + lastReq, nil},
		{"HEAD", "HEAD /big HTTP/1.1\r\nHost: x\r\n\r\nHEAD /small HTTP/1.1\r\nHost: x\r\n\r\n" + lastReq, []string{"HEAD", "HEAD"}},
		{"pipelined", get("/small") + get("/cl") + get("/big") + lastReq, nil},
		{"HTTP/1.0", "GET /small HTTP/1.0\r\n\r\n" + lastReq, nil},
		{"HTTP/1.0 keep-alive with length", "GET /cl HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + lastReq, nil},
		{"HTTP/1.0 keep-alive short body", "GET /small HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + lastReq, nil},
		{"HTTP/1.0 keep-alive unknown length", "GET /flush HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + lastReq, nil},
		{"client closes", "GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + get("/cl"), nil},
		{"POST with length", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" + lastReq, nil},
		{"POST chunked", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + lastReq, nil},
		{"POST then CRLF", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\n" + lastReq, nil},
		{"unread small body", "POST /noread HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" + lastReq, nil},
		{"unread large body", "POST /noread HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n" + strings.Repeat("a", 300000) + lastReq, nil},
		{"expect continue", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc" + lastReq, nil},
		{"expect continue unread", "POST /noread HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc" + lastReq, nil},
		{"expect other", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: magic\r\n\r\nabc" + lastReq, nil},
		{"headers seen", "GET /headers?q=1 HTTP/1.1\r\nHost: Example.com:80\r\nX-A: 1\r\nx-b: 2\r\n\r\n" + lastReq, nil},
		{"absolute form", "GET http://other/headers HTTP/1.1\r\nHost: x\r\n\r\n" + lastReq, nil},
		{"missing host", "GET /small HTTP/1.1\r\n\r\n" + lastReq, nil},
		{"bad host", "GET /small HTTP/1.1\r\nHost: a b\r\n\r\n" + lastReq, nil},
		{"bad header name", "GET /small HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n" + lastReq, nil},
		{"bad header value", "GET /small HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n" + lastReq, nil},
		{"conflicting lengths", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc" + lastReq, nil},
		{"unknown coding", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n" + lastReq, nil},
		{"HTTP/2 request line", "GET / HTTP/2.0\r\nHost: x\r\n\r\n" + lastReq, nil},
		{"malformed request line", "GET /a b c\r\n\r\n" + lastReq, nil},
		{"header too large", "GET /small HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20+8192) + "\r\n\r\n" + lastReq, nil},
		{"panic", get("/panic") + lastReq, nil},
		{"abort", get("/abort") + lastReq, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := parseAll(exchange(t, ours, tc.raw), tc.methods)
			want := parseAll(exchange(t, std, tc.raw), tc.methods)
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
				t.Errorf("responses differ\n ours:     %+v\n net/http: %+v", got, want)
			}
		})
	}
}

// dialServer connects to addr for at most 5 seconds of talk; the
// connection closes when the test ends.
func dialServer(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// keepAlive opens a connection to addr and returns a function that sends
// one GET for path on it and returns the body.
func keepAlive(t *testing.T, addr string) (func(path string) (string, error), net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReader(c)
	return func(path string) (string, error) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return "", err
		}
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}, c
}

func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), fn)
}

// An idle keep-alive connection is parked with no goroutine of its own,
// and goes on serving when its client sends again; the parker's goroutine
// ends with the server.
func TestIdleConnectionParksAndServesOn(t *testing.T) {
	idle := idleEvents(t)
	addr, s := startServer(t, behaviours(), nil)
	get, _ := keepAlive(t, addr)
	for range 3 {
		if body, err := get("/small"); err != nil || body != "hello" {
			t.Fatalf("got %q, %v", body, err)
		}
	}
	<-idle
	conntest.Eventually(t, "the idle connection's goroutines end", func() bool {
		return goroutinesIn("h1.(*h1conn)") == 0 && goroutinesIn("mux.(*Server).handle") == 0
	})
	for range 3 {
		if body, err := get("/cl"); err != nil || body != "hello" {
			t.Fatalf("after parking: got %q, %v", body, err)
		}
	}
	if goroutinesIn("h1.(*parker).loop(") != 1 {
		t.Fatal("no parker goroutine")
	}
	s.Close()
	conntest.Eventually(t, "the parker's goroutine ends with the server", func() bool {
		return goroutinesIn("h1.(*parker).loop(") == 0
	})
}

// idleEvents returns a channel that receives when a connection goes idle
// and gives up its goroutine.
func idleEvents(t *testing.T) <-chan struct{} {
	idle := make(chan struct{}, 16)
	t.Cleanup(h1.OnIdle(func() {
		select {
		case idle <- struct{}{}:
		default:
		}
	}))
	return idle
}

func TestIdleAndHeaderTimeouts(t *testing.T) {
	addr, _ := startServer(t, behaviours(), func(s *h1.Server) {
		s.IdleTimeout = 300 * time.Millisecond
		s.ReadHeaderTimeout = 300 * time.Millisecond
	})
	get, c := keepAlive(t, addr)
	if _, err := get("/small"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("idle connection: read %d, %v; want the server to close it", n, err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("closed after %v, before the idle timeout", d)
	}

	// A header that never ends is cut off.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "GET /small HTTP/1.1\r\n")
	io.WriteString(c2, "Host: x\r\n")
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c2.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("slow header: read %d, %v; want the server to close", n, err)
	}
}

// Parked connections share one timer for their idle timeouts: each is
// closed no sooner than the timeout after its own last request, also one
// that was unparked from the middle of the others and parked again.
func TestParkedConnectionsTimeOutEach(t *testing.T) {
	const timeout = 400 * time.Millisecond
	idle := idleEvents(t)
	addr, _ := startServer(t, behaviours(), func(s *h1.Server) { s.IdleTimeout = timeout })
	type client struct {
		get  func(string) (string, error)
		c    net.Conn
		last time.Time
	}
	var cs []*client
	for range 3 {
		get, c := keepAlive(t, addr)
		cs = append(cs, &client{get: get, c: c})
	}
	request := func(cl *client) {
		t.Helper()
		// Taken before the request: the server's idle clock starts while
		// it serves it, before the client has read the response.
		cl.last = time.Now()
		if body, err := cl.get("/small"); err != nil || body != "hello" {
			t.Fatalf("got %q, %v", body, err)
		}
		<-idle // parked
	}
	for _, cl := range cs {
		request(cl)
	}
	request(cs[1]) // out of the middle of the list, and back in at its end
	for i, cl := range []*client{cs[0], cs[2], cs[1]} {
		cl.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := cl.c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("connection %d: read %d, %v; want the server to close it", i, n, err)
		}
		if d := time.Since(cl.last); d < timeout {
			t.Errorf("connection %d closed %v after its last request, before the idle timeout", i, d)
		}
	}
}

// Shutdown closes idle connections at once and lets a request in
// progress finish before it closes that connection too.
func TestServerShutdownLetsRequestsFinish(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done")
	})
	parked := idleEvents(t)
	addr, s := startServer(t, h, nil)
	idleGet, idle := keepAlive(t, addr)
	if _, err := idleGet("/"); err != nil {
		t.Fatal(err)
	}
	<-parked
	busyGet, _ := keepAlive(t, addr)
	result := make(chan string, 1)
	go func() {
		body, err := busyGet("/slow")
		if err != nil {
			body = err.Error()
		}
		result <- body
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle connection during shutdown: %v, want it closed", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a request was in progress", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if body := <-result; body != "done" {
		t.Errorf("request in progress got %q", body)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last request")
	}
}

// A client that leaves cancels its request's context, with or without a
// request body.
func TestClientLeavingCancelsRequest(t *testing.T) {
	cancelled := make(chan string, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			cancelled <- r.Method
		case <-time.After(10 * time.Second):
		}
	})
	watching := make(chan struct{}, 1)
	t.Cleanup(h1.OnWatching(func() { watching <- struct{}{} }))
	addr, _ := startServer(t, h, nil)
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, raw)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			t.Fatal(err)
		}
		<-watching // the server watches for the client leaving
		c.Close()
		select {
		case <-cancelled:
		case <-time.After(2 * time.Second):
			t.Fatalf("%q: the handler's context was not cancelled when the client left", raw)
		}
	}
}

// A handler may answer before it reads the request body, and go on
// reading it while the client, having seen the answer, sends the rest.
func TestServerIsFullDuplex(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ready\n")
		w.(http.Flusher).Flush()
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		fmt.Fprintf(w, "got %s\n", b)
	})
	addr, _ := startServer(t, h, nil)
	c := dialServer(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	io.WriteString(c, "5\r\nhello\r\n0\r\n\r\n")
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(rest), "got hello") {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

// Hijack hands over the connection with the bytes that followed the
// request, as WebSocket and other upgrades need.
func TestHijackKeepsBufferedBytes(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		io.WriteString(c, "echo "+line)
	})
	addr, _ := startServer(t, h, nil)
	c := dialServer(t, addr)
	// The first line of the upgraded protocol comes with the request.
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nfirst\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v, %v", resp, err)
	}
	line, err := br.ReadString('\n')
	if err != nil || line != "echo first\n" {
		t.Fatalf("got %q, %v", line, err)
	}
}

// FuzzServerLikeNetHTTP sends arbitrary bytes after a request line to
// Server and to net/http with the same handler: clients must read the same
// responses from both, and Server must never hang or crash.
func FuzzServerLikeNetHTTP(f *testing.F) {
	for _, s := range []string{
		"GET /small HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
		"HEAD /big HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET /trailer HTTP/1.1\r\nHost: x\r\n\r\nGET /early HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://h/headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	} {
		f.Add(s)
	}
	ours, _ := startServer(f, behaviours(), nil)
	std := startStd(f, behaviours())
	f.Fuzz(func(t *testing.T, raw string) {
		if !strings.HasPrefix(raw, "GET ") && !strings.HasPrefix(raw, "POST ") && !strings.HasPrefix(raw, "HEAD ") {
			return // the mux sends anything else elsewhere
		}
		raw += lastReq
		methods, hostless := requestMethods(raw)
		if hostless {
			return // where Server knowingly differs: see checkRequest
		}
		got := parseAll(exchange(t, ours, raw), methods)
		want := parseAll(exchange(t, std, raw), methods)
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("%q: responses differ\n ours:     %+v\n net/http: %+v", raw, got, want)
		}
	})
}

// requestMethods returns the methods of the requests raw holds, so their
// responses are read right (a HEAD response has no body), and whether one
// of them has an empty host or an absolute-form target.
func requestMethods(raw string) (ms []string, hostless bool) {
	br := bufio.NewReader(strings.NewReader(raw))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return ms, hostless
		}
		ms = append(ms, req.Method)
		hostless = hostless || req.Host == "" || req.URL.Host != ""
		io.Copy(io.Discard, req.Body)
	}
}

// A handler that answers 101 with WriteHeader and then hijacks, as
// websocket.Accept does, must have its 101 reach the client: net/http
// flushes the pending response header on Hijack and hands over an empty
// writer. Served by Server and by net/http, so both are held to the same
// behaviour.
func TestHijackAfterWriteHeaderSends101(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upgrade", "echo")
		w.Header().Set("Connection", "Upgrade")
		w.WriteHeader(http.StatusSwitchingProtocols)
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		if n := brw.Writer.Buffered(); n != 0 {
			t.Errorf("hijacked writer holds %d bytes", n)
		}
		line, _ := brw.ReadString('\n')
		io.WriteString(brw, "echo "+line)
		brw.Flush()
	})
	onBothServers(t, h, func(t *testing.T, addr string) {
		c := dialServer(t, addr)
		// The first line of the upgraded protocol comes with the request.
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nfirst\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no 101: %v", err)
		}
		if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "echo" || !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
			t.Fatalf("got %s %v", resp.Status, resp.Header)
		}
		for _, k := range []string{"Content-Length", "Transfer-Encoding"} {
			if v, ok := resp.Header[k]; ok {
				t.Errorf("101 has %s: %q", k, v)
			}
		}
		line, err := br.ReadString('\n')
		if err != nil || line != "echo first\n" {
			t.Fatalf("after the 101: %q, %v", line, err)
		}
	})
}

// Hijack after the response header was flushed hands over the connection
// as net/http does, rather than failing.
func TestHijackAfterFlush(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "9")
		io.WriteString(w, "flushed\n")
		w.(http.Flusher).Flush()
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		io.WriteString(brw, "raw\n")
		brw.Flush()
	})
	onBothServers(t, h, func(t *testing.T, addr string) {
		c := dialServer(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v, %v", resp, err)
		}
		rest, _ := io.ReadAll(br)
		if string(rest) != "flushed\nraw\n" {
			t.Fatalf("body %q, want %q", rest, "flushed\nraw\n")
		}
	})
}

// A handler that hijacks a request with Expect: 100-continue and then
// reads its body gets the body, and no 100 Continue is written on the
// connection it owns.
func TestHijackThenReadExpectContinueBody(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		b, err := io.ReadAll(r.Body)
		io.WriteString(brw, "got "+string(b)+"\n")
		brw.Flush()
		if err != nil {
			t.Errorf("body: %v", err)
		}
	})
	onBothServers(t, h, func(t *testing.T, addr string) {
		c := dialServer(t, addr)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "got abc\n" {
			t.Fatalf("got %q, %v", line, err)
		}
	})
}

// onBothServers runs check as a subtest against h served by Server and by
// net/http's server, so that both are held to the same behaviour.
func onBothServers(t *testing.T, h http.Handler, check func(t *testing.T, addr string)) {
	t.Helper()
	own, _ := startServer(t, h, nil)
	t.Run("h1", func(t *testing.T) { check(t, own) })
	t.Run("net/http", func(t *testing.T) { check(t, startStd(t, h)) })
}
