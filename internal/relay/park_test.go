//go:build linux

package relay

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/conntest"
)

// awaitParked waits until at least n directions are parked.
func awaitParked(t *testing.T, n int) {
	t.Helper()
	woke := make(chan struct{}, 1)
	f := func() {
		select {
		case woke <- struct{}{}:
		default:
		}
	}
	parkedHook.Store(&f)
	defer parkedHook.Store(nil)
	deadline := time.After(5 * time.Second)
	for Parked() < n {
		select {
		case <-woke:
		case <-deadline:
			t.Fatalf("%d directions parked, want %d", Parked(), n)
		}
	}
}

// copiesRunning counts goroutines running a pair's copy.
func copiesRunning() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "relay.(*pair).to")
}

// exchange sends a line each way through a relay and checks it arrives.
func exchange(t *testing.T, client, backend net.Conn, msg string) {
	t.Helper()
	buf := make([]byte, len(msg))
	for _, c := range [][2]net.Conn{{client, backend}, {backend, client}} {
		c[0].Write([]byte(msg))
		c[1].SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c[1], buf); err != nil || string(buf) != msg {
			t.Fatalf("read %q, %v; want %q", buf, err, msg)
		}
	}
}

// Idle relayed connections hold no goroutine: both copies of each park,
// wake when bytes come, and still end with a half-close each way.
func TestIdlePairsHoldNoGoroutine(t *testing.T) {
	const n = 20
	base := Parked()
	type relayed struct {
		client, backend net.Conn
		done            chan struct{}
	}
	var rs []relayed
	for range n {
		client, backend, done := pairUp(t, nil)
		rs = append(rs, relayed{client, backend, done})
		exchange(t, client, backend, "SSH-2.0-x\r\n")
	}
	awaitParked(t, base+2*n)
	if k := copiesRunning(); k != 0 {
		t.Fatalf("%d copies hold a goroutine while their connections are idle, want none", k)
	}
	for _, r := range rs {
		exchange(t, r.client, r.backend, "after parking")
	}
	for _, r := range rs {
		r.client.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(r.backend)
		if err != nil || len(got) != 0 {
			t.Fatalf("backend read %q, %v; want the client's FIN", got, err)
		}
		r.backend.Write([]byte("bye"))
		r.backend.(*net.TCPConn).CloseWrite()
		if got, err := io.ReadAll(r.client); err != nil || string(got) != "bye" {
			t.Fatalf("client read %q, %v; want the reply after its half-close", got, err)
		}
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Fatal("done not called after both directions ended")
		}
	}
}

// notifying is a connection that someone besides Pair may close, and that
// says so, as mux.Conn does.
type notifying struct {
	*net.TCPConn
	mu      sync.Mutex
	closed  bool
	onClose func()
}

func (c *notifying) NetConn() net.Conn { return c.TCPConn }

// ReadFrom and WriteTo copy through Copy, as mux.Conn's do.
func (c *notifying) ReadFrom(r io.Reader) (int64, error) { return Copy(c.TCPConn, r) }
func (c *notifying) WriteTo(w io.Writer) (int64, error)  { return Copy(w, c.TCPConn) }

func (c *notifying) OnClose(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.onClose = f
	return true
}

func (c *notifying) Close() error {
	err := c.TCPConn.Close()
	c.mu.Lock()
	c.closed = true
	f := c.onClose
	c.onClose = nil
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return err
}

// A parked connection closed by its other owner (mux on a forced
// shutdown) ends its pair: the far side is closed and done is called,
// though no byte will ever wake the copies.
func TestParkedPairEndsWhenClosedUnderIt(t *testing.T) {
	client, a := conntest.TCPPair(t)
	b, backend := conntest.TCPPair(t)
	wrapped := &notifying{TCPConn: a}
	done := make(chan struct{})
	base := Parked()
	Pair(nil, wrapped, b, func() { close(done) })
	exchange(t, client, backend, "hello")
	awaitParked(t, base+2)
	wrapped.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("done not called after the parked connection was closed")
	}
	backend.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := io.ReadAll(backend); err != nil || len(got) != 0 {
		t.Fatalf("backend read %q, %v; want the end of the stream", got, err)
	}
	if n := Parked(); n > base {
		t.Fatalf("%d directions still parked, want %d", n, base)
	}
}

