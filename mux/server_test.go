package mux

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoTarget answers each connection with its name and a newline, then
// echoes what it reads, like a server that speaks first (sshd).
type echoTarget struct {
	name   string
	got    chan *Conn
	closed chan struct{} // one per connection closed, after Close returned
}

func newEcho(name string) *echoTarget {
	return &echoTarget{name: name, got: make(chan *Conn, 100), closed: make(chan struct{}, 100)}
}

func (e *echoTarget) HandleConn(c net.Conn) {
	defer func() {
		c.Close()
		e.closed <- struct{}{}
	}()
	e.got <- c.(*Conn)
	fmt.Fprintf(c, "%s\n", e.name)
	io.Copy(c, c)
}

func (e *echoTarget) String() string { return e.name }

func startServer(t *testing.T, s *Server) string {
	addr, _ := startServing(t, s)
	return addr
}

// startServing is startServer that also returns a channel closed when
// Serve has returned, that is when the server has closed its listener.
func startServing(t *testing.T, s *Server) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	var serveErr error
	go func() {
		defer close(served)
		serveErr = s.Serve(ln)
	}()
	t.Cleanup(func() {
		s.Close()
		<-served
		if !errors.Is(serveErr, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", serveErr)
		}
	})
	return ln.Addr().String(), served
}

// await fails t unless ch delivers within 5 s.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal(what)
		panic("unreachable")
	}
}

// hook returns a channel that receives a value, without blocking the
// sender, each time the returned function is called: many calls before a
// receive leave one value.
func hook() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	return ch, func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read line: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\n")
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Every protocol reaches its own target, with every byte the client sent
// replayed, also when the first packet arrives one byte at a time.
func TestServeRoutesSplitFirstPackets(t *testing.T) {
	ssh, web, tl, fb, vpn := newEcho("ssh"), newEcho("http"), newEcho("tls"), newEcho("fallback"), newEcho("vpn")
	var sniffed atomic.Int64 // bytes the sniffer has read
	read, wake := hook()
	s := &Server{SSH: ssh, HTTP: web, TLS: tl, Fallback: fb, SniffTimeout: 5 * time.Second,
		Probes: []Probe{{Name: "openvpn", Prefix: []byte{0, 0x0e, 0x38}, Target: vpn}}, Logger: testLogger(t),
		hooks: &testHooks{sniffRead: func(n int) { sniffed.Add(int64(n)); wake() }}}
	addr := startServer(t, s)
	hello := clientHello(t, "llm.example.com", []string{"h2"}, 0)
	tests := []struct {
		first  []byte
		target *echoTarget
	}{
		{[]byte("SSH-2.0-Go\r\n"), ssh},
		{[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), web},
		{[]byte(h2cPreface), web},
		{hello, tl},
		{[]byte{0, 0x0e, 0x38, 9}, vpn},
		{[]byte("\x7fELF?"), fb},
	}
	for _, tt := range tests {
		t.Run(tt.target.name, func(t *testing.T) {
			sniffed.Store(0) // the last subtest's sniffing ended before its target got the conn
			c := dial(t, addr)
			// One byte per write, each read by the sniffer alone, until
			// sniffing ends (sc is then set).
			var sc *Conn
			for i := range tt.first {
				if _, err := c.Write(tt.first[i : i+1]); err != nil {
					t.Fatal(err)
				}
				for sc == nil && sniffed.Load() < int64(i+1) {
					select {
					case <-read:
					case sc = <-tt.target.got: // decided: the target reads the rest
					case <-time.After(5 * time.Second):
						t.Fatalf("the sniffer did not read byte %d", i)
					}
				}
			}
			r := bufio.NewReader(c)
			if got := readLine(t, r); got != tt.target.name {
				t.Fatalf("reached %q, want %q", got, tt.target.name)
			}
			echoed := make([]byte, len(tt.first))
			if _, err := io.ReadFull(r, echoed); err != nil || !bytes.Equal(echoed, tt.first) {
				t.Fatalf("replayed %q (%v), want %q", echoed, err, tt.first)
			}
			if sc == nil {
				sc = <-tt.target.got
			}
			if tt.target == tl && sc.Sniffed().SNI != "llm.example.com" {
				t.Errorf("SNI = %q", sc.Sniffed().SNI)
			}
		})
	}
}

