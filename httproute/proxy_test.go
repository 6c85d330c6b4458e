package httproute_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/closedport"
	"github.com/oneport/oneport/internal/syncbuf"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/logtest"
)

// startProxy serves routes the way oneport does (see startHandler).
func startProxy(t testing.TB, engine string, log *slog.Logger, routes ...httproute.Route) string {
	t.Helper()
	return startHandler(t, engine, newHandler(t, log, routes...), log)
}

type closeTarget struct{}

func (closeTarget) HandleConn(c net.Conn) { c.Close() }

func route(spec string) httproute.Route {
	r, err := httproute.ParseSpec(spec)
	if err != nil {
		panic(err)
	}
	return r
}

func hostOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// echoBackend answers with what it saw, as JSON.
func echoBackend(t testing.TB, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"backend": name, "path": r.URL.Path, "rawpath": r.URL.RawPath, "query": r.URL.RawQuery,
			"host": r.Host, "xff": r.Header.Values("X-Forwarded-For"), "xfh": r.Header.Get("X-Forwarded-Host"),
			"xfp": r.Header.Get("X-Forwarded-Proto"), "connection": r.Header.Get("Connection"),
			"added": r.Header.Get("X-Added"), "cookie": r.Header.Get("Cookie"),
		})
	}))
	t.Cleanup(s.Close)
	return s
}

type seen struct {
	Backend, Path, RawPath, Query, Host, Xfh, Xfp, Connection, Added, Cookie string
	Xff                                                                      []string
}

func get(t testing.TB, url string, hdr map[string]string) (*http.Response, seen) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s seen
	body, _ := io.ReadAll(resp.Body)
	json.Unmarshal(body, &s)
	return resp, s
}

func TestRoutesToModelServers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		chat, embed, health := echoBackend(t, "chat"), echoBackend(t, "embed"), echoBackend(t, "health")
		keep := false
		addr := startProxy(t, engine, nil,
			route("/="+hostOf(chat)),
			route("/embedding-model/="+hostOf(embed)),
			httproute.Route{Path: "/keep", Upstreams: []string{hostOf(embed)}, StripPrefix: &keep},
			route("=/health="+hostOf(health)),
		)
		tests := []struct{ path, backend, upstreamPath string }{
			{"/v1/models", "chat", "/v1/models"},
			{"/embedding-model/v1/models", "embed", "/v1/models"},
			{"/embedding-model", "embed", "/"},
			{"/embedding-modelx/v1", "chat", "/embedding-modelx/v1"},
			{"/keep/v1/embeddings", "embed", "/keep/v1/embeddings"},
			{"/health", "health", "/health"},
			{"/embedding-model/../health", "health", "/health"},
			{"/embedding-model/%2e%2e/health", "health", "/health"},
			{"/embedding-model/..%2fhealth", "health", "/health"},
			{"//embedding-model//v1/models", "embed", "/v1/models"},
		}
		for _, tt := range tests {
			resp, s := get(t, "http://"+addr+tt.path+"?q=1", nil)
			if resp.StatusCode != 200 || s.Backend != tt.backend || s.Path != tt.upstreamPath || s.Query != "q=1" {
				t.Errorf("%s: status %d, reached %s at %q?%s; want %s at %q", tt.path, resp.StatusCode, s.Backend, s.Path, s.Query, tt.backend, tt.upstreamPath)
			}
		}
	})
}

