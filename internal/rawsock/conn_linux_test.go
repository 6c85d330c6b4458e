//go:build linux

package rawsock

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/conntest"
)

// A Conn carries bytes both ways, whole, including writes much larger
// than the socket buffers (which wait in the poller for the reader) and
// than maxRaw (which take the plain call).
func TestConnCarriesBytes(t *testing.T) {
	c, s := conntest.TCPPair(t)
	rc, rs := NewConn(c), NewConn(s)
	if _, ok := rc.(*Conn); !ok {
		t.Fatalf("NewConn(%T) = %T, want *Conn", c, rc)
	}
	for _, size := range []int{1, 4 << 10, maxRaw, maxRaw + 1, 8 << 20} {
		want := make([]byte, size)
		rand.Read(want)
		done := make(chan error, 1)
		go func() {
			n, err := rc.Write(want)
			if err == nil && n != size {
				err = io.ErrShortWrite
			}
			done <- err
		}()
		got := make([]byte, size)
		if _, err := io.ReadFull(rs, got); err != nil {
			t.Fatalf("%d bytes: read: %v", size, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("%d bytes: write: %v", size, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: read differs from written", size)
		}
	}
	// A read larger than maxRaw takes the plain call and still gets what waits.
	if _, err := rc.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2*maxRaw)
	if n, err := rs.Read(big); err != nil || string(big[:n]) != "tail" {
		t.Fatalf("large read: %q, %v", big[:n], err)
	}
	if n, err := rs.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
}

// Errors are the ones net.Conn gives, so callers that tell a client that
// left (a *net.OpError), a deadline or a closed connection apart keep
// working.
func TestConnErrorsAsNetConn(t *testing.T) {
	t.Run("end of stream", func(t *testing.T) {
		c, s := conntest.TCPPair(t)
		c.Close()
		if n, err := NewConn(s).Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Fatalf("read after the peer closed: %d, %v; want io.EOF", n, err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		_, s := conntest.TCPPair(t)
		x := NewConn(s)
		x.SetReadDeadline(time.Now().Add(-time.Second))
		_, err := x.Read(make([]byte, 8))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read past the deadline: %v; want a timeout wrapping os.ErrDeadlineExceeded", err)
		}
		checkOp(t, err, "read")
	})
	t.Run("closed", func(t *testing.T) {
		_, s := conntest.TCPPair(t)
		x := NewConn(s)
		x.Close()
		_, err := x.Write([]byte("x"))
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after Close: %v; want net.ErrClosed", err)
		}
		checkOp(t, err, "write")
	})
	t.Run("reset", func(t *testing.T) {
		c, s := conntest.TCPPair(t)
		x := NewConn(s)
		c.SetLinger(0)
		c.Close() // RST
		_, err := x.Read(make([]byte, 8))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read after a reset: %v; want ECONNRESET", err)
		}
		var se *os.SyscallError
		if !errors.As(err, &se) || se.Syscall != "read" {
			t.Fatalf("read after a reset: %v; want an *os.SyscallError of read", err)
		}
		checkOp(t, err, "read")
	})
}

func checkOp(t *testing.T, err error, op string) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != op || oe.Net != "tcp" || oe.Source == nil || oe.Addr == nil {
		t.Fatalf("%v: want a *net.OpError of %s with both addresses", err, op)
	}
}

