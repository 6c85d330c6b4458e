//go:build unix

package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/oneport/oneport/internal/discover/standin"
	"github.com/oneport/oneport/internal/oneporttest"
	"github.com/oneport/oneport/internal/sshtest"
	"github.com/oneport/oneport/internal/syncbuf"
)

// notifySocket listens where sd.SdNotify sends and collects messages.
type notifySocket struct {
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
	n := &notifySocket{msgs: make(chan string, 1000)}
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
		case <-time.After(10 * time.Second):
			t.Fatal("no notification")
		}
	}
}

// waitPings waits for count watchdog pings.
func (n *notifySocket) waitPings(t *testing.T, count int) {
	t.Helper()
	for count > 0 {
		select {
		case m := <-n.msgs:
			if m == "WATCHDOG=1" {
				count--
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("watchdog pings stopped, %d missing", count)
		}
	}
}

// drain discards what has arrived so far.
func (n *notifySocket) drain() {
	for {
		select {
		case <-n.msgs:
		default:
			return
		}
	}
}

// wedgeListener's Accept blocks while wedged, like a stuck serving loop,
// and says so on stuck.
type wedgeListener struct {
	net.Listener
	stuck  chan struct{}
	mu     sync.Mutex
	wedged chan struct{} // nil when not wedged
}

func (w *wedgeListener) Accept() (net.Conn, error) {
	c, err := w.Listener.Accept()
	w.mu.Lock()
	ch := w.wedged
	w.mu.Unlock()
	if ch != nil {
		select {
		case w.stuck <- struct{}{}:
		default:
		}
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
	const every = 150 * time.Millisecond
	t.Setenv("WATCHDOG_USEC", fmt.Sprint(every.Microseconds()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := &wedgeListener{Listener: ln, stuck: make(chan struct{}, 1)}
	load := loader("--config", oneporttest.WriteConfig(t, "listen = \"127.0.0.1:0\"\n"), "--admin-socket", "off")
	cfg, res := mustLoad(t, load)
	reload := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, cfg, res, discardLogger(), Options{Load: load, Listener: wl, Reload: reload, DiscoverSkip: standin.Foreign})
	}()
	if m := ns.next(t); m != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	if m := ns.next(t); !strings.HasPrefix(m, "STATUS=serving SSH") {
		t.Fatalf("second notification %q, want STATUS=serving ...", m)
	}
	ns.waitPings(t, 3)
	reload <- struct{}{}
	for _, want := range []string{"RELOADING=1", "STATUS=serving", "READY=1"} {
		if m := ns.next(t); !strings.HasPrefix(m, want) {
			t.Fatalf("reload notification %q, want %q", m, want)
		}
	}

	wl.set(true)
	<-wl.stuck // a probe is stuck in the accept loop
	ns.drain() // a ping sent before it may have arrived
	select {
	case m := <-ns.msgs:
		t.Fatalf("%q while the serving loop was wedged", m)
	case <-time.After(4 * every): // more than the probe's own deadline
	}
	wl.set(false)
	ns.waitPings(t, 1)
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
	a, b := oneporttest.Backend(t, "a"), oneporttest.Backend(t, "b")
	path := oneporttest.WriteConfig(t, "")
	write := func(up string, valid bool) {
		body := fmt.Sprintf("listen = \"127.0.0.1:0\"\nadmin_socket = \"off\"\nssh = %q\n[[route]]\npath = \"/llm/\"\nupstream = %q\n", srv.Addr, up)
		if !valid {
			body += "[[route]]\npath = \"nope\"\nupstream = \"x\"\n"
		}
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(a, true)
	reload := make(chan struct{})
	reloaded := make(chan struct{}, 1)
	notify := func(state string) {
		if state == "READY=1" {
			select {
			case reloaded <- struct{}{}:
			default:
			}
		}
	}
	var logs syncbuf.Buffer
	addr := startLogged(t, Options{Reload: reload, Notify: notify}, &logs, "--config", path)
	<-reloaded // the READY of the start

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
	h := oneporttest.Hammer(t, 4, &http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/llm/v1/models")
	serving := "a"
	waitServed := func(name string) {
		t.Helper()
		select {
		case <-h.Next("backend " + name + " saw /v1/models"):
		case <-time.After(10 * time.Second):
			t.Fatalf("backend %s not served: the reload did not switch routes", name)
		}
	}
	waitServed(serving)
	for i := range 20 {
		switch {
		case i == 10:
			write(b, false) // invalid: refused, the old routes keep serving
		case i%2 == 0:
			write(b, true)
			serving = "b"
		default:
			write(a, true)
			serving = "a"
		}
		reload <- struct{}{}
		<-reloaded
		waitServed(serving)
	}
	ok := h.Stop()
	close(stopStream)
	if err := <-streamErr; err != nil {
		t.Fatalf("SSH session broke during reloads: %v", err)
	}
	stdin.Close()
	sess.Wait()
	if ok == 0 {
		t.Fatal("no request succeeded")
	}
	if streamed.Load() == 0 {
		t.Error("SSH session streamed nothing")
	}
	if l := logs.String(); !strings.Contains(l, "reload refused") || !strings.Contains(l, path+":") {
		t.Errorf("invalid reload not logged with its place:\n%s", l)
	}
}