func TestHostPreservedAndForwardedHeadersReplaced(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := echoBackend(t, "b")
		addr := startProxy(t, engine, nil, route("/="+hostOf(b)), httproute.Route{
			Host: "up.example", Path: "/", Upstreams: []string{hostOf(b)}, UpstreamHost: true,
			RequestHeaders: httproute.HeaderOps{Set: map[string]string{"X-Added": "yes"}, Delete: []string{"Cookie"}},
		})
		_, s := get(t, "http://"+addr+"/", map[string]string{
			"Host": "llm.example.com", "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil", "X-Forwarded-Proto": "https",
			"Connection": "X-Hop", "X-Hop": "1",
		})
		if s.Host != "llm.example.com" {
			t.Errorf("Host %q, want the client's", s.Host)
		}
		if len(s.Xff) != 1 || s.Xff[0] != "127.0.0.1" || s.Xfh != "llm.example.com" || s.Xfp != "http" {
			t.Errorf("X-Forwarded-*: for %v host %q proto %q", s.Xff, s.Xfh, s.Xfp)
		}
		if s.Connection != "" {
			t.Errorf("hop-by-hop Connection header forwarded: %q", s.Connection)
		}
		_, s = get(t, "http://"+addr+"/", map[string]string{"Host": "up.example", "Cookie": "secret=1"})
		if s.Host != hostOf(b) || s.Added != "yes" || s.Cookie != "" {
			t.Errorf("upstream_host/header ops: host %q added %q cookie %q", s.Host, s.Added, s.Cookie)
		}
	})
}

func TestResponseHeaderOps(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Server", "vllm")
			w.Header().Set("X-Keep", "1")
		}))
		defer b.Close()
		addr := startProxy(t, engine, nil, httproute.Route{Path: "/", Upstreams: []string{hostOf(b)},
			ResponseHeaders: httproute.HeaderOps{Delete: []string{"Server"}, Add: map[string]string{"X-Via": "oneport"}}})
		resp, _ := get(t, "http://"+addr+"/", nil)
		if resp.Header.Get("Server") != "" || resp.Header.Get("X-Via") != "oneport" || resp.Header.Get("X-Keep") != "1" {
			t.Errorf("response headers %v", resp.Header)
		}
	})
}

func TestNoRoute404AndWelcome(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := echoBackend(t, "b")
		addr := startProxy(t, engine, nil, route("llm.example.com/="+hostOf(b)))
		code, body := fetch(t, http.DefaultClient, "http://"+addr+"/x")
		if code != 404 || strings.Contains(body, hostOf(b)) || !strings.Contains(body, "no route") {
			t.Errorf("404 %d %q", code, body)
		}

		empty := startProxy(t, engine, nil)
		resp, _ := get(t, "http://"+empty+"/", map[string]string{"Accept": "application/json"})
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("welcome JSON: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if _, body = fetch(t, http.DefaultClient, "http://"+empty+"/"); !strings.Contains(body, "--route") {
			t.Errorf("welcome page does not say how to add a route: %q", body)
		}
	})
}

// Each SSE chunk reaches the client before the backend sends the next:
// the backend waits for the client's acknowledgement between chunks.
func TestSSEStreamsChunkByChunk(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		testStreaming(t, engine, "text/event-stream", func(i int) string { return fmt.Sprintf("data: {\"token\":%d}\n\n", i) })
	})
}

func TestNDJSONStreamsChunkByChunk(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		testStreaming(t, engine, "application/x-ndjson", func(i int) string { return fmt.Sprintf("{\"token\":%d}\n", i) })
	})
}

// A stream's header reaches the client before its first event when the
// event is slow to come, and a stream the upstream sent without a
// Content-Type gets none sniffed from its first bytes.
func TestStreamHeaderBeforeFirstEvent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		for _, ctype := range []string{"text/event-stream", ""} {
			t.Run("type="+ctype, func(t *testing.T) {
				got := make(chan struct{})
				b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if ctype == "" {
						w.Header()["Content-Type"] = nil
					} else {
						w.Header().Set("Content-Type", ctype)
					}
					w.WriteHeader(200)
					w.(http.Flusher).Flush()
					select {
					case <-got:
					case <-time.After(5 * time.Second):
						t.Error("the client never got the header")
						return
					}
					io.WriteString(w, "<html>data: 1\n\n")
				}))
				defer b.Close()
				addr := startProxy(t, engine, nil, route("/="+hostOf(b)))
				resp, err := http.Get("http://" + addr + "/v1/chat/completions")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				close(got)
				body, err := io.ReadAll(resp.Body)
				if err != nil || string(body) != "<html>data: 1\n\n" {
					t.Fatalf("body %q, %v", body, err)
				}
				if h := resp.Header.Get("Content-Type"); h != ctype {
					t.Errorf("Content-Type %q, want %q", h, ctype)
				}
			})
		}
	})
}

