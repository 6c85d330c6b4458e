package httproute_test

import (
	"bufio"
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

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/logtest"
	"github.com/oneport/oneport/internal/syncbuf"
)

// --route can keep a prefix: "/jupyter/+=..." forwards /jupyter/tree as
// it came, and its spec reads back the same.
func TestRouteSpecKeepsPrefixWithPlus(t *testing.T) {
	r, err := httproute.ParseSpec("/jupyter/+=127.0.0.1:8888")
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != "/jupyter/" || r.StripPrefix == nil || *r.StripPrefix {
		t.Fatalf("parsed %q strip %v, want /jupyter/ kept", r.Path, r.StripPrefix)
	}
	if s := r.Spec(); s != "/jupyter/+=127.0.0.1:8888" {
		t.Fatalf("spec %q", s)
	}
	if _, err := httproute.ParseSpec("/a++=127.0.0.1:1"); err == nil {
		t.Error("a prefix ending in + accepted: it would not read back")
	}
	forEachEngine(t, func(t *testing.T, engine string) {
		b := echoBackend(t, "j")
		addr := startProxy(t, engine, nil, route("/jupyter/+="+hostOf(b)), route("/strip/="+hostOf(b)))
		if _, s := get(t, "http://"+addr+"/jupyter/tree", nil); s.Path != "/jupyter/tree" {
			t.Errorf("kept prefix: upstream saw %q", s.Path)
		}
		if _, s := get(t, "http://"+addr+"/strip/tree", nil); s.Path != "/tree" {
			t.Errorf("stripped prefix: upstream saw %q", s.Path)
		}
	})
}

// A plain app behind /app/ that redirects to /login and sets cookies for
// Path=/ sends the client to /app/login with cookies for /app; it is told
// the prefix in X-Forwarded-Prefix, and a client cannot forge that.
func TestStrippedPrefixRewritesLocationAndCookies(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Saw-Prefix", r.Header.Get("X-Forwarded-Prefix"))
			switch r.URL.Path {
			case "/":
				http.SetCookie(w, &http.Cookie{Name: "sid", Value: "1", Path: "/", HttpOnly: true})
				http.SetCookie(w, &http.Cookie{Name: "sub", Value: "2", Path: "/static"})
				http.Redirect(w, r, "/login?next=%2F", http.StatusFound)
			case "/abs":
				http.Redirect(w, r, "http://"+r.Host+"/login", http.StatusFound)
			case "/self":
				http.Redirect(w, r, "http://"+r.Header.Get("X-Self")+"/login", http.StatusFound)
			case "/aware":
				http.Redirect(w, r, r.Header.Get("X-Forwarded-Prefix")+"/login", http.StatusFound)
			case "/elsewhere":
				http.Redirect(w, r, "https://login.example.com/", http.StatusFound)
			case "/v2/redir":
				http.Redirect(w, r, "/v2/login", http.StatusFound)
			case "/relative":
				w.Header().Set("Location", "login") // resolves under /app/ at the client as it is
				w.WriteHeader(http.StatusFound)
			}
		}))
		defer app.Close()
		addr := startProxy(t, engine, nil, route("/app/="+hostOf(app)),
			httproute.Route{Path: "/uh/", UpstreamHost: true, Upstreams: []string{hostOf(app)}},
			httproute.Route{Path: "/v/", Rewrite: "/v2", Upstreams: []string{hostOf(app)}})
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		do := func(path string, hdr ...string) *http.Response {
			req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
			req.Host = "box:2222"
			for i := 0; i+1 < len(hdr); i += 2 {
				req.Header.Set(hdr[i], hdr[i+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		resp := do("/app/", "X-Forwarded-Prefix", "/forged")
		if l := resp.Header.Get("Location"); l != "/app/login?next=%2F" {
			t.Errorf("Location %q, want /app/login?next=%%2F", l)
		}
		if p := resp.Header.Get("X-Saw-Prefix"); p != "/app" {
			t.Errorf("X-Forwarded-Prefix %q, want /app", p)
		}
		cookies := strings.Join(resp.Header.Values("Set-Cookie"), " | ")
		if !strings.Contains(cookies, "sid=1; Path=/app; HttpOnly") || !strings.Contains(cookies, "sub=2; Path=/app/static") {
			t.Errorf("Set-Cookie %q, want paths under /app", cookies)
		}
		for path, want := range map[string]string{
			"/app/abs":       "http://box:2222/app/login",
			"/app/self":      "http://box:2222/app/login",
			"/app/aware":     "/app/login",
			"/app/elsewhere": "https://login.example.com/",
			"/app/relative":  "login",
			"/v/redir":       "/v/login",
			"/uh/abs":        "http://box:2222/uh/login",
		} {
			if l := do(path, "X-Self", hostOf(app)).Header.Get("Location"); l != want {
				t.Errorf("%s: Location %q, want %q", path, l, want)
			}
		}
	})
}

// An "Upgrade: h2c" offer (curl --http2 on plain http) is hop-by-hop: it
// never reaches the upstream, which answers the request as HTTP/1.1.
// WebSocket upgrades still pass (TestWebSocketEcho).
func TestH2CUpgradeNotForwarded(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		saw := make(chan string, 1)
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			saw <- fmt.Sprintf("upgrade=%q connection=%q settings=%q", r.Header.Get("Upgrade"), r.Header.Get("Connection"), r.Header.Get("HTTP2-Settings"))
			io.WriteString(w, "ok")
		}))
		defer b.Close()
		addr := startProxy(t, engine, nil, route("/="+hostOf(b)))
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: box\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"+
			"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		if got := <-saw; got != `upgrade="" connection="" settings=""` {
			t.Errorf("upstream saw %s", got)
		}
	})
}

