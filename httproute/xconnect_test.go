package httproute_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/logtest"
	"github.com/oneport/oneport/internal/syncbuf"
)

// The server advertises SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441
// section 3): the package turns extended CONNECT on before net/http reads
// GODEBUG. This fails if that ever stops working.
func TestServerAdvertisesExtendedConnect(t *testing.T) {
	addr := startProxy(t, httproute.EngineOneport, nil, route("/="+"127.0.0.1:1"))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no SETTINGS from the server: %v", err)
		}
		sf, ok := f.(*http2.SettingsFrame)
		if !ok || sf.IsAck() {
			continue
		}
		if v, ok := sf.Value(http2.SettingEnableConnectProtocol); !ok || v != 1 {
			t.Fatalf("SETTINGS lack ENABLE_CONNECT_PROTOCOL=1 (got %v, %v): extended CONNECT is off", v, ok)
		}
		return
	}
}

// h2cClient speaks HTTP/2 with prior knowledge, as oneport's h2c path
// serves it: x/net's transport, as net/http's refuses the :protocol
// pseudo-header.
func h2cClient() *http.Client {
	return &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}}
}

// xconnect opens an RFC 8441 WebSocket stream to url; the returned writer
// sends on it.
func xconnect(t *testing.T, ctx context.Context, url string, hdr http.Header) (*http.Response, *io.PipeWriter) {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, url, pr)
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	resp, err := h2cClient().Do(req)
	if err != nil {
		t.Fatalf("extended CONNECT: %v", err)
	}
	t.Cleanup(func() { pw.Close(); resp.Body.Close() })
	return resp, pw
}

// handshake answers an HTTP/1.1 WebSocket upgrade with 101 and hands the
// connection to then; it records the request it saw.
func handshake(seen chan<- *http.Request, extra http.Header, then func(net.Conn, *bufio.ReadWriter)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
			base64.StdEncoding.EncodeToString(sum[:]))
		extra.Write(brw)
		io.WriteString(brw, "\r\n")
		brw.Flush()
		then(c, brw)
	})
}

// An RFC 8441 WebSocket reaches an HTTP/1.1 upstream as the upgrade an
// HTTP/1.1 client would have sent, through the route's prefix stripping
// and forwarding headers; the answer carries the negotiated subprotocol
// and the cookie (path put back under the prefix), not the handshake;
// WebSocket frames then flow both ways, and the session is logged as an
// upgraded one.
func TestExtendedConnectBecomesUpgrade(t *testing.T) {
	seen := make(chan *http.Request, 1)
	up := httptest.NewServer(handshake(seen, http.Header{
		"Sec-Websocket-Protocol": {"chat"}, "Set-Cookie": {"sid=1; Path=/"},
	}, func(c net.Conn, brw *bufio.ReadWriter) {
		for {
			msg, err := readFrame(brw.Reader)
			if err != nil {
				return
			}
			writeFrame(c, msg, false)
		}
	}))
	defer up.Close()
	var logs syncbuf.Buffer
	logged := make(chan string, 16)
	addr := startProxy(t, httproute.EngineOneport, slog.New(logtest.Notify{Handler: slog.NewTextHandler(&logs, nil), Logged: logged}),
		route("/app/="+hostOf(up)))

	resp, pw := xconnect(t, context.Background(), "http://"+addr+"/app/socket?x=1", http.Header{
		"Sec-Websocket-Protocol": {"chat, superchat"}, "Origin": {"http://" + addr}, "Cookie": {"a=b"},
	})
	r := <-seen
	for k, want := range map[string]string{
		"Upgrade": "websocket", "Connection": "Upgrade", "Sec-Websocket-Version": "13",
		"Sec-Websocket-Protocol": "chat, superchat", "Origin": "http://" + addr, "Cookie": "a=b",
		"X-Forwarded-Prefix": "/app", "X-Forwarded-Proto": "http", "X-Forwarded-For": "127.0.0.1",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("upstream saw %s %q, want %q", k, got, want)
		}
	}
	if k, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key")); err != nil || len(k) != 16 {
		t.Errorf("upstream saw Sec-WebSocket-Key %q, want 16 random bytes", r.Header.Get("Sec-WebSocket-Key"))
	}
	if r.Method != "GET" || r.URL.RequestURI() != "/socket?x=1" || r.Proto != "HTTP/1.1" {
		t.Errorf("upstream saw %s %s %s, want GET /socket?x=1 HTTP/1.1", r.Method, r.URL.RequestURI(), r.Proto)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Sec-WebSocket-Protocol") != "chat" ||
		resp.Header.Get("Set-Cookie") != "sid=1; Path=/app" {
		t.Errorf("answer %d %v, want 200 with the subprotocol and the cookie under /app", resp.StatusCode, resp.Header)
	}
	for _, k := range []string{"Sec-Websocket-Accept", "Upgrade", "Connection"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("answer carries %s: %q", k, v)
		}
	}
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		msg := fmt.Sprintf("message %d %s", i, strings.Repeat("z", 200*i))
		writeFrame(pw, []byte(msg), true)
		if got, err := readFrame(br); err != nil || string(got) != msg {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
	}
	pw.Close() // END_STREAM: the upstream sees its end and closes
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the client ended: %v, want EOF", err)
	}
	waitLine(t, logged, &logs)
	l := logs.String()
	for _, want := range []string{"method=CONNECT", "status=101", "path=/app/socket", "rx=", "tx="} {
		if !strings.Contains(l, want) {
			t.Errorf("access line lacks %q:\n%s", want, l)
		}
	}
}