// The header and first event of a stream whose upstream sent them
// together leave oneport's engine in one write: the client's first read
// has both. Sent apart, they cost a second write, and the client a second
// wake-up before its first event.
func TestStreamHeaderLeavesWithFirstEvent(t *testing.T) {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush() // header and event in one write
		<-r.Context().Done()
	}))
	defer b.Close()
	defer b.CloseClientConnections()
	addr := startProxy(t, httproute.EngineOneport, nil, route("/="+hostOf(b)))
	for i := range 20 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /v1/chat/completions HTTP/1.1\r\nHost: box\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(buf[:n]), "\r\n\r\n9\r\ndata: 1\n\n\r\n") {
			t.Fatalf("request %d: first read %q has not the first event", i, buf[:n])
		}
	}
}

func testStreaming(t *testing.T, engine, ctype string, chunk func(int) string) {
	const n = 5
	ack := make(chan int)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(200)
		for i := range n {
			io.WriteString(w, chunk(i))
			w.(http.Flusher).Flush()
			select {
			case got := <-ack:
				if got != i {
					t.Errorf("ack %d for chunk %d", got, i)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("chunk %d never reached the client", i)
				return
			}
		}
	}))
	defer b.Close()
	addr := startProxy(t, engine, nil, route("/="+hostOf(b)))
	resp, err := http.Post("http://"+addr+"/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for i := range n {
		want := chunk(i)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
			t.Fatalf("chunk %d: %q, %v", i, got, err)
		}
		ack <- i
	}
}

// A large upload streams to the upstream without being buffered: the
// proxy's heap stays small while 1 GiB passes.
func TestLargeUploadStreamsWithBoundedMemory(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		size := int64(1 << 30)
		if testing.Short() {
			size = 64 << 20
		}
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%d %v", n, err)
		}))
		defer b.Close()
		addr := startProxy(t, engine, nil, route("/upload/="+hostOf(b)))
		// What earlier tests left is not this test's to count.
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ms runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapInuse)
				}
			}
		}()
		req, _ := http.NewRequest("POST", "http://"+addr+"/upload/file", io.LimitReader(zeroReader{}, size))
		req.ContentLength = size
		resp, err := http.DefaultClient.Do(req)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != fmt.Sprintf("%d <nil>", size) {
			t.Fatalf("upstream got %q", body)
		}
		if grew := peak - min(peak, base.HeapInuse); grew > 64<<20 {
			t.Errorf("heap grew by %d MiB (from %d) while streaming %d MiB: the body was buffered", grew>>20, base.HeapInuse>>20, size>>20)
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// When the client goes away the upstream's request context is cancelled
// at once.
func TestClientCancelReachesUpstream(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		started, cancelled := make(chan struct{}), make(chan struct{})
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			close(started)
			select {
			case <-r.Context().Done():
				close(cancelled)
			case <-time.After(10 * time.Second):
			}
		}))
		defer b.Close()
		var logs syncbuf.Buffer
		addr := startProxy(t, engine, slog.New(slog.NewTextHandler(&logs, nil)), route("/="+hostOf(b)))
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/chat/completions", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		<-started
		cancel()
		resp.Body.Close()
		select {
		case <-cancelled:
		case <-time.After(2 * time.Second):
			t.Fatal("the upstream request was not cancelled when the client left")
		}
	})
}

func TestUpstreamDown502AndTimeout504(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		dead := closedport.Addr(t)
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		}))
		defer slow.Close()
		var logs syncbuf.Buffer
		addr := startProxy(t, engine, slog.New(slog.NewTextHandler(&logs, nil)),
			route("/dead/="+dead),
			httproute.Route{Path: "/slow/", Upstreams: []string{hostOf(slow)}, ResponseHeaderTimeout: 100 * time.Millisecond},
		)
		for path, want := range map[string]int{"/dead/x": 502, "/slow/x": 504} {
			code, body := fetch(t, http.DefaultClient, "http://"+addr+path)
			if code != want || !strings.HasPrefix(body, "oneport: upstream ") || strings.Count(body, "\n") != 1 {
				t.Errorf("%s: %d %q, want %d with a one-line reason", path, code, body, want)
			}
		}
		if l := logs.String(); !strings.Contains(l, "status=502") || !strings.Contains(l, "status=504") || !strings.Contains(l, "connection refused") {
			t.Errorf("log lacks the failures:\n%s", l)
		}
	})
}

