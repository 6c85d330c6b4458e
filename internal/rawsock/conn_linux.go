//go:build linux

package rawsock

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// maxRaw is the largest read or write Conn makes without telling the
// scheduler. Copying more into or out of the kernel may take long enough
// that the thread should give its processor up meanwhile, as a plain
// system call lets it.
const maxRaw = 64 << 10

// Conn is a non-blocking socket whose Read and Write make their system
// calls as raw calls (syscall.RawSyscall), and wait in Go's poller
// (through syscall.RawConn) when the socket is not ready. Everything else
// is the net.Conn it wraps.
//
// Why: an ordinary system call tells the scheduler it may block. A write
// to a loopback peer runs the peer's receive path inside the call, tens
// of microseconds on a virtual machine; the runtime's monitor then hands
// the caller's processor to another thread, which it has to wake. For a
// proxy doing four such calls per request that was most of its context
// switches. A non-blocking socket's read or write never blocks, so there
// is nothing to hand off; reads and writes over maxRaw, and all of them
// under the race detector (see sysRead), still go through the plain call.
//
// Errors are what net.Conn's would be: io.EOF at the end of the stream,
// otherwise a *net.OpError ("read" or "write") wrapping a
// *os.SyscallError, os.ErrDeadlineExceeded or net.ErrClosed. As with a
// net.Conn, any number of goroutines may call its methods at once, and
// each Write is written whole before the next one starts.
type Conn struct {
	net.Conn
	rc syscall.RawConn

	// One read and one write at a time, each with the fields it uses;
	// the callbacks are made once so that a call does not allocate.
	rmu   sync.Mutex
	rp    []byte
	rn    int
	rerr  syscall.Errno
	readF func(uintptr) bool

	wmu    sync.Mutex
	wp     []byte
	wn     int
	werr   syscall.Errno
	writeF func(uintptr) bool

	pb    [1]byte // Quiet's peek, under rmu
	perr  syscall.Errno
	peekF func(uintptr) bool
}

// NewConn returns c reading and writing with raw calls when c is a
// socket that offers a syscall.RawConn, and c itself otherwise.
func NewConn(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	x := &Conn{Conn: c, rc: rc}
	x.readF = x.read
	x.writeF = x.write
	x.peekF = x.peek
	return x
}

// readOnce is Read: sysRead, and syscall.Read for an empty p.
func readOnce(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return syscall.Read(int(fd), p)
	}
	n, e := sysRead(fd, p)
	if e != 0 {
		return -1, e
	}
	return n, nil
}

// sysRead is read(2) of fd into p, which is not empty: a raw call of up
// to maxRaw bytes, otherwise syscall.Read. Under the race detector it is
// always syscall.Read, which tells the detector what the kernel wrote to
// p and orders the read after the process's earlier writes to any
// descriptor; a raw call tells it nothing, so races on p would go unseen
// and state handed over through a socket would be reported as a race.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	return sysCall(syscall.SYS_READ, syscall.Read, fd, p)
}

// sysWrite is write(2) of p, which is not empty, to fd, as sysRead reads.
func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	return sysCall(syscall.SYS_WRITE, syscall.Write, fd, p)
}

// sysCall makes the system call trap on fd and p, raw or through plain,
// the syscall package's function for it; see sysRead.
func sysCall(trap uintptr, plain func(int, []byte) (int, error), fd uintptr, p []byte) (int, syscall.Errno) {
	if raceEnabled || len(p) > maxRaw {
		n, err := plain(int(fd), p)
		if err != nil {
			return 0, err.(syscall.Errno)
		}
		return n, 0
	}
	r, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), e
}

// Read reads as net.Conn's Read does.
func (x *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	x.rmu.Lock()
	x.rp, x.rn, x.rerr = p, 0, 0
	err := x.rc.Read(x.readF)
	n, errno := x.rn, x.rerr
	x.rp = nil
	x.rmu.Unlock()
	switch {
	case err != nil:
		return 0, x.opError("read", err)
	case errno != 0:
		return 0, x.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (x *Conn) read(fd uintptr) bool {
	for {
		n, e := sysRead(fd, x.rp)
		switch e {
		case 0:
			x.rn = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait in the poller, then call again
		}
		x.rerr = e
		return true
	}
}

// Write writes as net.Conn's Write does: all of p, or an error.
func (x *Conn) Write(p []byte) (int, error) {
	x.wmu.Lock()
	x.wp, x.wn, x.werr = p, 0, 0
	err := x.rc.Write(x.writeF)
	n, errno := x.wn, x.werr
	x.wp = nil
	x.wmu.Unlock()
	switch {
	case err != nil:
		return n, x.opError("write", err)
	case errno != 0:
		return n, x.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

func (x *Conn) write(fd uintptr) bool {
	for x.wn < len(x.wp) {
		n, e := sysWrite(fd, x.wp[x.wn:])
		switch e {
		case 0:
			x.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait in the poller, then call again
		default:
			x.werr = e
			return true
		}
	}
	return true
}

// opError wraps err as net.Conn's methods do. An error of the RawConn
// itself (a deadline, a closed connection) comes as its own *net.OpError
// with a "raw-read" or "raw-write" op, whose cause is kept.
func (x *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: x.LocalAddr().Network(), Source: x.LocalAddr(), Addr: x.RemoteAddr(), Err: err}
}

// Quiet reports whether the connection is open with nothing waiting to
// be read, without waiting and without consuming anything: what a pooled
// connection must be before a request that cannot be resent is written
// to it. It makes one Peek and, unlike a RawConn callback made per call,
// allocates nothing.
func (x *Conn) Quiet() bool {
	x.rmu.Lock()
	defer x.rmu.Unlock()
	x.perr = 0
	if err := x.rc.Read(x.peekF); err != nil {
		return false
	}
	return x.perr == syscall.EAGAIN
}

func (x *Conn) peek(fd uintptr) bool {
	_, x.perr = Peek(fd, x.pb[:])
	return true // never wait
}

// NetConn returns the wrapped connection.
func (x *Conn) NetConn() net.Conn { return x.Conn }