// Bytes that arrive in bulk after a direction parked all get through.
func TestParkedPairCarriesBulk(t *testing.T) {
	client, backend, done := pairUp(t, nil)
	exchange(t, client, backend, "x")
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	go func() {
		client.Write(data)
		client.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(backend)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("backend read %d bytes (%v), want %d", len(got), err, len(data))
	}
	backend.(*net.TCPConn).CloseWrite()
	io.ReadAll(client)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("done not called")
	}
}

// A copy that cannot park (no epoll set to be had) waits in its
// goroutine instead, and the session goes on.
func TestCannotParkKeepsSession(t *testing.T) {
	thePark.mu.Lock()
	ep := thePark.ep
	thePark.ep = nil
	tried := make(chan struct{}, 2)
	epollCreate = func(int) (int, error) {
		tried <- struct{}{}
		return -1, syscall.EMFILE
	}
	thePark.mu.Unlock()
	defer func() {
		thePark.mu.Lock()
		thePark.ep = ep
		epollCreate = syscall.EpollCreate1
		thePark.mu.Unlock()
	}()
	client, backend, done := pairUp(t, nil)
	exchange(t, client, backend, "hello")
	for range 2 {
		select {
		case <-tried:
		case <-time.After(5 * time.Second):
			t.Fatal("the copies never tried to park")
		}
	}
	stillThereThenEnd(t, client, backend, done)
}

// A parkable copy that loses its pipe (out of file descriptors) just
// after bytes woke it goes on in user space with no read deadline left
// from waiting to park: the session lives on, idle, past parkAfter.
func TestNoPipeAfterWakeKeepsSession(t *testing.T) {
	base := Parked()
	client, backend, done := pairUp(t, nil)
	exchange(t, client, backend, "hello")
	awaitParked(t, base+2)

	// The next time the client's direction has nothing to read, it may
	// not make a pipe, and the client's next bytes are already there.
	var once sync.Once
	noPipe := func(p []int, flags int) error { return syscall.EMFILE }
	hook := func() {
		once.Do(func() {
			pipes.Lock()
			for _, p := range pipes.free {
				syscall.Close(p.r)
				syscall.Close(p.w)
			}
			pipes.free = nil
			pipe2 = noPipe
			pipes.Unlock()
			client.Write([]byte("two"))
		})
	}
	pipePut.Store(&hook)
	defer func() {
		pipePut.Store(nil)
		pipes.Lock()
		pipe2 = syscall.Pipe2
		pipes.Unlock()
	}()
	client.Write([]byte("one"))
	got := make([]byte, len("onetwo"))
	backend.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(backend, got); err != nil || string(got) != "onetwo" {
		t.Fatalf("backend read %q, %v; want %q", got, err, "onetwo")
	}
	// An idle session lives on: nothing ends it past parkAfter.
	select {
	case <-done:
		t.Fatal("the session ended while idle after a copy fell back to user space")
	case <-time.After(10 * parkAfter):
	}
	stillThereThenEnd(t, client, backend, done)
}

// stillThereThenEnd checks that the session between client and backend
// still carries bytes both ways, then ends it from both sides and waits
// for the pair's done.
func stillThereThenEnd(t *testing.T, client, backend net.Conn, done <-chan struct{}) {
	t.Helper()
	exchange(t, client, backend, "still there")
	client.(*net.TCPConn).CloseWrite()
	backend.(*net.TCPConn).CloseWrite()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("done not called")
	}
}
