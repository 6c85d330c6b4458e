//go:build unix

package daemon

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/oneport/oneport/internal/config"
)

// TestMain keeps every oneport the tests start away from the host's
// /var/lib/oneport and /run/oneport.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oneport-daemon-test")
	if err != nil {
		panic(err)
	}
	os.Setenv("STATE_DIRECTORY", filepath.Join(dir, "state"))
	os.Setenv("RUNTIME_DIRECTORY", filepath.Join(dir, "run"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "oneport.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// loader reads args as the command line does, for Serve and its reloads.
func loader(args ...string) func() (*config.Config, *config.Resolved, error) {
	return func() (*config.Config, *config.Resolved, error) {
		cfg, err := config.ParseFlags(args)
		if err != nil {
			return nil, nil, err
		}
		res, err := cfg.Validate()
		return cfg, res, err
	}
}

func mustLoad(t *testing.T, load func() (*config.Config, *config.Resolved, error)) (*config.Config, *config.Resolved) {
	t.Helper()
	cfg, res, err := load()
	if err != nil {
		t.Fatal(err)
	}
	return cfg, res
}

func namedBackend(t *testing.T, name string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend %s saw %s", name, r.URL.Path)
	})}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// hammering is clients sending GET url until stop; every failed request
// or non-200 answer is a test error.
type hammering struct {
	ok      atomic.Int64
	mu      sync.Mutex
	waiters map[string][]chan struct{} // closed at the next answer with the body
	done    chan struct{}
	wg      sync.WaitGroup
}

func hammer(t *testing.T, n int, client *http.Client, url string) *hammering {
	h := &hammering{waiters: map[string][]chan struct{}{}, done: make(chan struct{})}
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
			}
		}()
	}
	return h
}

// next returns a channel closed when an answer with body arrives, from
// now on.
func (h *hammering) next(body string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := make(chan struct{})
	h.waiters[body] = append(h.waiters[body], c)
	return c
}

func (h *hammering) saw(body string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.waiters[body] {
		close(c)
	}
	delete(h.waiters, body)
}

// stop ends the clients and returns how many requests succeeded.
func (h *hammering) stop() int64 {
	close(h.done)
	h.wg.Wait()
	return h.ok.Load()
}
