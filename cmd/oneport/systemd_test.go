//go:build unix

package main

import (
	"context"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/syncbuf"

	"github.com/oneport/oneport/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

// notifySocket listens where daemon.SdNotify sends and collects messages.
type notifySocket struct {
	conn *net.UnixConn
	msgs chan string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	n := &notifySocket{conn: c, msgs: make(chan string, 1000)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			for _, m := range strings.Split(string(buf[:k]), "\n") {
				n.msgs <- m
			}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return n
}

// next returns the next message that is not a watchdog ping.
func (n *notifySocket) next(t *testing.T) string {
	t.Helper()
	for {
		select {
		case m := <-n.msgs:
			if m != "WATCHDOG=1" {
				return m
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no notification")
		}
	}
}

// pings counts watchdog pings arriving within d.
func (n *notifySocket) pings(d time.Duration) (count int, other []string) {
	end := time.After(d)
	for {
		select {
		case m := <-n.msgs:
			if m == "WATCHDOG=1" {
				count++
			} else {
				other = append(other, m)
			}
		case <-end:
			return count, other
		}
	}
}

// wedgeListener's Accept blocks while wedged, like a stuck serving loop.
type wedgeListener struct {
	net.Listener
	mu     sync.Mutex
	wedged chan struct{} // nil when not wedged
}

func (w *wedgeListener) Accept() (net.Conn, error) {
	c, err := w.Listener.Accept()
	w.mu.Lock()
	ch := w.wedged
	w.mu.Unlock()
	if ch != nil {
		<-ch
	}
	return c, err
}

func (w *wedgeListener) set(on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if on {
		w.wedged = make(chan struct{})
	} else if w.wedged != nil {
		close(w.wedged)
		w.wedged = nil
	}
}

// Notifications come in order (READY, STATUS, RELOADING/READY around a
// reload, STOPPING), and watchdog pings stop while the serving loop is
// wedged, then resume.
func TestNotifyOrderAndWatchdog(t *testing.T) {
	ns := newNotifySocket(t)
	t.Setenv("WATCHDOG_USEC", "150000")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := &wedgeListener{Listener: ln}
	path := writeConfig(t, "listen = \"127.0.0.1:0\"\n")
	args := []string{"--config", path}
	cfg, err := parseServeFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cfg.validate()
	if err != nil {
		t.Fatal(err)
	}
	reload := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serveContext(ctx, cfg, res, discardLogger(), runOptions{args: args, listener: wl, reload: reload})
	}()
	if m := ns.next(t); m != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	if m := ns.next(t); !strings.HasPrefix(m, "STATUS=serving SSH") {
		t.Fatalf("second notification %q, want STATUS=serving ...", m)
	}
	if n, _ := ns.pings(500 * time.Millisecond); n < 3 {
		t.Fatalf("%d watchdog pings in 500ms with a 150ms watchdog", n)
	}
	reload <- struct{}{}
	for _, want := range []string{"RELOADING=1", "STATUS=serving", "READY=1"} {
		if m := ns.next(t); !strings.HasPrefix(m, want) {
			t.Fatalf("reload notification %q, want %q", m, want)
		}
	}

	wl.set(true)
	ns.pings(200 * time.Millisecond) // one probe may be in flight
	if n, _ := ns.pings(500 * time.Millisecond); n != 0 {
		t.Fatalf("%d watchdog pings while the serving loop was wedged", n)
	}
	wl.set(false)
	if n, _ := ns.pings(500 * time.Millisecond); n == 0 {
		t.Fatal("watchdog pings did not resume")
	}
	cancel()
	if m := ns.next(t); m != "STOPPING=1" {
		t.Fatalf("on stop %q, want STOPPING=1", m)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Reload under load: while clients hammer HTTP routes and an SSH session
// streams, 20 reloads (one of them invalid) fail no request and break no
// session; routes change as the file says.
func TestReloadUnderLoad(t *testing.T) {
	srv := sshtest.StartInProcess(t)
	a, b := namedBackend(t, "a"), namedBackend(t, "b")
	path := writeConfig(t, "")
	write := func(up string, valid bool) {
		body := fmt.Sprintf("listen = \"127.0.0.1:0\"\nssh = %q\n[[route]]\npath = \"/llm/\"\nupstream = %q\n", srv.Addr, up)
		if !valid {
			body += "[[route]]\npath = \"nope\"\nupstream = \"x\"\n"
		}
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(a, true)
	args := []string{"--config", path}
	cfg, err := parseServeFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cfg.validate()
	if err != nil {
		t.Fatal(err)
	}
	reload := make(chan struct{})
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs syncbuf.Buffer
	log, _ := newLogger(cfg, &logs)
	go func() {
		done <- serveContext(ctx, cfg, res, log, runOptions{args: args, reload: reload, onReady: func(a net.Addr) { ready <- a }})
	}()
	addr := (<-ready).String()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	// An SSH session that streams through cat for the whole test.
	client, err := ssh.Dial("tcp", addr, srv.Client)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	if err := sess.Start("cat"); err != nil {
		t.Fatal(err)
	}
	var streamed atomic.Int64
	streamErr := make(chan error, 1)
	stopStream := make(chan struct{})
	go func() {
		buf := make([]byte, 64)
		line := []byte(strings.Repeat("x", 63) + "\n")
		for {
			select {
			case <-stopStream:
				streamErr <- nil
				return
			default:
			}
			if _, err := stdin.Write(line); err != nil {
				streamErr <- fmt.Errorf("session write: %w", err)
				return
			}
			if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != string(line) {
				streamErr <- fmt.Errorf("session read %q: %v", buf, err)
				return
			}
			streamed.Add(1)
		}
	}()

	// HTTP clients, each request checked.
	stopHTTP := hammer(t, 4, &http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/llm/v1/models")
	for i := range 20 {
		time.Sleep(25 * time.Millisecond)
		switch {
		case i == 10:
			write(b, false) // invalid: refused, the old routes keep serving
		case i%2 == 0:
			write(b, true)
		default:
			write(a, true)
		}
		reload <- struct{}{}
	}
	time.Sleep(50 * time.Millisecond)
	ok, seen := stopHTTP()
	close(stopStream)
	if err := <-streamErr; err != nil {
		t.Fatalf("SSH session broke during reloads: %v", err)
	}
	stdin.Close()
	sess.Wait()
	if ok == 0 {
		t.Fatal("no request succeeded")
	}
	for _, want := range []string{"backend a saw /v1/models", "backend b saw /v1/models"} {
		if !seen[want] {
			t.Errorf("never served %q: reloads did not switch routes", want)
		}
	}
	if streamed.Load() == 0 {
		t.Error("SSH session streamed nothing")
	}
	if l := logs.String(); !strings.Contains(l, "reload refused") || !strings.Contains(l, path+":") {
		t.Errorf("invalid reload not logged with its place:\n%s", l)
	}
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

// Socket activation with systemd-socket-activate: oneport serves the
// socket it is given.
func TestSocketActivation(t *testing.T) {
	sa, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed (Debian package systemd)")
	}
	backend := namedBackend(t, "a")
	var logs *syncbuf.Buffer
	for try := 0; ; try++ {
		// The port is picked, freed, then bound by systemd-socket-activate:
		// another socket may take it in between, so try a few.
		addr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
		// systemd-socket-activate gives its child a fresh environment: pass
		// on where TestMain keeps state and sockets.
		cmd := exec.Command(sa, "-l", addr, "-E", "STATE_DIRECTORY", "-E", "RUNTIME_DIRECTORY", oneportBinary(t), "--route", "/="+backend)
		logs = &syncbuf.Buffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}()
		body, err := getRetry("http://" + addr + "/x")
		if err == nil && body == "backend a saw /x" {
			break
		}
		if try == 5 || !strings.Contains(logs.String(), "in use") {
			t.Fatalf("%q %v\n%s", body, err, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "using the socket passed by systemd") {
		t.Errorf("log does not say the socket came from systemd:\n%s", logs.String())
	}
}

// Restart without refusing anyone: the socket stays open across the
// restart (as with oneport.socket), so a client connecting all the while
// sees no failure.
func TestRestartKeepsSocket(t *testing.T) {
	backend := namedBackend(t, "a")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := func() *exec.Cmd {
		// As systemd does: the socket as fd 3, LISTEN_PID the service's pid.
		cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`, oneportBinary(t), "--route", "/="+backend)
		cmd.ExtraFiles = []*os.File{f}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := start()
	addr := ln.Addr().String()
	if _, err := getRetry("http://" + addr + "/"); err != nil {
		t.Fatal(err)
	}
	stop := hammer(t, 1, &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		"http://"+addr+"/restart")
	time.Sleep(100 * time.Millisecond)
	first.Process.Signal(syscall.SIGTERM)
	first.Wait()
	second := start()
	time.Sleep(300 * time.Millisecond)
	successes, _ := stop()
	second.Process.Signal(syscall.SIGTERM)
	second.Wait()
	if successes < 10 {
		t.Fatalf("%d successes across the restart", successes)
	}
}

// hammer sends GET url from n goroutines until the returned stop is called;
// every failed request or non-200 answer is a test error. stop reports how
// many requests succeeded and the bodies seen.
func hammer(t *testing.T, n int, client *http.Client, url string) (stop func() (int64, map[string]bool)) {
	var ok atomic.Int64
	var mu sync.Mutex
	seen := map[string]bool{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
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
				mu.Lock()
				seen[string(body)] = true
				mu.Unlock()
				ok.Add(1)
			}
		}()
	}
	return func() (int64, map[string]bool) {
		close(done)
		wg.Wait()
		return ok.Load(), seen
	}
}

func getRetry(url string) (string, error) {
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var resp *http.Response
		resp, err = http.Get(url)
		if err != nil {
			continue
		}
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b), rerr
	}
	return "", err
}

func freeTCPPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