// A client that says nothing reaches SSH once the sniff timeout passes,
// and gets the server's first words (the SSH banner).
func TestSilentClientGoesToSSH(t *testing.T) {
	ssh := newEcho("ssh")
	s := &Server{SSH: ssh, HTTP: newEcho("http"), SniffTimeout: 100 * time.Millisecond}
	addr := startServer(t, s)
	start := time.Now()
	c := dial(t, addr)
	if got := readLine(t, bufio.NewReader(c)); got != "ssh" {
		t.Fatalf("silent client reached %q", got)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("routed after %v, before the sniff timeout", d)
	}
	if p := (<-ssh.got).Sniffed().Proto; p != ProtoSilent {
		t.Fatalf("proto = %v, want silent", p)
	}
}

// OnTimeout overrides where silent clients go, and partial bytes at the
// deadline go to the fallback, replayed.
func TestTimeoutTargets(t *testing.T) {
	ssh, onTimeout, fb := newEcho("ssh"), newEcho("timeout"), newEcho("fallback")
	s := &Server{SSH: ssh, OnTimeout: onTimeout, Fallback: fb, SniffTimeout: 100 * time.Millisecond}
	addr := startServer(t, s)

	c := dial(t, addr)
	if got := readLine(t, bufio.NewReader(c)); got != "timeout" {
		t.Fatalf("silent client reached %q, want timeout target", got)
	}
	c = dial(t, addr)
	c.Write([]byte("GE")) // could still be GET: waits for the deadline
	r := bufio.NewReader(c)
	if got := readLine(t, r); got != "fallback" {
		t.Fatalf("partial method reached %q, want fallback", got)
	}
	b := make([]byte, 2)
	if _, err := io.ReadFull(r, b); err != nil || string(b) != "GE" {
		t.Fatalf("replayed %q, %v", b, err)
	}
}

// Past MaxPendingSniffs the oldest pending connection is closed, so new
// clients are still sniffed.
func TestPendingSniffsEvictOldest(t *testing.T) {
	web := newEcho("http")
	s := &Server{SSH: newEcho("ssh"), HTTP: web, SniffTimeout: time.Minute, MaxPendingSniffs: 2}
	changed := watchPending(s)
	addr := startServer(t, s)
	first := dial(t, addr)
	waitPending(t, s, changed, 1)
	dial(t, addr)
	waitPending(t, s, changed, 2)
	c := dial(t, addr)
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	if got := readLine(t, bufio.NewReader(c)); got != "http" {
		t.Fatalf("new client reached %q", got)
	}
	if _, err := first.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("oldest pending connection: read err = %v, want EOF (closed)", err)
	}
}

// watchPending makes s report changes to its pending sniffs, for
// waitPending; call it before s serves.
func watchPending(s *Server) <-chan struct{} {
	changed, wake := hook()
	s.hooks = &testHooks{pendingChanged: wake}
	return changed
}

// waitPending waits until s has n pending sniffs; changed is what
// watchPending returned.
func waitPending(t *testing.T, s *Server, changed <-chan struct{}, n int) {
	t.Helper()
	for {
		s.mu.Lock()
		got := s.pending.Len()
		s.mu.Unlock()
		if got == n {
			return
		}
		select {
		case <-changed:
		case <-time.After(5 * time.Second):
			t.Fatalf("pending sniffs never reached %d (%d)", n, got)
		}
	}
}

// Past MaxConns new connections are closed at once; closing one makes room.
func TestMaxConnsRefuses(t *testing.T) {
	ssh := newEcho("ssh")
	s := &Server{SSH: ssh, MaxConns: 1}
	addr := startServer(t, s)
	a := dial(t, addr)
	a.Write([]byte("SSH-2.0-a\r\n"))
	readLine(t, bufio.NewReader(a))
	b := dial(t, addr)
	if _, err := b.Read(make([]byte, 1)); err == nil {
		t.Fatal("second connection was served past MaxConns")
	}
	a.Close()
	await(t, ssh.closed, "first connection never ended")
	if n := s.ActiveConns(); n != 0 {
		t.Fatalf("%d connections active after the only one closed", n)
	}
	c := dial(t, addr)
	c.Write([]byte("SSH-2.0-c\r\n"))
	if got := readLine(t, bufio.NewReader(c)); got != "ssh" {
		t.Fatalf("after a close, got %q", got)
	}
}

// HTTP connections delivered through a ListenerTarget are served by a
// plain http.Server.
func TestListenerTargetServesHTTP(t *testing.T) {
	lt := NewListenerTarget("http", nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "path=%s", r.URL.Path)
	})}
	go srv.Serve(lt)
	t.Cleanup(func() { srv.Close() })
	s := &Server{SSH: newEcho("ssh"), HTTP: lt}
	addr := startServer(t, s)
	resp, err := http.Get("http://" + addr + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "path=/v1/models" {
		t.Fatalf("body = %q", body)
	}
}