// Writes from many goroutines at once each arrive whole, as net.Conn
// promises, also when they wait in the poller for the reader.
func TestConnConcurrentWritesStayWhole(t *testing.T) {
	c, s := conntest.TCPPair(t)
	rc := NewConn(c)
	const writers, per, size = 8, 20, 32 << 10
	done := make(chan error, writers)
	for w := range writers {
		go func() {
			msg := bytes.Repeat([]byte{byte('a' + w)}, size)
			for range per {
				if _, err := rc.Write(msg); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	rs := NewConn(s)
	buf := make([]byte, size)
	got := make(map[byte]int)
	for i := range writers * per {
		if _, err := io.ReadFull(rs, buf); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if bytes.Count(buf, buf[:1]) != size {
			t.Fatalf("message %d is a mix of writes", i)
		}
		got[buf[0]]++
	}
	for w := range writers {
		if n := got[byte('a'+w)]; n != per {
			t.Errorf("writer %d: %d messages arrived, want %d", w, n, per)
		}
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// Quiet tells an open, silent connection from one with bytes waiting
// (left unread) and from one the peer closed or that was closed here,
// without allocating.
func TestConnQuiet(t *testing.T) {
	c, s := conntest.TCPPair(t)
	x := NewConn(s).(*Conn)
	if !x.Quiet() {
		t.Fatal("an open, silent connection is not quiet")
	}
	if a := testing.AllocsPerRun(100, func() { x.Quiet() }); a != 0 {
		t.Fatalf("Quiet allocates %v times", a)
	}
	c.Write([]byte("x"))
	waitReadable(t, x)
	if x.Quiet() {
		t.Fatal("quiet with a byte waiting")
	}
	buf := make([]byte, 1)
	if n, err := x.Read(buf); n != 1 || err != nil {
		t.Fatalf("the byte Quiet saw was consumed: %d, %v", n, err)
	}
	if !x.Quiet() {
		t.Fatal("not quiet once the byte was read")
	}
	c.Close()
	waitReadable(t, x)
	if x.Quiet() {
		t.Fatal("quiet after the peer closed")
	}
	x.Close()
	if x.Quiet() {
		t.Fatal("a closed connection is quiet")
	}
}

// waitReadable waits in the poller until x has a byte or the peer's FIN
// to read, without reading it.
func waitReadable(t *testing.T, x *Conn) {
	t.Helper()
	err := x.rc.Read(func(fd uintptr) bool {
		_, e := Peek(fd, make([]byte, 1))
		return e != syscall.EAGAIN
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A connection that is not a socket is returned as it is.
func TestNewConnPassesOthersThrough(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := NewConn(a); got != a {
		t.Fatalf("NewConn(net.Pipe) = %T, want the pipe itself", got)
	}
}

// Reading and writing a Conn allocates nothing.
func TestConnDoesNotAllocate(t *testing.T) {
	c, s := conntest.TCPPair(t)
	rc, rs := NewConn(c), NewConn(s)
	msg, buf := []byte("ping"), make([]byte, 4)
	allocs := testing.AllocsPerRun(200, func() {
		rc.Write(msg)
		io.ReadFull(rs, buf)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per write and read, want 0", allocs)
	}
}

// BenchmarkConnRoundTrip writes and reads a small message over loopback,
// through Conn and through the plain *net.TCPConn.
func BenchmarkConnRoundTrip(b *testing.B) {
	for _, raw := range []bool{true, false} {
		name := "net"
		if raw {
			name = "raw"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			c, s := conntest.TCPPair(b)
			var rc, rs net.Conn = c, s
			if raw {
				rc, rs = NewConn(c), NewConn(s)
			}
			msg, buf := make([]byte, 128), make([]byte, 128)
			for b.Loop() {
				rc.Write(msg)
				io.ReadFull(rs, buf)
			}
		})
	}
}

// What a goroutine wrote before it wrote to a socket is, for the race
// detector too, seen by a goroutine that read those bytes at the peer,
// whichever end is a Conn: syscall.Read and syscall.Write tell the
// detector so (for every descriptor of the process), and a test that
// checks a handler's state after its response arrived must not be
// reported as a race because the handler wrote through a Conn.
func TestConnOrdersMemoryForTheRaceDetector(t *testing.T) {
	for _, rawEnd := range []string{"writer", "reader"} {
		t.Run(rawEnd, func(t *testing.T) {
			c, s := conntest.TCPPair(t)
			var w, r net.Conn = c, s
			if rawEnd == "writer" {
				w = NewConn(c)
			} else {
				r = NewConn(s)
			}
			var state int
			werr := make(chan error, 1)
			go func() {
				state = 1
				_, err := w.Write([]byte{1})
				werr <- err
			}()
			if _, err := io.ReadFull(r, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			if state != 1 {
				t.Fatal("the write before the socket's is not seen after its bytes arrived")
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
		})
	}
}
