//go:build unix

package daemon

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/oneport/oneport/internal/auth"
	"github.com/oneport/oneport/internal/chromiumtest"
	"github.com/oneport/oneport/internal/syncbuf"
)

// wsApp is an app behind a route: a page, and a WebSocket echo
// (github.com/coder/websocket, HTTP/1.1 only) that negotiates the
// "echo.v1" subprotocol. It reports each upgrade it accepts.
func wsApp(t *testing.T, upgrades chan<- *http.Request) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			fmt.Fprint(w, "<!doctype html><title>app</title>app page")
			return
		}
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"echo.v1"}, InsecureSkipVerify: true})
		if err != nil {
			return
		}
		upgrades <- r
		defer ws.CloseNow()
		for {
			typ, msg, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			if err := ws.Write(context.Background(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// echoJS opens a WebSocket from the page to path with subprotocol
// echo.v1, sends one message, and returns "protocol|answer".
func echoJS(path string) string {
	return `new Promise(function (ok, fail) {
		var ws = new WebSocket("wss://" + location.host + "` + path + `", ["echo.v1"]);
		ws.onopen = function () { ws.send("hello over h2"); };
		ws.onmessage = function (e) { ok(ws.protocol + "|" + e.data); ws.close(); };
		ws.onerror = function () { fail(new Error("websocket error")); };
		setTimeout(function () { fail(new Error("no answer in 10s")); }, 10000);
	})`
}

// Chromium opens WebSockets to an HTTP/2 origin with extended CONNECT
// (RFC 8441) once oneport advertises it: over TLS that oneport terminates
// with ALPN h2, the socket reaches an HTTP/1.1 app behind a route, with
// the prefix stripped, and with keys on, by the login cookie. The access
// log proves the HTTP/2 path: method CONNECT, status 101.
func TestBrowserWebSocketOverHTTP2(t *testing.T) {
	chromiumtest.Find(t)
	upgrades := make(chan *http.Request, 4)
	app := wsApp(t, upgrades)
	keyFile := filepath.Join(t.TempDir(), "keys")
	keys, secret, err := auth.Add(nil, auth.Spec{Name: "browser"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}

	b := chromiumtest.Start(t)
	if err := b.Call("Security.setIgnoreCertificateErrors", map[string]any{"ignore": true}, nil); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, addr, page, ws, wantPath string) {
		t.Helper()
		b.Navigate("https://" + addr + page)
		if p, err := b.Eval("performance.getEntriesByType('navigation')[0].nextHopProtocol"); err != nil || p != "h2" {
			t.Fatalf("page loaded over %q (%v), want h2", p, err)
		}
		before := strings.Count(logs.String(), "method=CONNECT")
		got, err := b.Eval(echoJS(ws))
		if err != nil || got != "echo.v1|echo: hello over h2" {
			t.Fatalf("WebSocket from Chromium: %q, %v", got, err)
		}
		r := <-upgrades
		if r.URL.Path != wantPath || r.Proto != "HTTP/1.1" || r.Header.Get("X-Forwarded-Proto") != "https" {
			t.Errorf("app saw %s %s, X-Forwarded-Proto %q; want %s over HTTP/1.1 from https", r.Proto, r.URL.Path,
				r.Header.Get("X-Forwarded-Proto"), wantPath)
		}
		// The session's line is written when it ends.
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(logs.String(), "method=CONNECT") == before {
			if time.Now().After(deadline) {
				t.Fatalf("no access line with method=CONNECT: the WebSocket did not come over HTTP/2\n%s", logs.String())
			}
			logs.WaitFor("status=101", time.Second, nil)
		}
		line := ""
		for l := range strings.Lines(logs.String()) {
			if strings.Contains(l, "method=CONNECT") {
				line = l
			}
		}
		if !strings.Contains(line, "status=101") || !strings.Contains(line, "path="+ws) {
			t.Errorf("access line %q, want status=101 and path=%s", line, ws)
		}
	}

	t.Run("route", func(t *testing.T) {
		addr := startLogged(t, Options{}, logs, "--admin-socket", "off", "--route", "/="+app)
		check(t, addr, "/", "/ws", "/ws")
	})
	t.Run("stripped prefix", func(t *testing.T) {
		addr := startLogged(t, Options{}, logs, "--admin-socket", "off", "--route", "/app/="+app)
		check(t, addr, "/app/", "/app/ws", "/ws")
	})
	t.Run("keys and the login cookie", func(t *testing.T) {
		if err := os.WriteFile(keyFile, auth.FormatStore(keys), 0o600); err != nil {
			t.Fatal(err)
		}
		addr := startLogged(t, Options{}, logs, "--admin-socket", "off", "--key-file", keyFile, "--route", "/app/="+app)
		b.Navigate("https://" + addr + auth.LoginPath)
		if got, err := b.Eval(echoJS("/app/ws")); err == nil {
			t.Fatalf("WebSocket without the login cookie: %q, want a refusal", got)
		}
		if got, err := b.Eval(`fetch("` + auth.LoginPath + `", {method: "POST", body: new URLSearchParams({key: "` + secret +
			`", next: "/app/"})}).then(function (r) { return r.url; })`); err != nil || !strings.HasSuffix(got, "/app/") {
			t.Fatalf("login: %q, %v", got, err)
		}
		check(t, addr, "/app/", "/app/ws", "/ws")
	})
}
