// Package oneporttest holds the fixtures that tests of the command line
// and of the daemon share: a config file in a temporary directory, HTTP
// backends, an in-process oneport that has started serving, an admin
// fixture and a client hammering a URL.
//
// It does not import the daemon, so that the daemon's own tests can use
// it: the caller passes the function that serves.
package oneporttest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// IsolateDirs points STATE_DIRECTORY and RUNTIME_DIRECTORY at a new
// temporary directory, so that no oneport a test starts, in process or as
// a child process, uses the host's /var/lib/oneport or /run/oneport. Call
// it from TestMain and the returned function after m.Run; it panics when
// no temporary directory can be made.
func IsolateDirs() (remove func()) {
	dir, err := os.MkdirTemp("", "oneport-test")
	if err != nil {
		panic(err)
	}
	os.Setenv("STATE_DIRECTORY", filepath.Join(dir, "state"))
	os.Setenv("RUNTIME_DIRECTORY", filepath.Join(dir, "run"))
	return func() { os.RemoveAll(dir) }
}

// WriteConfig writes body to oneport.toml in a directory removed when the
// test ends, and returns its path.
func WriteConfig(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "oneport.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Backend serves HTTP on a loopback port until the test ends, answering
// every request with "backend NAME saw PATH", and returns its address.
func Backend(t testing.TB, name string) string {
	return serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend %s saw %s", name, r.URL.Path)
	}))
}

// EchoBackend is Backend answering "upstream saw PATH".
func EchoBackend(t testing.TB) string {
	return serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream saw "+r.URL.Path)
	}))
}

func serveHTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// Get fetches url and returns the status code and body; a failed request
// fails the test.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// ServeFunc serves until ctx is done, calling onReady once with the
// address it listens on; it returns nil after a clean stop.
type ServeFunc func(ctx context.Context, onReady func(net.Addr)) error

// Start runs serve in a goroutine and returns the address it listens on
// once ready. When the test ends it cancels serve and waits for it; an
// error from serve fails the test.
func Start(t testing.TB, serve ServeFunc) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, func(a net.Addr) { ready <- a }) }()
	select {
	case a := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
		return a.String()
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	return ""
}

// Admin is oneport running with a config file and an admin socket; its
// one route "chat" at / goes to backend A (tag "blue") or B (tag "green").
type Admin struct {
	Addr, Socket, Config string
	A, B                 string // backends
}

// StartAdmin writes the config, with extra lines before the route, and
// starts oneport with start(t, "--config", path, "--admin-socket", socket);
// start returns the address oneport serves on.
func StartAdmin(t *testing.T, extra string, start func(t *testing.T, args ...string) string) *Admin {
	t.Helper()
	f := &Admin{A: Backend(t, "a"), B: Backend(t, "b")}
	f.Socket = filepath.Join(t.TempDir(), "admin.sock")
	f.Config = WriteConfig(t, fmt.Sprintf(`# my comments
listen = "127.0.0.1:0"
%s
[[route]]
name = "chat"
path = "/"
upstream = [{address = %q, tags = ["blue"]}, {address = %q, tags = ["green"]}]
tag = "blue"
`, extra, f.A, f.B))
	f.Addr = start(t, "--config", f.Config, "--admin-socket", f.Socket)
	return f
}

// Call sends a request to the admin API and returns the status code and
// body.
func (f *Admin) Call(t testing.TB, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://oneport"+path, strings.NewReader(body))
	// A client of its own over the socket: importing the admin package
	// would make this package unusable in the tests of the packages admin
	// imports (config).
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", f.Socket)
	}}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Get fetches path from oneport's port and returns "CODE BODY".
func (f *Admin) Get(t testing.TB, path string) string {
	t.Helper()
	code, body := Get(t, "http://"+f.Addr+path)
	return fmt.Sprintf("%d %s", code, body)
}

// Routes returns the admin API's GET /routes body.
func (f *Admin) Routes(t testing.TB) string {
	t.Helper()
	_, body := f.Call(t, "GET", "/routes", "")
	return body
}

// Hammering is clients sending GET url until Stop; every failed request
// or non-200 answer is a test error.
type Hammering struct {
	ok      atomic.Int64
	tick    chan struct{} // a request succeeded
	mu      sync.Mutex
	waiters map[string][]chan struct{} // closed at the next answer with the body
	done    chan struct{}
	wg      sync.WaitGroup
}

// Hammer starts n clients sending GET url through client.
func Hammer(t testing.TB, n int, client *http.Client, url string) *Hammering {
	h := &Hammering{tick: make(chan struct{}, 1), waiters: map[string][]chan struct{}{}, done: make(chan struct{})}
	for range n {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for {
				select {
				case <-h.done:
					return
				default:
				}
				resp, err := client.Get(url)
				if err != nil {
					t.Errorf("request failed: %v", err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d: %s", resp.StatusCode, body)
					continue
				}
				h.saw(string(body))
				h.ok.Add(1)
				select {
				case h.tick <- struct{}{}:
				default:
				}
			}
		}()
	}
	return h
}

// Next returns a channel closed when an answer with body arrives, from
// now on.
func (h *Hammering) Next(body string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := make(chan struct{})
	h.waiters[body] = append(h.waiters[body], c)
	return c
}

func (h *Hammering) saw(body string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.waiters[body] {
		close(c)
	}
	delete(h.waiters, body)
}

// WaitOK waits up to 30 seconds until n requests have succeeded.
func (h *Hammering) WaitOK(t testing.TB, n int64) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for h.ok.Load() < n {
		select {
		case <-h.tick:
		case <-timeout:
			t.Fatalf("%d requests succeeded, want %d", h.ok.Load(), n)
		}
	}
}

// OK returns how many requests have succeeded so far.
func (h *Hammering) OK() int64 { return h.ok.Load() }

// Stop ends the clients, waits for them and returns how many requests
// succeeded.
func (h *Hammering) Stop() int64 {
	close(h.done)
	h.wg.Wait()
	return h.ok.Load()
}