// Ambiguous framing never reaches an upstream: conflicting lengths and
// obfuscated transfer codings are refused; with both Content-Length and
// Transfer-Encoding the chunked framing wins (RFC 9112 6.1), and since
// oneport frames every request it forwards itself, the upstream reads the
// same boundaries oneport did.
func TestSmugglingAmbiguousFraming(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		var mu sync.Mutex
		var got []string
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, fmt.Sprintf("%s %q", r.URL.Path, body))
			mu.Unlock()
		}))
		defer b.Close()
		addr := startProxy(t, engine, nil, route("/="+hostOf(b)))
		send := func(raw string) int {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, raw)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			return resp.StatusCode
		}
		for _, raw := range []string{
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
		} {
			if code := send(raw); code < 400 {
				t.Errorf("%q: status %d, want a refusal", raw, code)
			}
		}
		mu.Lock()
		if len(got) != 0 {
			t.Errorf("refused requests reached the upstream: %v", got)
		}
		mu.Unlock()
		if code := send("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"); code != 200 {
			t.Fatalf("CL+TE: status %d", code)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1 || got[0] != `/a "abc"` {
			t.Errorf("upstream read %v, want the chunked body only", got)
		}
	})
}

// WebSocket upgrades pass through and both directions stream.
func TestWebSocketEcho(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := httptest.NewServer(http.HandlerFunc(wsEcho))
		defer b.Close()
		addr := startProxy(t, engine, nil, route("/ws/="+hostOf(b)))
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
		fmt.Fprintf(c, "GET /ws/socket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
			t.Fatalf("upgrade: %d %v", resp.StatusCode, resp.Header)
		}
		for _, msg := range []string{"hello", "token by token", strings.Repeat("x", 300)} {
			writeFrame(c, []byte(msg), true)
			got, err := readFrame(br)
			if err != nil || string(got) != msg {
				t.Fatalf("echo %q: %q %v", msg, got, err)
			}
		}
	})
}

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsEcho is a minimal RFC 6455 server: it echoes text frames.
func wsEcho(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "not a websocket", 400)
		return
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		wsAccept(r.Header.Get("Sec-WebSocket-Key")))
	brw.Flush()
	for {
		msg, err := readFrame(brw.Reader)
		if err != nil {
			return
		}
		writeFrame(c, msg, false)
	}
}

func writeFrame(w io.Writer, payload []byte, masked bool) {
	hdr := []byte{0x81}
	mbit := byte(0)
	if masked {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, mbit|byte(n))
	default:
		hdr = append(hdr, mbit|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	}
	body := payload
	if masked {
		mask := []byte{1, 2, 3, 4}
		hdr = append(hdr, mask...)
		body = make([]byte, len(payload))
		for i := range payload {
			body[i] = payload[i] ^ mask[i%4]
		}
	}
	w.Write(append(hdr, body...))
}

func readFrame(r *bufio.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint16(l[:]))
	} else if n == 127 {
		return nil, errors.New("frame too large for this test")
	}
	var mask [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return nil, err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, err
	}
	if masked {
		for i := range p {
			p[i] ^= mask[i%4]
		}
	}
	return p, nil
}

