package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrInUse is returned by ListenUnix when a live process serves the
// socket: a oneport that still drains its connections after a restart.
var ErrInUse = errors.New("in use by a running oneport")

// Options say where the admin API is served.
type Options struct {
	// Socket is the unix socket's path; "" or "off" serves none.
	Socket string
	// Listen, if set, also serves on TCP, behind Token.
	Listen, Token string
	// RetryMin and RetryMax bound the wait between tries to take a socket
	// another oneport still holds; zero means 100ms and 5s.
	RetryMin, RetryMax time.Duration
}

// Start serves the admin API as o says, until stop is called or ctx is
// done. A socket still held by a oneport that drains its connections is
// retried in the background, with backoff, and logged when it is taken.
// stop closes the listeners, removes the socket this server made and
// waits for the retrying to end.
func (s *Server) Start(ctx context.Context, o Options) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		stops []func()
	)
	add := func(f func()) {
		mu.Lock()
		defer mu.Unlock()
		stops = append(stops, f)
	}
	stop = func() {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, f := range stops {
			f()
		}
		stops = nil
	}
	if o.Socket != "" && o.Socket != "off" {
		ln, err := ListenUnix(o.Socket)
		switch {
		case errors.Is(err, ErrInUse):
			s.Log.Warn("admin socket held by another oneport; retrying until it is free", "socket", o.Socket)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ln := s.retry(ctx, o); ln != nil {
					add(s.serveUnix(ln, o.Socket))
				}
			}()
		case err != nil:
			stop()
			return nil, fmt.Errorf("admin socket: %w", err)
		default:
			add(s.serveUnix(ln, o.Socket))
			s.Log.Info("admin API listening", "socket", o.Socket)
		}
	}
	if o.Listen != "" {
		ln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			stop()
			return nil, fmt.Errorf("admin listen: %w", err)
		}
		hs := &http.Server{Handler: RequireToken(o.Token, s.Handler()), ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		add(func() { hs.Close() })
		s.Log.Info("admin API listening on TCP (token required)", "addr", ln.Addr().String())
	}
	return stop, nil
}

// retry tries to take the socket with backoff until it is free, ctx is
// done or another error says it never will be; it returns nil then.
func (s *Server) retry(ctx context.Context, o Options) net.Listener {
	wait, most := o.RetryMin, o.RetryMax
	if wait <= 0 {
		wait = 100 * time.Millisecond
	}
	if most <= 0 {
		most = 5 * time.Second
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for tries := 1; ; tries++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		ln, err := ListenUnix(o.Socket)
		switch {
		case err == nil:
			s.Log.Info("admin API listening", "socket", o.Socket, "tries", tries+1)
			return ln
		case !errors.Is(err, ErrInUse):
			s.Log.Error("admin API disabled", "err", fmt.Errorf("admin socket: %w", err))
			return nil
		}
		wait = min(2*wait, most)
		t.Reset(wait)
	}
}

// serveUnix serves ln and returns what stops it. The socket file is
// removed only while it is still ours: a oneport started meanwhile may
// have bound a new one at the path.
func (s *Server) serveUnix(ln net.Listener, path string) func() {
	mine, _ := os.Stat(path)
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	return func() {
		hs.Close()
		if now, err := os.Stat(path); err == nil && mine != nil && os.SameFile(mine, now) {
			os.Remove(path)
		}
	}
}

// ListenUnix listens on path with mode 0660, replacing a stale socket
// left by a killed run but never one a live oneport serves (ErrInUse).
// The directory holding it must belong to us (or root) and be writable by
// no one else: in a shared directory such as /tmp another user could
// replace the socket, or have made the directory to watch ours.
func ListenUnix(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s is %w", path, ErrInUse)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// RequireToken lets through only requests bearing token.
func RequireToken(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			fail(w, http.StatusUnauthorized, "admin API: missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}