func waitLine(t *testing.T, logged <-chan string, logs *syncbuf.Buffer) {
	t.Helper()
	for m := ""; m != "http"; {
		select {
		case m = <-logged:
		case <-time.After(5 * time.Second):
			t.Fatalf("no access line:\n%s", logs.String())
		}
	}
}

// What is no WebSocket session stays a response: an upstream's refusal
// passes through; a broken handshake is a 502; other protocols and
// routes that do not proxy are refused with a reason.
func TestExtendedConnectRefusals(t *testing.T) {
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Why", "origin")
		http.Error(w, "forbidden origin", http.StatusForbidden)
	}))
	defer refuse.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, _ := http.NewResponseController(w).Hijack()
		defer c.Close()
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n")
		brw.Flush()
	}))
	defer broken.Close()
	addr := startProxy(t, httproute.EngineOneport, nil, route("/refuse/="+hostOf(refuse)), route("/broken/="+hostOf(broken)),
		httproute.Route{Path: "/own/", Upstreams: []string{"127.0.0.1:1"}, Serve: http.NotFoundHandler()})
	cases := []struct {
		path, proto string
		status      int
		body        string
	}{
		{"/refuse/ws", "websocket", 403, "forbidden origin"},
		{"/broken/ws", "websocket", 502, "broken handshake"},
		{"/refuse/ws", "connect-udp", 501, `extended CONNECT for protocol "connect-udp" is not supported (only websocket)`},
		{"/own/ws", "websocket", 501, "does not serve WebSockets"},
	}
	for _, c := range cases {
		t.Run(c.path+" "+c.proto, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodConnect, "http://"+addr+c.path, http.NoBody)
			req.Header.Set(":protocol", c.proto)
			resp, err := h2cClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.body) {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, body, c.status, c.body)
			}
		})
	}
}

// Either side ending the session ends it on the other: an upstream that
// dies mid-session resets the client's stream, and a client that resets
// its stream closes the upstream connection.
func TestExtendedConnectEnds(t *testing.T) {
	upEnded := make(chan error, 1)
	seen := make(chan *http.Request, 2)
	up := httptest.NewServer(handshake(seen, nil, func(c net.Conn, brw *bufio.ReadWriter) {
		msg, err := readFrame(brw.Reader)
		if err != nil {
			return
		}
		if string(msg) == "die" {
			writeFrame(c, []byte("dying"), false)
			c.(*net.TCPConn).SetLinger(0) // an RST, as a crashed process leaves
			return
		}
		writeFrame(c, msg, false)
		_, err = brw.ReadByte()
		upEnded <- err
	}))
	defer up.Close()
	addr := startProxy(t, httproute.EngineOneport, nil, route("/="+hostOf(up)))

	t.Run("upstream dies", func(t *testing.T) {
		resp, pw := xconnect(t, context.Background(), "http://"+addr+"/ws", nil)
		<-seen
		writeFrame(pw, []byte("die"), true)
		br := bufio.NewReader(resp.Body)
		if got, err := readFrame(br); err != nil || string(got) != "dying" {
			t.Fatalf("last words: %q %v", got, err)
		}
		if _, err := io.ReadAll(br); err == nil {
			t.Error("the stream ended cleanly although the upstream died")
		}
	})
	t.Run("client resets", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, pw := xconnect(t, ctx, "http://"+addr+"/ws", nil)
		<-seen
		writeFrame(pw, []byte("hi"), true)
		if got, err := readFrame(bufio.NewReader(resp.Body)); err != nil || string(got) != "hi" {
			t.Fatalf("echo: %q %v", got, err)
		}
		resp.Body.Close() // RST_STREAM, as a closed tab leaves
		cancel()
		select {
		case err := <-upEnded:
			if err == nil {
				t.Error("upstream read a byte after the reset")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("upstream still open 5s after the client reset its stream")
		}
	})
}