// An h2c client reaches an h2c upstream (gRPC's shape): a bidirectional
// stream where each request message is answered before the next is sent,
// and trailers arrive at the end.
func TestH2CBidiStreamWithTrailers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		up := &http.Server{Protocols: &p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor != 2 {
				http.Error(w, "want HTTP/2", 505)
				return
			}
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status")
			w.WriteHeader(200)
			w.(http.Flusher).Flush() // gRPC servers send headers before the first message
			br := bufio.NewReader(r.Body)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					break
				}
				io.WriteString(w, "echo "+line)
				w.(http.Flusher).Flush()
			}
			w.Header().Set("Grpc-Status", "0")
		})}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		go up.Serve(ln)
		defer up.Close()
		addr := startProxy(t, engine, nil, httproute.Route{
			Path: "/grpc.Service/", Upstreams: []string{"h2c://" + ln.Addr().String()}, StripPrefix: new(bool)})

		tr := &http.Transport{Protocols: &p}
		defer tr.CloseIdleConnections()
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("POST", "http://"+addr+"/grpc.Service/Chat", pr)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Fatalf("response %s %d", resp.Proto, resp.StatusCode)
		}
		br := bufio.NewReader(resp.Body)
		for i := range 3 {
			fmt.Fprintf(pw, "msg %d\n", i)
			line, err := br.ReadString('\n')
			if err != nil || line != fmt.Sprintf("echo msg %d\n", i) {
				t.Fatalf("message %d: %q %v", i, line, err)
			}
		}
		pw.Close()
		io.Copy(io.Discard, br)
		if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
			t.Fatalf("trailer Grpc-Status = %q, trailers %v", got, resp.Trailer)
		}
	})
}

// Requests reach unix-socket upstreams.
func TestUnixSocketUpstream(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		sock := t.TempDir() + "/llm.sock"
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "unix "+r.URL.Path)
		})}
		go s.Serve(ln)
		defer s.Close()
		addr := startProxy(t, engine, nil, route("/sock/=unix:"+sock))
		if _, body := fetch(t, http.DefaultClient, "http://"+addr+"/sock/v1/models"); body != "unix /v1/models" {
			t.Fatalf("body %q", body)
		}
	})
}

func TestAccessLogLine(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := echoBackend(t, "b")
		var logs syncbuf.Buffer
		logged := make(chan string, 16)
		log := slog.New(logtest.Notify{Handler: slog.NewTextHandler(&logs, nil), Logged: logged})
		addr := startProxy(t, engine, log, route("/embed/="+hostOf(b)))
		get(t, "http://"+addr+"/embed/v1/models", map[string]string{"Host": "box"})
		// The access line is written once the response has gone out.
		for msg := ""; msg != "http"; {
			select {
			case msg = <-logged:
			case <-time.After(5 * time.Second):
				t.Fatal("no access log line")
			}
		}
		l := logs.String()
		for _, want := range []string{"method=GET", "host=box", "path=/embed/v1/models", "route=/embed/", "upstream=" + hostOf(b), "status=200", "bytes=", "duration=", "ttfb="} {
			if !strings.Contains(l, want) {
				t.Errorf("access log lacks %q:\n%s", want, l)
			}
		}
	})
}

// A chunked response of a type that is not a known stream gets the large
// copy buffer, and still reaches the client chunk by chunk.
func TestUnknownLengthTextStreamsChunkByChunk(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		testStreaming(t, engine, "text/plain", func(i int) string { return fmt.Sprintf("line %d\n", i) })
	})
}

// Large bodies, of known length and chunked, arrive whole through the
// large copy buffers, also when more are in flight than there are large
// buffers to lend.
func TestLargeResponsesArriveWhole(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		const size = 3<<20 + 17
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i * 7)
		}
		want := sha1.Sum(body)
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			if r.URL.Path == "/sized" {
				w.Header().Set("Content-Length", fmt.Sprint(size))
			}
			for rest := body; len(rest) > 0; {
				n := min(len(rest), 100_000)
				w.Write(rest[:n])
				rest = rest[n:]
			}
		}))
		defer b.Close()
		addr := startProxy(t, engine, nil, route("/="+hostOf(b)))
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := "/sized"
				if i%2 == 1 {
					path = "/chunked"
				}
				resp, err := http.Get("http://" + addr + path)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				got, err := io.ReadAll(resp.Body)
				if err != nil || sha1.Sum(got) != want {
					t.Errorf("GET %s: %d bytes, err %v, want %d intact bytes", path, len(got), err, size)
				}
			}()
		}
		wg.Wait()
	})
}
