//go:build unix

package daemon

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/admin"
	"github.com/oneport/oneport/internal/auth"
	"github.com/oneport/oneport/internal/oneporttest"
	"github.com/oneport/oneport/internal/syncbuf"
)

// keyClients holds the npm packages the real-client tests run.
var keyClients, _ = filepath.Abs("testdata/keyclients")

// needNode skips unless node and the npm packages are there.
func needNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed (Debian: nodejs); .ci/run installs it")
	}
	if _, err := os.Stat(filepath.Join(keyClients, "node_modules", "openai")); err != nil {
		t.Skipf("npm packages missing: run npm ci --prefix %s", keyClients)
	}
}

// keyBackend stands in for a model server and a browser app: OpenAI's
// /v1/models and /v1/chat/completions, an HTML page at /app/ whose script
// echoes through a WebSocket at /app/ws. It records every request's
// credentials, to check none of oneport's reaches it.
type keyBackend struct {
	addr string
	mu   sync.Mutex
	seen []string // Authorization, x-api-key and Cookie of each request
}

const appPage = `<!doctype html><title>app</title><script>
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/app/ws');
ws.onopen = () => ws.send('ping');
ws.onmessage = (m) => { document.title = 'echo:' + m.data; };
ws.onerror = () => { document.title = 'error'; };
</script>`

func startKeyBackend(t testing.TB) *keyBackend {
	b := &keyBackend{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.seen = append(b.seen, r.URL.Path+" authorization="+r.Header.Get("Authorization")+" x-api-key="+r.Header.Get("X-Api-Key")+" cookie="+r.Header.Get("Cookie"))
		b.mu.Unlock()
		switch r.URL.Path {
		case "/v1/models":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"object":"list","data":[{"id":"test-model","object":"model","created":1,"owned_by":"test"}]}`)
		case "/v1/chat/completions":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"test-model","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hello from upstream"}}]}`)
		case "/app/":
			io.WriteString(w, appPage)
		case "/app/ws":
			echoWebSocket(w, r)
		default:
			io.WriteString(w, "upstream saw "+r.URL.Path)
		}
	})}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	b.addr = ln.Addr().String()
	return b
}

func (b *keyBackend) requests() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.seen, "\n")
}

// echoWebSocket upgrades (RFC 6455 section 4.2.2), reads one short text
// frame and sends it back.
func echoWebSocket(w http.ResponseWriter, r *http.Request) {
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	c, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(sum[:]))
	rw.Flush()
	var hdr [2]byte
	if _, err := io.ReadFull(rw, hdr[:]); err != nil || hdr[1]&0x80 == 0 || hdr[1]&0x7f > 125 {
		return
	}
	var mask [4]byte
	payload := make([]byte, hdr[1]&0x7f)
	if _, err := io.ReadFull(rw, mask[:]); err != nil {
		return
	}
	if _, err := io.ReadFull(rw, payload); err != nil {
		return
	}
	for i := range payload {
		payload[i] ^= mask[i%4]
	}
	rw.Write(append([]byte{0x81, byte(len(payload))}, payload...))
	rw.Flush()
	io.Copy(io.Discard, rw) // until the browser closes
}

// keyFixture is oneport with routes to a keyBackend, a key file and an
// admin socket, its logs kept.
type keyFixture struct {
	*keyBackend
	addr, socket, keyFile, config string
	logs                          *syncbuf.Buffer
	stop                          func()
	reload                        chan struct{}
	flush                         time.Duration // Options.KeyFlush
}

func startKeyFixture(t testing.TB) *keyFixture { return startKeyFixtureWith(t, &keyFixture{}) }