// TLS connections reach the TLS target, which can terminate them: the
// replayed ClientHello is enough for crypto/tls.
func TestTLSTargetTerminates(t *testing.T) {
	lt := NewListenerTarget("tls", nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "over tls")
	})}
	cert := selfSigned(t)
	go srv.Serve(tls.NewListener(lt, &tls.Config{Certificates: []tls.Certificate{cert}}))
	t.Cleanup(func() { srv.Close() })
	addr := startServer(t, &Server{SSH: newEcho("ssh"), TLS: lt})
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := cl.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "over tls" {
		t.Fatalf("body = %q", body)
	}
}

// Shutdown lets an established session finish, then returns; when the
// grace period ends first it closes the session. No goroutine is left.
func TestShutdownGraceAndNoLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	s := &Server{SSH: newEcho("ssh")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	c := dial(t, ln.Addr().String())
	c.Write([]byte("SSH-2.0-x\r\n"))
	r := bufio.NewReader(c)
	readLine(t, r)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a live session = %v, want deadline exceeded", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("listener still accepts after Shutdown")
	}
	if _, err := io.ReadAll(r); err != nil {
		t.Fatalf("session was not closed cleanly: %v", err)
	}
	c.Close()
	checkNoLeaks(t, before)
}

// Shutdown returns as soon as sessions end by themselves.
func TestShutdownWaitsForSession(t *testing.T) {
	s := &Server{SSH: newEcho("ssh")}
	addr, served := startServing(t, s)
	c := dial(t, addr)
	c.Write([]byte("SSH-2.0-x\r\n"))
	r := bufio.NewReader(c)
	readLine(t, r)
	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(context.Background()) }()
	await(t, served, "Shutdown did not close the listener")
	// Shutdown is under way: the session must still carry bytes.
	if got := readLine(t, r); got != "SSH-2.0-x\r" {
		t.Fatalf("echoed %q, want the client's banner", got)
	}
	c.Write([]byte("ping"))
	echoed := make([]byte, 4)
	if _, err := io.ReadFull(r, echoed); err != nil || string(echoed) != "ping" {
		t.Fatalf("session after Shutdown began: read %q, %v", echoed, err)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) with a session open", err)
	default:
	}
	if s.ActiveConns() != 1 {
		t.Fatalf("session closed by a graceful Shutdown")
	}
	c.Close()
	if err := await(t, shutdown, "Shutdown did not return once the session ended"); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
}

func checkNoLeaks(t *testing.T, before int) {
	t.Helper()
	// A goroutine's exit is no event anyone can wait on: poll, bounded.
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var n int
	for n = runtime.NumGoroutine(); n > before; n = runtime.NumGoroutine() {
		select {
		case <-deadline:
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after shutdown, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		case <-tick.C:
		}
	}
}

// Probe succeeds while the server serves and fails once its accept loop is
// wedged; probes never reach a target.
func TestProbe(t *testing.T) {
	ssh := newEcho("ssh")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := &wedgeListener{Listener: ln, wedge: make(chan struct{})}
	s := &Server{SSH: ssh, Fallback: ssh}
	go s.Serve(wl)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Probe(ctx, ln.Addr().String()); err != nil {
		t.Fatalf("probe of a healthy server: %v", err)
	}
	if len(ssh.got) != 0 {
		t.Fatal("the probe reached a target")
	}
	wl.wedged.Store(true)
	s.Probe(ctx, ln.Addr().String()) // the accept in flight returns this one, then Accept blocks
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := s.Probe(ctx2, ln.Addr().String()); err == nil {
		t.Fatal("probe succeeded while the accept loop was wedged")
	}
	close(wl.wedge)
}

// wedgeListener blocks Accept forever once wedged, like a stuck loop.
type wedgeListener struct {
	net.Listener
	wedged atomic.Bool
	wedge  chan struct{}
}

func (w *wedgeListener) Accept() (net.Conn, error) {
	c, err := w.Listener.Accept()
	if w.wedged.Load() {
		<-w.wedge
	}
	return c, err
}

// Stats count handed-off connections and bytes by protocol.
func TestStats(t *testing.T) {
	ssh := newEcho("ssh")
	s := &Server{SSH: ssh, HTTP: newEcho("http")}
	addr := startServer(t, s)
	c := dial(t, addr)
	c.Write([]byte("SSH-2.0-x\r\n"))
	readLine(t, bufio.NewReader(c))
	if st := s.Stats(); st.Conns["ssh"] != 1 || st.Open["ssh"] != 1 || st.Conns["http"] != 0 {
		t.Fatalf("stats %+v", st)
	}
	c.Close()
	await(t, ssh.closed, "connection never closed")
	if st := s.Stats(); st.Open["ssh"] != 0 {
		t.Fatalf("%d ssh connections open after the only one closed", st.Open["ssh"])
	}
	if st := s.Stats(); st.RxBytes["ssh"] != 11 || st.TxBytes["ssh"] < 4 {
		t.Fatalf("bytes %+v", st)
	}
}

