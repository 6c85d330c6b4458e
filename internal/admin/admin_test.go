//go:build unix

package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/config"
)

// A non-root oneport's socket goes to /tmp/oneport-UID, which any user
// could have made first to watch or replace the socket: a directory that
// is not ours is refused.
func TestAdminSocketDirOwnedByAnotherUserIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a directory owned by another user")
	}
	dir := filepath.Join(t.TempDir(), "oneport-1000")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	// As a non-root user would see it: root-owned directories are trusted,
	// so drop to a uid that owns neither.
	_, err := listenAs(t, 1000, filepath.Join(dir, "admin.sock"))
	if err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("got %v, want a refusal naming the owner", err)
	}
}

// A directory of ours that group or others may write is refused too.
func TestAdminSocketDirWritableByOthersIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := ListenUnix(filepath.Join(dir, "admin.sock"))
	if err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("got %v", err)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	ln, err := ListenUnix(filepath.Join(dir, "admin.sock"))
	if err != nil {
		t.Fatalf("a private directory was refused: %v", err)
	}
	ln.Close()
}

// listenAs runs checkDir's ownership rule for uid: the test process is
// root, so it compares against uid instead of its own.
func listenAs(t *testing.T, uid int, path string) (net.Listener, error) {
	t.Helper()
	old := geteuid
	geteuid = func() int { return uid }
	t.Cleanup(func() { geteuid = old })
	return ListenUnix(path)
}

// A new oneport that starts while the old one still drains holds no admin
// socket: it used to run without an admin API for good. It now retries
// until the socket is free, and says so.
func TestAdminSocketInUseIsRetriedUntilFree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	old, err := ListenUnix(path) // the draining oneport
	if err != nil {
		t.Fatal(err)
	}
	oldSrv := &http.Server{Handler: http.NotFoundHandler()}
	go oldSrv.Serve(old)

	logs := &logWatch{want: "admin API listening", seen: make(chan struct{})}
	s := &Server{Router: newRouter(t), Daemon: fakeDaemon{}, Log: slog.New(slog.NewTextHandler(logs, nil))}
	stop, err := s.Start(context.Background(), Options{Socket: path, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !logs.has("held by another oneport") {
		t.Errorf("the wait is not logged:\n%s", logs.text())
	}
	// The old oneport ends. Its socket file stays, as after a kill; the
	// retry replaces it once nothing answers there. (Removing the file here
	// raced with the retry: it could delete the new oneport's socket.)
	oldSrv.Close()
	select {
	case <-logs.seen:
	case <-time.After(10 * time.Second):
		t.Fatalf("admin socket never taken over:\n%s", logs.text())
	}
	var routes []Route
	if err := NewClient(path).Call("GET", "/routes", nil, &routes); err != nil {
		t.Fatalf("admin API after the retry: %v", err)
	}
}

// Stopping while still retrying ends the retrying.
func TestAdminRetryStopsWithTheDaemon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	old, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	go http.Serve(old, http.NotFoundHandler())
	s := &Server{Router: newRouter(t), Daemon: fakeDaemon{}, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	stop, err := s.Start(ctx, Options{Socket: path, RetryMin: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	stop() // returns only once the retrying goroutine has ended
}

// The API names a route's upstreams "upstream", as the config file does;
// "upstreams", the name older clients send, is still read.
func TestRouteJSONUsesConfigNamesAndAcceptsUpstreams(t *testing.T) {
	keys := config.RouteKeys()
	rt := reflect.TypeFor[Route]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name != "spec" && !slices.Contains(keys, name) {
			t.Errorf("admin JSON field %q is no [[route]] key (%v)", name, keys)
		}
	}
	b, _ := json.Marshal(RouteOf(httproute.Route{Path: "/", Upstreams: []string{"127.0.0.1:1"}}))
	if !strings.Contains(string(b), `"upstream":[{"address":"127.0.0.1:1"}]`) {
		t.Errorf("encoded %s", b)
	}
	for _, body := range []string{`{"upstream":[{"address":"127.0.0.1:1"}]}`, `{"upstreams":[{"address":"127.0.0.1:1"}]}`} {
		var r Route
		if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Upstream) != 1 || r.Upstream[0].Address != "127.0.0.1:1" {
			t.Errorf("%s: %+v %v", body, r, err)
		}
	}
	var r Route
	if err := json.Unmarshal([]byte(`{"colour":"red"}`), &r); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("unknown field: %v", err)
	}
}

func newRouter(t *testing.T) *httproute.Handler {
	h, err := httproute.NewHandler(nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type fakeDaemon struct{}

func (fakeDaemon) Status() Status                        { return Status{} }
func (fakeDaemon) Connections() any                      { return nil }
func (fakeDaemon) OpenConnections() map[string]int64     { return nil }
func (fakeDaemon) Certs() any                            { return nil }
func (fakeDaemon) Metrics() http.Handler                 { return http.NotFoundHandler() }
func (fakeDaemon) PersistRoutes([]httproute.Route) error { return nil }

// logWatch collects log text and closes seen when want is written.
type logWatch struct {
	want string
	seen chan struct{}
	mu   sync.Mutex
	buf  strings.Builder
	once sync.Once
}

func (l *logWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if strings.Contains(string(p), l.want) {
		l.once.Do(func() { close(l.seen) })
	}
	return len(p), nil
}

func (l *logWatch) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logWatch) has(s string) bool { return strings.Contains(l.text(), s) }

// The socket is made with mode 0660: the group may use the API, others not.
func TestAdminSocketMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("admin socket mode %v, want a socket with 0660", fi.Mode())
	}
}
