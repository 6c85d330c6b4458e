//go:build unix

package rawsock

import (
	"syscall"
	"testing"

	"github.com/oneport/oneport/internal/conntest"
)

// Peek reports nothing waiting, then a waiting byte without consuming
// it, then the end of the stream; Read takes the byte.
func TestPeekAndRead(t *testing.T) {
	c, s := conntest.TCPPair(t)
	rc, err := s.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	peek := func() (n int, errno syscall.Errno) {
		var b [1]byte
		rc.Read(func(fd uintptr) bool { n, errno = Peek(fd, b[:]); return true })
		return n, errno
	}
	// waitReadable blocks in the poller until s has something to read.
	waitReadable := func() {
		rc.Read(func(fd uintptr) bool { _, e := Peek(fd, make([]byte, 1)); return e != syscall.EAGAIN })
	}

	if n, e := peek(); n != 0 || e != syscall.EAGAIN {
		t.Fatalf("peek of an idle socket: %d, %v; want EAGAIN", n, e)
	}
	c.Write([]byte("x"))
	waitReadable()
	for range 2 { // a peek leaves the byte there
		if n, e := peek(); n != 1 || e != 0 {
			t.Fatalf("peek with a byte waiting: %d, %v", n, e)
		}
	}
	buf := make([]byte, 4)
	var n int
	var rerr error
	rc.Read(func(fd uintptr) bool { n, rerr = Read(fd, buf); return true })
	if n != 1 || rerr != nil || buf[0] != 'x' {
		t.Fatalf("read %d %q, %v", n, buf[:n], rerr)
	}
	c.Close()
	waitReadable()
	if n, e := peek(); n != 0 || e != 0 {
		t.Fatalf("peek at the end of the stream: %d, %v; want 0 and no error", n, e)
	}
}