// Regression: a connection accepted just before shutdown and still being
// sniffed is handed off and served, not dropped (found as an EOF during a
// restart under load).
func TestStopAcceptingServesAcceptedConnections(t *testing.T) {
	web := newEcho("http")
	s := &Server{SSH: newEcho("ssh"), HTTP: web, SniffTimeout: 5 * time.Second}
	changed := watchPending(s)
	addr, served := startServing(t, s)
	c := dial(t, addr)
	c.Write([]byte("GE"))
	waitPending(t, s, changed, 1)
	stopped := make(chan error, 1)
	go func() { stopped <- s.StopAccepting(context.Background()) }()
	await(t, served, "StopAccepting did not close the listener")
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("new connections still accepted after StopAccepting")
	}
	c.Write([]byte("T / HTTP/1.0\r\n\r\n"))
	if got := readLine(t, bufio.NewReader(c)); got != "http" {
		t.Fatalf("accepted connection reached %q", got)
	}
	c.Close() // the echo target holds the connection until then
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// A connection whose Accept returns while StopAccepting closes the
// listener is served, not dropped: it has left the kernel's queue, which
// a restarted oneport shares through socket activation, so no other
// process can serve it (found as a reset during a restart under load).
func TestStopAcceptingServesConnectionAcceptedDuringClose(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &lateListener{Listener: inner, accepted: make(chan struct{}), closed: make(chan struct{})}
	web := newEcho("http")
	s := &Server{HTTP: web}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() { s.Close() })
	c := dial(t, inner.Addr().String())
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	await(t, ln.accepted, "the connection was never accepted")
	stopped := make(chan error, 1)
	go func() { stopped <- s.StopAccepting(context.Background()) }()
	if got := readLine(t, bufio.NewReader(c)); got != "http" {
		t.Fatalf("connection accepted during close reached %q", got)
	}
	c.Close()
	if err := await(t, stopped, "StopAccepting did not return"); err != nil {
		t.Fatal(err)
	}
	if err := await(t, served, "Serve did not return"); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
}

// A connection whose sniff ends after Close has closed the registered
// connections is closed, not handed off: Close would otherwise wait for a
// target serving a connection nothing will close.
func TestCloseClosesConnectionHandedOffDuringClose(t *testing.T) {
	web := newEcho("http")
	reached, release := make(chan struct{}), make(chan struct{})
	s := &Server{HTTP: web, hooks: &testHooks{handingOff: func() {
		close(reached)
		<-release
	}}}
	addr, served := startServing(t, s)
	c := dial(t, addr)
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	await(t, reached, "the connection was never sniffed")
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	await(t, served, "Close did not close the listener") // Close has begun
	close(release)
	await(t, closed, "Close waited on a connection handed off after it began")
	select {
	case <-web.got:
		t.Fatal("a connection was handed off after Close")
	default:
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("the connection is still open (read %d bytes)", n)
	}
}

// lateListener's Accept holds the connection it accepted until Close has
// been called, as when Accept and Close race.
type lateListener struct {
	net.Listener
	accepted  chan struct{} // closed once Accept has a connection
	closed    chan struct{} // closed by Close
	closeOnce sync.Once
	acceptOne sync.Once
}

func (l *lateListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.acceptOne.Do(func() { close(l.accepted) })
		<-l.closed
	}
	return c, err
}

func (l *lateListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// StopAccepting waits until targets have taken what was accepted: here
// the target is slow to take the connection (as an http.Server's accept
// loop can be), and StopAccepting must not return before it has.
func TestStopAcceptingWaitsForHandOff(t *testing.T) {
	taken := make(chan struct{})
	release := make(chan struct{})
	slow := targetFunc(func(c net.Conn) {
		close(taken)
		<-release
		c.Close()
	})
	s := &Server{SSH: slow}
	addr := startServer(t, s)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock() // before the server's cleanup waits for the target
	c := dial(t, addr)
	c.Write([]byte("SSH-2.0-x\r\n"))
	<-taken
	stopped := make(chan error, 1)
	go func() { stopped <- s.StopAccepting(context.Background()) }()
	select {
	case <-stopped:
		t.Fatal("StopAccepting returned while a target had not taken its connection")
	case <-time.After(100 * time.Millisecond):
	}
	unblock()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

type targetFunc func(net.Conn)

func (f targetFunc) HandleConn(c net.Conn) { f(c) }