// startKeyFixtureWith starts f, whose flush may be set.
func startKeyFixtureWith(t testing.TB, f *keyFixture) *keyFixture {
	t.Helper()
	dir := t.TempDir()
	f.keyBackend, f.socket, f.keyFile, f.logs = startKeyBackend(t), filepath.Join(dir, "admin.sock"), filepath.Join(dir, "keys"), &syncbuf.Buffer{}
	f.config = filepath.Join(dir, "oneport.toml")
	if err := os.WriteFile(f.config, []byte(fmt.Sprintf(`
listen = "127.0.0.1:0"
key_file = %q
metrics_path = "/metrics"
log_level = "debug"

[[route]]
name = "health"
path = "=/health"
upstream = %[2]q
auth = "none"

[[route]]
name = "main"
path = "/"
upstream = %[2]q
`, f.keyFile, f.keyBackend.addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	return f
}

// start serves f's config until the test ends or f.stop is called.
func (f *keyFixture) start(t testing.TB) {
	t.Helper()
	load := loader("--config", f.config, "--admin-socket", f.socket)
	cfg, res, err := load()
	if err != nil {
		t.Fatal(err)
	}
	var logs io.Writer = f.logs
	if _, bench := t.(*testing.B); bench {
		logs = io.Discard // a line per request would only grow the buffer
	}
	log, _ := NewLogger(cfg, logs)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	f.reload = make(chan struct{}, 1)
	go func() {
		done <- Serve(ctx, cfg, res, log, Options{Load: load, Reload: f.reload, KeyFlush: f.flush,
			OnReady: func(a net.Addr) { ready <- a }})
	}()
	select {
	case a := <-ready:
		f.addr = a.String()
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	var once sync.Once
	f.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(f.stop)
}

// addKey makes a key through the admin API and returns its secret.
func (f *keyFixture) addKey(t testing.TB, spec string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://oneport/keys", strings.NewReader(spec))
	resp, err := admin.NewClient(f.socket).HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var nk admin.NewKey
	if err := json.NewDecoder(resp.Body).Decode(&nk); err != nil || resp.StatusCode != 201 || !strings.HasPrefix(nk.Key, "op_") {
		t.Fatalf("add key %s: %d %v %+v", spec, resp.StatusCode, err, nk)
	}
	return nk.Key
}

func (f *keyFixture) admin(t testing.TB, method, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://oneport"+path, nil)
	resp, err := admin.NewClient(f.socket).HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// statusBody sends req without following redirects and returns its status
// and body.
func statusBody(t testing.TB, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// get sends a GET with the headers given as name, value pairs.
func (f *keyFixture) get(t testing.TB, path string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+f.addr+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return statusBody(t, req)
}

// The official OpenAI SDK works with a key, gets AuthenticationError with
// a wrong one and RateLimitError past a key's rate; curl works with
// x-api-key (as Anthropic's SDKs send) and -u user:KEY. No secret shows in
// the logs, the metrics, the admin API, the key store or upstream.
func TestKeysWithRealClients(t *testing.T) {
	f := startKeyFixture(t)
	if code, _ := f.get(t, "/v1/models"); code != 200 {
		t.Fatalf("no keys yet: %d, want the route open", code)
	}
	alice := f.addKey(t, `{"name":"alice"}`)
	limited := f.addKey(t, `{"name":"limited","rate":1}`)
	secrets := []string{alice, limited}
	if code, _ := f.get(t, "/v1/models"); code != 401 {
		t.Fatalf("after key add: %d, want 401 at once", code)
	}
	if code, _ := f.get(t, "/health"); code != 200 {
		t.Fatalf("public route: %d", code)
	}
	if code, body := f.get(t, "/sleep", "Authorization", "Bearer "+alice); code != 403 || !strings.Contains(body, "vLLM") {
		t.Fatalf("admin endpoint: %d %q", code, body)
	}

	t.Run("openai-sdk", func(t *testing.T) {
		needNode(t)
		run := func(key string, n int) map[string]any {
			out, err := exec.Command("node", filepath.Join(keyClients, "openai_client.mjs"), "http://"+f.addr+"/v1", key, fmt.Sprint(n)).CombinedOutput()
			if err != nil {
				t.Fatalf("node: %v\n%s", err, out)
			}
			var res map[string]any
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("node said %s", out)
			}
			return res
		}
		res := fmt.Sprint(run(alice, 1))
		if !strings.Contains(res, "ids:[test-model]") || !strings.Contains(res, "content:hello from upstream") {
			t.Errorf("valid key: %s", res)
		}
		res = fmt.Sprint(run("op_wrong", 1))
		if !strings.Contains(res, "cls:AuthenticationError") || !strings.Contains(res, "status:401") {
			t.Errorf("wrong key: %s", res)
		}
		res = fmt.Sprint(run(limited, 1)) // models and one chat: the second request is over 1/min
		if !strings.Contains(res, "cls:RateLimitError") || !strings.Contains(res, "status:429") {
			t.Errorf("over the rate: %s", res)
		}
	})

	t.Run("curl", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("curl not installed")
		}
		curl := func(args ...string) string {
			out, _ := exec.Command("curl", append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...).CombinedOutput()
			return string(out)
		}
		base := "http://" + f.addr
		if got := curl("-H", "x-api-key: "+alice, "-H", "anthropic-version: 2023-06-01", "-d", "{}", base+"/v1/messages"); got != "200" {
			t.Errorf("x-api-key: %s", got)
		}
		if got := curl("-u", "me:"+alice, base+"/anything"); got != "200" {
			t.Errorf("curl -u: %s", got)
		}
		if got := curl("-u", "me:op_nope", base+"/anything"); got != "401" {
			t.Errorf("curl -u with a wrong key: %s", got)
		}
	})

	// Use shows in the admin API, then no secret anywhere.
	code, keys := f.admin(t, "GET", "/keys")
	if code != 200 || !strings.Contains(keys, `"name": "alice"`) || !strings.Contains(keys, `"last_used"`) {
		t.Fatalf("GET /keys: %d %s", code, keys)
	}
	_, status := f.admin(t, "GET", "/status")
	_, adminMetrics := f.admin(t, "GET", "/metrics")
	_, metrics := f.get(t, "/metrics", "Authorization", "Bearer "+alice)
	if !strings.Contains(metrics, `oneport_key_requests_total{key="alice"}`) {
		t.Errorf("metrics do not name the key:\n%s", grepLines(metrics, "oneport_key"))
	}
	f.stop() // flushes last use to the store
	store, err := os.ReadFile(f.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(f.keyFile); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", st.Mode())
	}
	if !strings.Contains(string(store), "last_used=") {
		t.Errorf("last use not flushed at shutdown:\n%s", store)
	}
	for _, s := range secrets {
		for name, text := range map[string]string{"logs": f.logs.String(), "admin /keys": keys, "admin /status": status,
			"admin /metrics": adminMetrics, "metrics": metrics, "key store": string(store), "upstream": f.requests()} {
			if strings.Contains(text, s) || strings.Contains(text, s[3:]) {
				t.Errorf("a key's secret shows in the %s", name)
			}
		}
	}
	if !strings.Contains(grepLines(f.logs.String(), "msg=http "), "key=alice") {
		t.Errorf("access lines do not name the key:\n%s", f.logs)
	}
	if !strings.Contains(grepLines(f.logs.String(), "msg=\"http refused\""), "key=alice") {
		t.Errorf("refusals do not name the key:\n%s", f.logs)
	}
}

// Keys change at once through the admin API, survive a restart, and a key
// file that does not parse is refused at reload (the keys in force stay)
// and at start, with its line named.
func TestKeysChangeReloadRestart(t *testing.T) {
	f := startKeyFixture(t)
	alice := f.addKey(t, `{"name":"alice"}`)
	bob := f.addKey(t, `{"name":"bob"}`)
	auth := func(k string) int { c, _ := f.get(t, "/x", "Authorization", "Bearer "+k); return c }
	if auth(alice) != 200 || auth(bob) != 200 {
		t.Fatal("new keys not in force")
	}
	if code, body := f.admin(t, "DELETE", "/keys/bob"); code != 200 || strings.Contains(body, `"bob"`) {
		t.Fatalf("rm: %d %s", code, body)
	}
	if auth(bob) != 401 {
		t.Fatal("a removed key still works")
	}
	good, _ := os.ReadFile(f.keyFile)
	if err := os.WriteFile(f.keyFile, append(good, "broken line here\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := reloadAndWait(t, f)
	if !strings.Contains(srv, "line 3") {
		t.Errorf("reload refusal does not name the line: %s", srv)
	}
	if auth(alice) != 200 {
		t.Fatal("a refused reload dropped the keys in force")
	}
	f.stop()
	cfg, res, err := loader("--config", f.config, "--admin-socket", f.socket)()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newServer(context.Background(), &net.TCPAddr{}, cfg, res, slog.New(slog.DiscardHandler), Options{}); err == nil ||
		!strings.Contains(err.Error(), "line 3") {
		t.Fatalf("start with a broken key file: %v", err)
	}
	os.WriteFile(f.keyFile, good, 0o600)
	f.start(t)
	if auth(alice) != 200 || auth(bob) != 401 {
		t.Fatal("keys did not survive the restart")
	}
}

// Last use reaches the key store while oneport runs, not only at exit.
func TestKeysLastUseFlushed(t *testing.T) {
	f := &keyFixture{flush: 20 * time.Millisecond}
	f = startKeyFixtureWith(t, f)
	key := f.addKey(t, `{"name":"alice"}`)
	if code, _ := f.get(t, "/x", "Authorization", "Bearer "+key); code != 200 {
		t.Fatal(code)
	}
	if !f.logs.WaitFor("keys' last use written", 10*time.Second, nil) {
		t.Fatalf("last use never written:\n%s", f.logs)
	}
	if store, _ := os.ReadFile(f.keyFile); !strings.Contains(string(store), "alice sha256=") || !strings.Contains(string(store), "last_used=") {
		t.Fatalf("store:\n%s", store)
	}
}

// Where plain HTTP is redirected to HTTPS, the redirect comes before the
// key check: a browser never gets a login page, or a client a 401 that
// invites a key, over plain HTTP.
func TestKeysAfterHTTPSRedirect(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	path := oneporttest.WriteConfig(t, fmt.Sprintf("listen = \"127.0.0.1:0\"\nkey_file = %q\n[tls]\nredirect_http = [\"llm.example.com\"]\n[[route]]\npath = \"/\"\nupstream = %q\n",
		keys, oneporttest.EchoBackend(t)))
	if err := os.WriteFile(keys, []byte("a sha256="+strings.Repeat("00", 32)+" created=2026-01-01T00:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := startOneport(t, io.Discard, "--config", path, "--admin-socket", "off")
	req, _ := http.NewRequest("GET", "http://"+addr+"/lab/", nil)
	req.Host = "llm.example.com"
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 308 || !strings.HasPrefix(resp.Header.Get("Location"), "https://") {
		t.Fatalf("got %d %q, want the HTTPS redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
	req.Host = "other.example"
	if resp, err = http.DefaultTransport.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), "/.oneport/login") {
		t.Fatalf("other host: %d %q, want the login page", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// reloadAndWait reloads f's oneport as SIGHUP does and returns its logs
// once it has refused the reload.
func reloadAndWait(t *testing.T, f *keyFixture) string {
	t.Helper()
	f.reload <- struct{}{}
	if !f.logs.WaitFor("reload refused", 10*time.Second, nil) {
		t.Fatalf("reload not refused:\n%s", f.logs)
	}
	return f.logs.String()
}

// The login page works in a real browser: headless Chromium opens an app
// behind oneport, is sent to the login form, the key is typed in, and the
// session cookie then carries the app's WebSocket through oneport.
func TestKeysBrowserLogin(t *testing.T) {
	needNode(t)
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (Debian: chromium); .ci/run installs it")
	}
	f := startKeyFixture(t)
	key := f.addKey(t, `{"name":"browser"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-port=0", "about:blank")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	var wsURL string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "DevTools listening on "); ok {
			wsURL = u
			break
		}
	}
	if wsURL == "" {
		t.Fatal("chromium did not say where DevTools listens")
	}
	go io.Copy(io.Discard, stderr)
	out, err := exec.CommandContext(ctx, "node", filepath.Join(keyClients, "cdp_login.mjs"), wsURL, "http://"+f.addr+"/app/", key).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var res struct {
		LoginPage, AppPage, Title, Error string
		Cookie                           *struct {
			HTTPOnly bool   `json:"httpOnly"`
			SameSite string `json:"sameSite"`
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node said %s", out)
	}
	if res.Error != "" || res.LoginPage != "/.oneport/login?next=%2Fapp%2F" || res.AppPage != "/app/" || res.Title != "echo:ping" {
		t.Fatalf("browser login: %s", out)
	}
	if res.Cookie == nil || !res.Cookie.HTTPOnly || res.Cookie.SameSite != "Lax" {
		t.Errorf("session cookie: %s", out)
	}
	if r := f.requests(); !strings.Contains(r, "/app/ws") || strings.Contains(r, "oneport_session") {
		t.Errorf("upstream requests:\n%s", r)
	}
}

// BenchmarkKeys compares keep-alive requests through oneport with no keys
// configured (open) and with a Bearer key checked on each (key). allocs/op
// is one request's, client and backend (in this process) included.
func BenchmarkKeys(b *testing.B) {
	for _, withKey := range []bool{false, true} {
		name := map[bool]string{false: "open", true: "key"}[withKey]
		b.Run(name, func(b *testing.B) {
			f := startKeyFixture(b)
			req, _ := http.NewRequest("GET", "http://"+f.addr+"/v1/models", nil)
			if withKey {
				req.Header.Set("Authorization", "Bearer "+f.addKey(b, `{"name":"bench"}`))
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// oneport's own paths outside /.oneport/ (metrics_path, tunnel_path) need
// a key once keys exist, even where a public route's prefix covers them.
func TestOwnPathsNeedAKeyUnderAPublicRoute(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys")
	keys, secret, err := auth.Add(nil, auth.Spec{Name: "ops"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := (auth.Store{Path: keyFile}).Save(keys); err != nil {
		t.Fatal(err)
	}
	up := startKeyBackend(t)
	cfg := filepath.Join(dir, "oneport.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`key_file = %q
metrics_path = "/metrics"
tunnel_path = "/ssh"
state_dir = %q
[[route]]
path = "/"
upstream = %q
auth = "none"
`, keyFile, dir, up.addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := startOneport(t, io.Discard, "--config", cfg)
	get := func(path, key string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/v1/models", ""); code != 200 {
		t.Errorf("public route: %d, want 200", code)
	}
	for _, p := range []string{"/metrics", "/ssh"} {
		if code := get(p, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a key: %d, want 401", p, code)
		}
	}
	if code := get("/metrics", secret); code != 200 {
		t.Errorf("/metrics with a key: %d, want 200", code)
	}
}

// A reload refused after the key store was read (here by a redirect
// setting that changes only with a restart) keeps the keys in force: the
// new store's keys do not start working.
func TestRefusedReloadKeepsTheKeys(t *testing.T) {
	f := startKeyFixture(t)
	alice := f.addKey(t, `{"name":"alice"}`)
	other := filepath.Join(t.TempDir(), "keys")
	keys, bob, err := auth.Add(nil, auth.Spec{Name: "bob"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := (auth.Store{Path: other}).Save(keys); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(cfg), fmt.Sprintf("key_file = %q", f.keyFile),
		fmt.Sprintf("key_file = %q\ntransparent = true", other), 1)
	if err := os.WriteFile(f.config, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	reloadAndWait(t, f)
	if code, _ := f.get(t, "/v1/models", "Authorization", "Bearer "+alice); code != 200 {
		t.Errorf("the running key after a refused reload: %d, want 200", code)
	}
	if code, _ := f.get(t, "/v1/models", "Authorization", "Bearer "+bob); code != http.StatusUnauthorized {
		t.Errorf("a key of the refused reload's store: %d, want 401", code)
	}
}

// A route added at run time through the admin API gets the deny list (on
// the path its upstream receives) and key scopes as configured ones do.
func TestRuntimeRouteKeepsKeysAndDenyList(t *testing.T) {
	f := startKeyFixture(t)
	rtKey := f.addKey(t, `{"name":"rt","routes":["rt"]}`)
	req, _ := http.NewRequest("POST", "http://oneport/routes", strings.NewReader(`{"name":"rt","spec":"/rt/=`+f.keyBackend.addr+`"}`))
	resp, err := admin.NewClient(f.socket).HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("add route: %d %s", resp.StatusCode, b)
	}
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/rt/x", 200, "upstream saw /x"},
		{"/rt/sleep", 403, "admin endpoint closed"},
		{"/rt/api/pull", 403, "admin endpoint closed"},
		{"/other", 403, "may not use route main"},
	} {
		if code, body := f.get(t, tc.path, "Authorization", "Bearer "+rtKey); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %s, want %d %q", tc.path, code, body, tc.code, tc.want)
		}
	}
}
