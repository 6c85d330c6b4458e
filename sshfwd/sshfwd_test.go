package sshfwd_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/closedport"
	"github.com/oneport/oneport/internal/syncbuf"

	"github.com/oneport/oneport/internal/loadtest"
	"github.com/oneport/oneport/internal/relay"
	"github.com/oneport/oneport/internal/sshtest"
	"github.com/oneport/oneport/mux"
	"github.com/oneport/oneport/sshfwd"
)

// startMux serves a mux on 127.0.0.1:0 whose SSH target forwards to
// sshAddr, and returns its address.
func startMux(t testing.TB, s *mux.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, mux.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})
	return ln.Addr().String()
}

func forwardTo(addr string) *mux.Server {
	return &mux.Server{SSH: &sshfwd.Forwarder{Addr: addr}}
}

// sshServers are the servers logins are tested against: x/crypto/ssh in
// process, and a throwaway OpenSSH sshd (skipped without root or sshd).
var sshServers = map[string]func(testing.TB) *sshtest.Server{
	"in-process": sshtest.StartInProcess,
	"sshd":       sshtest.StartSSHD,
}

// An x/crypto/ssh client logs in through the mux and runs a command.
func TestLogin(t *testing.T) {
	for name, start := range sshServers {
		t.Run(name, func(t *testing.T) {
			srv := start(t)
			addr := startMux(t, forwardTo(srv.Addr))
			out, err := sshtest.Run(addr, srv.Client, "echo through oneport")
			if err != nil || out != "through oneport\n" {
				t.Fatalf("output %q, err %v", out, err)
			}
		})
	}
}

// The OpenSSH client, which sends its banner at once, logs in through the
// mux to both servers.
func TestOpenSSHClient(t *testing.T) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("OpenSSH client test skipped: ssh not installed (apt-get install openssh-client)")
	}
	for name, start := range sshServers {
		t.Run(name, func(t *testing.T) {
			srv := start(t)
			addr := startMux(t, forwardTo(srv.Addr))
			host, port, _ := net.SplitHostPort(addr)
			cmd := exec.Command(sshBin, "-F", "none", "-p", port, "-i", srv.KeyFile,
				"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
				"-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes",
				srv.User+"@"+host, "echo", "openssh", "through", "oneport")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "openssh through oneport") {
				t.Fatalf("ssh: %v\n%s", err, out)
			}
		})
	}
}

// A client that waits for the server to speak first gets the SSH banner
// once the sniff timeout passes.
func TestSilentClientGetsBanner(t *testing.T) {
	srv := sshtest.StartInProcess(t)
	s := forwardTo(srv.Addr)
	s.SniffTimeout = 100 * time.Millisecond
	addr := startMux(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
		t.Fatalf("banner %q, err %v", line, err)
	}
}

// With sshd down the client's connection is closed and one log line says
// why.
func TestSSHDDownClosesWithReason(t *testing.T) {
	dead := closedport.Addr(t)
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	s := &mux.Server{SSH: &sshfwd.Forwarder{Addr: dead, Logger: log}, Logger: log}
	addr := startMux(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("SSH-2.0-test\r\n"))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d, %v: connection not closed", n, err)
	}
	if !logs.WaitFor("upstream unreachable", 5*time.Second, nil) {
		t.Fatalf("no log line says why:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "connection refused") || !strings.Contains(logs.String(), dead) {
		t.Fatalf("log line lacks the address or the cause:\n%s", logs.String())
	}
}

// Bytes flow both ways and a half-close reaches the other side: the client
// shuts its write side and still reads everything the upstream sends after.
func TestHalfClose(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		c, err := up.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var got bytes.Buffer
		got.ReadFrom(c) // until the client's FIN
		c.Write(append([]byte("got:"), got.Bytes()...))
	}()
	addr := startMux(t, forwardTo(up.Addr().String()))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("SSH-2.0-half\r\n"))
	c.(*net.TCPConn).CloseWrite()
	var reply bytes.Buffer
	if _, err := reply.ReadFrom(c); err != nil {
		t.Fatal(err)
	}
	if reply.String() != "got:SSH-2.0-half\r\n" {
		t.Fatalf("reply %q", reply.String())
	}
}

// 10k connections that never send a byte do not stop a real login.
// Each one relayed holds four descriptors of this process (client,
// accepted, upstream, the in-process sshd's), so the file limit is raised
// for the test where it can be, and the flood made smaller where it
// cannot: a process out of descriptors would leave the login waiting in
// the listen backlog. The login is bounded, so it fails, not hangs.
func TestSilentFloodDoesNotBlockLogin(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test skipped in -short mode")
	}
	const want, perConn, spare = 10000, 4, 1024
	n := min(want, (raiseFileLimit(t, want*perConn+spare)-spare)/perConn)
	if n < want/10 {
		t.Skipf("file limit too low for a flood: room for %d connections", n)
	}
	srv := sshtest.StartInProcess(t)
	s := forwardTo(srv.Addr)
	addr := startMux(t, s)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	start := time.Now()
	out, err := sshtest.RunWithin(addr, srv.Client, "echo still here", 2*time.Minute)
	if err != nil || out != "still here\n" {
		t.Fatalf("login during flood: %q, %v", out, err)
	}
	t.Logf("login with %d silent connections open took %v", n, time.Since(start))
}

// An sshd on an IPv6 address is reached the same way.
func TestForwardToIPv6Upstream(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(loadtest.Serve(ln, loadtest.SSHLike))
	addr := startMux(t, forwardTo(ln.Addr().String()))
	if _, err := loadtest.ConnectBanner(addr); err != nil {
		t.Fatal(err)
	}
}

// A forced shutdown closes an idle session whose copies wait parked,
// without a goroutine: sshd sees its connection end, and so does the
// client.
func TestCloseEndsIdleSession(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	upConn := make(chan net.Conn, 1)
	go func() {
		c, err := up.Accept()
		if err != nil {
			return
		}
		upConn <- c
	}()
	base := relay.Parked()
	s := forwardTo(up.Addr().String())
	addr := startMux(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("SSH-2.0-idle\r\n"))
	var sshd net.Conn
	select {
	case sshd = <-upConn:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection reached the upstream")
	}
	defer sshd.Close()
	sshd.Write([]byte(loadtest.Banner))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	sshd.SetDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != loadtest.Banner {
		t.Fatalf("client read %q, %v", line, err)
	}
	// Both copies park once neither side has anything to send.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for relay.Parked() < base+2 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%d copies parked, want %d", relay.Parked(), base+2)
		}
	}
	s.Close()
	got, err := io.ReadAll(sshd)
	if err != nil || string(got) != "SSH-2.0-idle\r\n" {
		t.Fatalf("upstream read %q, %v; want the banner, then the end of the stream", got, err)
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("client: %v; want the end of the stream", err)
	}
}
