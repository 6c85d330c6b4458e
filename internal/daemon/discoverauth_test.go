//go:build linux

package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/oneport/oneport/internal/auth"
	"github.com/oneport/oneport/internal/discover/standin"
	"github.com/oneport/oneport/internal/oneporttest"
)

// send makes a request with an optional key and returns its status and
// body.
func send(t *testing.T, method, url, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return statusBody(t, req)
}

// xconnectStatus opens an RFC 8441 WebSocket stream over h2c (prior
// knowledge, as oneport serves it on its plain port) and returns the
// answer's status and body.
func xconnectStatus(t *testing.T, url, key string) (int, string) {
	t.Helper()
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, url, pr)
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("extended CONNECT %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		return resp.StatusCode, "" // an open stream: its body would not end
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The deny list and key scopes apply to discovered routes as to
// configured ones: the deny list to the path the model server receives
// (the /<model>/ prefix stripped), a key's scope by the route's name
// ("discovered:<model>", as the status page and logs show it), over
// HTTP/1.1 and over HTTP/2 WebSockets alike; and a configured public
// catch-all makes no discovered route public.
func TestDiscoveredRoutesKeepKeysAndDenyList(t *testing.T) {
	standin.Require(t)
	chat, llama := "a-chat-model", "a-llama:1b"
	s := standin.StartAll(t, standin.Spec{Kind: "vllm", Model: chat}, standin.Spec{Kind: "ollama", Model: llama})
	vllm, ollama := s[0], s[1]
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys")
	keys, chatKey, err := auth.Add(nil, auth.Spec{Name: "chat", Routes: []string{"discovered:" + chat}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keys, opsKey, err := auth.Add(keys, auth.Spec{Name: "ops", Admin: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := (auth.Store{Path: keyFile}).Save(keys); err != nil {
		t.Fatal(err)
	}
	found := func(r map[string]string) bool { return r["/"+chat+"/"] == vllm.Addr && r["/"+llama+"/"] == ollama.Addr }

	t.Run("no keys", func(t *testing.T) {
		c := make(scans, 1)
		addr := startWith(t, Options{OnDiscover: c.hook}, "--admin-socket", "off", "--discover-interval", "200ms",
			"--key-file", filepath.Join(dir, "none"))
		c.waitFor(t, "the stand-ins", found)
		if code, body := send(t, "GET", "http://"+addr+"/"+chat+"/v1/models", "", ""); code != 200 || !strings.Contains(body, chat) {
			t.Errorf("GET /%s/v1/models: %d %s", chat, code, body)
		}
		for _, path := range []string{"/" + chat + "/sleep", "/" + llama + "/api/pull"} {
			if code, body := send(t, "POST", "http://"+addr+path, "", "{}"); code != 403 || !strings.Contains(body, "admin endpoint closed") {
				t.Errorf("POST %s with no keys: %d %s, want 403 admin endpoint closed", path, code, body)
			}
		}
	})

	t.Run("keys", func(t *testing.T) {
		c := make(scans, 1)
		addr := startWith(t, Options{OnDiscover: c.hook}, "--admin-socket", "off", "--discover-interval", "200ms",
			"--key-file", keyFile)
		c.waitFor(t, "the stand-ins", found)
		base := "http://" + addr
		for _, tc := range []struct {
			method, path, key, body string
			code                    int
			want                    string
		}{
			{"GET", "/" + chat + "/v1/models", "", "", 401, "needs a key"},
			{"GET", "/" + chat + "/v1/models", chatKey, "", 200, `"id":"` + chat + `"`},
			{"GET", "/" + llama + "/api/tags", chatKey, "", 403, "may not use route discovered:" + llama},
			{"POST", "/" + llama + "/api/pull", chatKey, "{}", 403, "admin endpoint closed"},
			{"POST", "/" + chat + "/sleep", chatKey, "{}", 403, "admin endpoint closed"},
			// The discovered /v1/ gateway is a route of its own.
			{"POST", "/v1/chat/completions", chatKey, `{"model":"` + chat + `","messages":[]}`, 403, "may not use route discovered:gateway"},
			{"POST", "/v1/chat/completions", opsKey, `{"model":"` + chat + `","messages":[]}`, 200, `"served_by":"vllm"`},
			// The admin scope opens them, and the stand-in answers.
			{"POST", "/" + chat + "/sleep", opsKey, "{}", 200, `"slept":true`},
			{"POST", "/" + llama + "/api/pull", opsKey, "{}", 200, `"served_by":"ollama"`},
			{"GET", "/" + llama + "/api/tags", opsKey, "", 200, llama},
		} {
			if code, body := send(t, tc.method, base+tc.path, tc.key, tc.body); code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%s %s (key %.6s): %d %s, want %d %q", tc.method, tc.path, tc.key, code, body, tc.code, tc.want)
			}
		}
		// HTTP/2 WebSockets (extended CONNECT) are checked alike.
		if code, body := xconnectStatus(t, base+"/"+llama+"/ws", chatKey); code != 403 || !strings.Contains(body, "may not use route") {
			t.Errorf("h2 WebSocket to another discovered route: %d %s, want 403", code, body)
		}
		if code, body := xconnectStatus(t, base+"/"+chat+"/collective_rpc", chatKey); code != 403 || !strings.Contains(body, "admin endpoint closed") {
			t.Errorf("h2 WebSocket to an admin endpoint: %d %s, want 403", code, body)
		}
	})

	t.Run("public catch-all", func(t *testing.T) {
		mine := oneporttest.Backend(t, "mine")
		conf := filepath.Join(dir, "oneport.toml")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf("discover = true\ndiscover_interval = \"200ms\"\nkey_file = %q\n"+
			"[[route]]\nname = \"site\"\npath = \"/\"\nupstream = %q\nauth = \"none\"\n", keyFile, mine)), 0o600); err != nil {
			t.Fatal(err)
		}
		c := make(scans, 1)
		addr := startWith(t, Options{OnDiscover: c.hook}, "--admin-socket", "off", "--config", conf)
		c.waitFor(t, "the stand-ins", found)
		if code, body := send(t, "GET", "http://"+addr+"/other", "", ""); code != 200 || !strings.Contains(body, "mine") {
			t.Errorf("public catch-all: %d %s", code, body)
		}
		if code, body := send(t, "GET", "http://"+addr+"/"+chat+"/v1/models", "", ""); code != 401 {
			t.Errorf("discovered route under a public catch-all, no key: %d %s, want 401", code, body)
		}
	})
}