// A WebSocket session is logged when it ends: status 101, the bytes each
// way, and the session's duration (it was logged as 200 with 0 bytes).
func TestWebSocketAccessLogShows101AndBytes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := httptest.NewServer(http.HandlerFunc(wsEcho))
		defer b.Close()
		var logs syncbuf.Buffer
		logged := make(chan string, 16)
		addr := startProxy(t, engine, slog.New(logtest.Notify{Handler: slog.NewTextHandler(&logs, nil), Logged: logged}), route("/ws/="+hostOf(b)))
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
		fmt.Fprintf(c, "GET /ws/socket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
		br := bufio.NewReader(c)
		if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v", err)
		}
		msg := strings.Repeat("y", 100)
		writeFrame(c, []byte(msg), true) // 2+4 header bytes and mask, 100 payload
		if got, err := readFrame(br); err != nil || string(got) != msg {
			t.Fatalf("echo: %q %v", got, err)
		}
		c.Close()
		for m := ""; m != "http"; {
			select {
			case m = <-logged:
			case <-time.After(5 * time.Second):
				t.Fatalf("no access line after the session ended:\n%s", logs.String())
			}
		}
		l := logs.String()
		for _, want := range []string{"status=101", "rx=106", "tx=102", "bytes=102"} {
			if !strings.Contains(l, want) {
				t.Errorf("access line lacks %q:\n%s", want, l)
			}
		}
	})
}

// The default wait for response headers is minutes, not ten: a model
// server that accepted and hung shows as a 504 the user sees, naming the
// upstream, the wait and the setting.
func TestHungUpstream504SaysWhichAndHowLong(t *testing.T) {
	if httproute.DefaultResponseHeaderTimeout > 2*time.Minute {
		t.Errorf("default response header timeout %v hides a hung upstream", httproute.DefaultResponseHeaderTimeout)
	}
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hung.Close()
	addr := startProxy(t, httproute.EngineOneport, nil,
		httproute.Route{Path: "/", Upstreams: []string{hostOf(hung)}, ResponseHeaderTimeout: 150 * time.Millisecond})
	code, body := fetch(t, http.DefaultClient, "http://"+addr+"/v1/chat/completions")
	want := "oneport: upstream " + hostOf(hung) + ": no response headers within 150ms (response_header_timeout"
	if code != 504 || !strings.HasPrefix(body, want) {
		t.Errorf("%d %q, want 504 %q...", code, body, want)
	}
}
