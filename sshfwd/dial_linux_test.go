//go:build linux

package sshfwd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/closedport"
)

// fullListener listens on 127.0.0.1 with an accept queue that two
// connections fill: the kernel drops further SYNs, so a new connect stays
// in progress until the queue has room. It returns the address and a
// function that accepts one queued connection.
func fullListener(t *testing.T) (netip.AddrPort, func()) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
	// Fill the queue; dials past what it holds time out and are dropped.
	for range 3 {
		if c, err := net.DialTimeout("tcp", ap.String(), 200*time.Millisecond); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	accept := func() {
		nfd, _, err := syscall.Accept(fd)
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { syscall.Close(nfd) })
	}
	return ap, accept
}

func TestDialAddrPortRefused(t *testing.T) {
	addr := closedport.Addr(t)
	_, err := dialAddrPort(netip.MustParseAddrPort(addr), time.Second, 0, 0)
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "dial tcp "+addr+": connect: connection refused") {
		t.Fatalf("err = %v, want the refusal, worded as net.Dialer words it", err)
	}
}

// A connect that stays in progress ends at the timeout.
func TestDialAddrPortTimeout(t *testing.T) {
	ap, _ := fullListener(t)
	start := time.Now()
	c, err := dialAddrPort(ap, 300*time.Millisecond, 0, 0)
	if err == nil {
		c.Close()
		t.Fatal("connected to a listener whose queue is full")
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %v, want about 300ms", d)
	}
}

// A connect in progress that the server takes later succeeds, and the
// connection works.
func TestDialAddrPortWaits(t *testing.T) {
	ap, accept := fullListener(t)
	inProgress := make(chan struct{})
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		<-inProgress
		accept() // room in the queue: the next SYN retransmission gets in
	}()
	c, err := dialInProgress(ap, 10*time.Second, 0, 0, func() { close(inProgress) })
	select {
	case <-inProgress:
	default:
		close(inProgress) // let the goroutine end
		<-accepted
		t.Fatal("connect did not stay in progress: the accept queue was not full")
	}
	<-accepted
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != ap.String() {
		t.Fatalf("connected to %s, want %s", got, ap)
	}
}

// Keepalive follows the setting: on with Go's period by default, off when
// negative.
func TestDialAddrPortKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ap := netip.MustParseAddrPort(ln.Addr().String())
	for _, tc := range []struct {
		ka       time.Duration
		on       int
		idleSecs int
	}{{DefaultKeepAlive, 1, 15}, {40 * time.Second, 1, 40}, {-1, 0, 0}} {
		c, err := dialAddrPort(ap, time.Second, 0, tc.ka)
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := c.(*net.TCPConn).SyscallConn()
		var on, idle int
		rc.Control(func(fd uintptr) {
			on, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
			idle, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		})
		c.Close()
		if on != tc.on || (tc.on == 1 && idle != tc.idleSecs) {
			t.Errorf("KeepAlive %v: SO_KEEPALIVE %d, TCP_KEEPIDLE %d; want %d, %d", tc.ka, on, idle, tc.on, tc.idleSecs)
		}
	}
}

// A Forwarder leaves keepalive off toward a loopback address unless
// KeepAlive asks for it.
func TestForwarderLoopbackKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		ka time.Duration
		on int
	}{{0, 0}, {40 * time.Second, 1}, {-1, 0}} {
		f := &Forwarder{Addr: ln.Addr().String(), KeepAlive: tc.ka}
		c, err := f.dial(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := c.(*net.TCPConn).SyscallConn()
		var on int
		rc.Control(func(fd uintptr) {
			on, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		})
		c.Close()
		if on != tc.on {
			t.Errorf("KeepAlive %v to %s: SO_KEEPALIVE %d, want %d", tc.ka, f.Addr, on, tc.on)
		}
	}
}

// The mark is on the socket before it connects (needs CAP_NET_ADMIN).
func TestDialAddrPortMark(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := dialAddrPort(netip.MustParseAddrPort(ln.Addr().String()), time.Second, 0x6f6e6570, 0)
	if errors.Is(err, syscall.EPERM) {
		t.Skip("SO_MARK needs CAP_NET_ADMIN: run as root to test it")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, _ := c.(*net.TCPConn).SyscallConn()
	var mark int
	rc.Control(func(fd uintptr) { mark, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK) })
	if mark != 0x6f6e6570 {
		t.Fatalf("SO_MARK %#x, want %#x", mark, 0x6f6e6570)
	}
}

// An IPv4-mapped address reaches the IPv4 listener, as with net.Dialer.
func TestDialAddrPortMapped(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	c, err := dialAddrPort(netip.MustParseAddrPort(fmt.Sprintf("[::ffff:127.0.0.1]:%d", port)), time.Second, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// IPv6 upstreams are dialed the same way.
func TestDialAddrPortIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	c, err := dialAddrPort(netip.MustParseAddrPort(ln.Addr().String()), time.Second, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c.Write([]byte("v6"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "v6" {
		t.Fatalf("read %q, %v", buf, err)
	}
}
