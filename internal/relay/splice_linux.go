//go:build linux

package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// spliceMax is the most one splice call moves, and the size asked of
// each pipe: the default limit of /proc/sys/fs/pipe-max-size.
const spliceMax = 1 << 20

// maxIdlePipes bounds the pipes kept for reuse; more are closed. Each
// 1 MiB pipe counts against the per-user pipe quota
// (/proc/sys/fs/pipe-user-pages-soft, 64 MiB by default), which the
// unprivileged oneport user cannot exceed; 16 idle pipes leave most of it
// to transfers in flight.
const maxIdlePipes = 16

// splicePipe is a pipe that carries bytes from one socket to another
// inside the kernel. n is how many bytes it holds.
type splicePipe struct {
	r, w int
	n    int
}

// pipes are the idle pipes, all empty. A connection takes one only while
// it has bytes in flight, so an idle connection holds no pipe: no file
// descriptors, no kernel pipe buffers, and no share of the per-user pipe
// quota (past which the kernel hands out small, slow pipes).
var pipes struct {
	sync.Mutex
	free []*splicePipe
}

func getPipe() (*splicePipe, error) {
	pipes.Lock()
	if n := len(pipes.free); n > 0 {
		p := pipes.free[n-1]
		pipes.free = pipes.free[:n-1]
		pipes.Unlock()
		return p, nil
	}
	mk := pipe2
	pipes.Unlock()
	var fds [2]int
	if err := mk(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil, err
	}
	// A larger pipe moves more per call. The kernel may refuse (the
	// per-user quota); a default pipe works, with more calls.
	syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[0]), syscall.F_SETPIPE_SZ, spliceMax)
	return &splicePipe{r: fds[0], w: fds[1]}, nil
}

// pipe2 makes a pipe (a variable for tests; guarded by pipes' lock).
var pipe2 = syscall.Pipe2

// pipePut, if set, is called after each putPipe (tests).
var pipePut atomic.Pointer[func()]

// putPipe keeps an empty pipe for reuse, and closes one that still holds
// bytes (they belong to a connection that failed) or is one too many.
func putPipe(p *splicePipe) {
	if f := pipePut.Load(); f != nil {
		defer (*f)()
	}
	if p.n == 0 {
		pipes.Lock()
		if len(pipes.free) < maxIdlePipes {
			pipes.free = append(pipes.free, p)
			pipes.Unlock()
			return
		}
		pipes.Unlock()
	}
	syscall.Close(p.r)
	syscall.Close(p.w)
}

// errNoSplice reports that splice(2) cannot go on for the pair (not
// supported, or no pipe to be had); no byte is in flight, so a user-space
// copy can take over.
var errNoSplice = errors.New("splice not supported")

// spliceCopy moves src's bytes to dst through a pipe, inside the kernel,
// until src ends, and returns how many bytes dst took. errNoSplice means
// the caller should copy the rest in user space, and errParked that src
// has had nothing to read for parkAfter and its direction parks (see
// parker). It waits in
// the runtime's poller like any read or write, so deadlines and Close
// from another goroutine end it. The pipe is taken when bytes are ready to
// move and given back as soon as they have moved.
func spliceCopy(dst, src *net.TCPConn) (int64, error) {
	rsrc, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	rdst, err := dst.SyscallConn()
	if err != nil {
		return 0, err
	}
	park := parkable(src)
	var (
		p       *splicePipe
		written int64
		n       int
		serr    error
	)
	defer func() {
		if p != nil {
			putPipe(p)
		}
	}()
	fill := func(fd uintptr) bool {
		if p == nil {
			var err error
			if p, err = getPipe(); err != nil {
				serr = errNoSplice // out of file descriptors, say
				return true
			}
		}
		for {
			n, serr = splice(int(fd), p.w, spliceMax)
			if serr != syscall.EINTR {
				break
			}
		}
		if serr == syscall.EAGAIN {
			// Nothing to read: wait without holding the pipe. If
			// src's direction parks, it waits only parkAfter here,
			// then in the parker's epoll set.
			putPipe(p)
			p = nil
			if park {
				src.SetReadDeadline(time.Now().Add(parkAfter))
			}
			return false
		}
		return true
	}
	drain := func(fd uintptr) bool {
		for p.n > 0 {
			m, err := splice(p.r, int(fd), p.n)
			switch {
			case m > 0:
				p.n -= m
				written += int64(m)
			case err == syscall.EAGAIN:
				return false
			case err == syscall.EINTR:
			default:
				serr = err
				if serr == nil {
					serr = io.ErrShortWrite
				}
				return true
			}
		}
		return true
	}
	for {
		serr = nil
		if err := rsrc.Read(fill); err != nil {
			if park && errors.Is(err, os.ErrDeadlineExceeded) {
				src.SetReadDeadline(time.Time{})
				return written, errParked
			}
			return written, err
		}
		if serr == syscall.EINVAL || serr == errNoSplice {
			// Nothing is in flight: the caller can go on in user space,
			// where src never parks, so the deadline set to park must
			// not outlive this call: it would end an idle session.
			if park {
				src.SetReadDeadline(time.Time{})
			}
			return written, errNoSplice
		}
		if serr != nil {
			return written, &net.OpError{Op: "splice", Net: "tcp", Source: src.LocalAddr(), Addr: src.RemoteAddr(), Err: serr}
		}
		if n == 0 {
			return written, nil // src ended
		}
		p.n = n
		if err := rdst.Write(drain); err != nil {
			return written, err
		}
		if serr != nil {
			return written, &net.OpError{Op: "splice", Net: "tcp", Source: dst.LocalAddr(), Addr: dst.RemoteAddr(), Err: serr}
		}
	}
}

// splice moves up to max bytes between a socket and a pipe. It never
// blocks (both ends are non-blocking and SPLICE_F_NONBLOCK is set): its
// time is the kernel's copying, as a user-space copy's would be the
// program's. So it is a raw system call, which does not tell Go's
// scheduler that the thread may block: the scheduler would otherwise hand
// the thread's work to another thread whenever a splice to a loopback
// socket (which runs the receiver's TCP processing inline) took over
// 20 µs, and wake threads to do it.
func splice(from, to, max int) (int, error) {
	const flags = 0x1 | 0x2 // SPLICE_F_MOVE | SPLICE_F_NONBLOCK
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SPLICE, uintptr(from), 0, uintptr(to), 0, uintptr(max), flags)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
