package relay

import (
	"io"
	"net"
	"sync/atomic"
	"syscall"
)

// Spawner starts a function on a goroutine of its own; a worker pool's
// Go method is one. Relaying a long-lived connection must not block in it.
type Spawner interface {
	Go(f func())
}

// Pair copies a to b and b to a in two goroutines started by spawn (plain
// go statements when spawn is nil), and returns once they are started.
// Each copy half-closes its destination when its source ends. When both
// copies are done, Pair closes a and b, then calls done if it is not nil.
// Pair owns a and b from the call on.
//
// When a is a mux.Conn its sniffed bytes go first, and its ReadFrom and
// WriteTo reach the *net.TCPConns underneath, so the kernel splices.
//
// On Linux, when both ends are TCP connections that only Pair closes (a
// *net.TCPConn, or a wrapper that reaches one through NetConn and tells
// of its being closed through OnClose, as mux.Conn does), a copy whose
// source has had nothing to read for a moment gives its goroutine back
// and waits in an epoll set instead: an idle connection holds no
// goroutine.
func Pair(spawn Spawner, a, b net.Conn, done func()) {
	p := &pair{a: a, b: b, done: done, spawn: spawn}
	p.left.Store(2)
	p.dirs[0] = dir{p: p, toA: true}
	p.dirs[1] = dir{p: p}
	if parkSupported {
		p.enrollParking()
	}
	// Started last, toB runs next on this thread: a's first (sniffed)
	// bytes go out without waiting for another thread to wake.
	p.goRun(&p.dirs[0])
	p.goRun(&p.dirs[1])
}

// closeNotifier is a connection that someone other than Pair may close
// (mux closes its connections on a forced shutdown), and that says so.
type closeNotifier interface {
	NetConn() net.Conn
	OnClose(f func()) bool
}

// enrollParking makes both directions park when idle, if both ends allow.
func (p *pair) enrollParking() {
	ta, na := parkTCP(p.a)
	tb, nb := parkTCP(p.b)
	if ta == nil || tb == nil {
		return
	}
	ra, err := ta.SyscallConn()
	if err != nil {
		return
	}
	rb, err := tb.SyscallConn()
	if err != nil {
		return
	}
	// The hooks first: a connection closed meanwhile refuses them, and
	// its directions then wait in goroutines, which its close ends.
	for _, n := range []closeNotifier{na, nb} {
		if n != nil && !n.OnClose(p.fail) {
			return
		}
	}
	p.dirs[0].src, p.dirs[0].raw = tb, rb
	p.dirs[1].src, p.dirs[1].raw = ta, ra
	thePark.enroll(&p.dirs[0])
	thePark.enroll(&p.dirs[1])
}

// parkTCP returns the *net.TCPConn under c if a direction reading it may
// park, with c's close notifier if c is a wrapper.
func parkTCP(c net.Conn) (*net.TCPConn, closeNotifier) {
	if t, ok := c.(*net.TCPConn); ok {
		return t, nil
	}
	if n, ok := c.(closeNotifier); ok {
		if t, ok := n.NetConn().(*net.TCPConn); ok {
			return t, n
		}
	}
	return nil, nil
}

// pair is one relayed connection.
type pair struct {
	a, b  net.Conn
	done  func()
	spawn Spawner
	left  atomic.Int32 // copies still running
	dirs  [2]dir       // toA (b to a), toB (a to b)

	failed bool // both closed after a failure; guarded by thePark's lock
}

// dir is one direction of a pair.
type dir struct {
	p   *pair
	toA bool

	// Set when the direction may park: its source, and the source's
	// raw connection for registering it.
	src *net.TCPConn
	raw syscall.RawConn
	// Guarded by thePark's lock.
	tok     uint32 // non-zero while parked
	inEpoll bool   // src is in the epoll set (armed or not)
}

// goRun starts (or, after parking, resumes) d's copy on a goroutine.
func (p *pair) goRun(d *dir) {
	f := p.toB
	if d.toA {
		f = p.toA
	}
	if p.spawn == nil {
		go f()
		return
	}
	p.spawn.Go(f)
}

// toB copies a to b. The copies are named methods, so a goroutine dump
// tells which direction each runs.
func (p *pair) toB() { p.run(&p.dirs[1], p.b, p.a) }

// toA copies b to a.
func (p *pair) toA() { p.run(&p.dirs[0], p.a, p.b) }

// run copies src to dst until src ends, or until it has nothing to read
// and d parks.
func (p *pair) run(d *dir, dst, src net.Conn) {
	for {
		err := copyHalf(dst, src)
		if err != errParked {
			p.finish(d, dst, err)
			return
		}
		switch thePark.park(d) {
		case parked:
			return
		case pairFailed:
			p.finish(d, dst, net.ErrClosed)
			return
		case cannotPark:
			// No epoll set to be had (out of file descriptors, say):
			// this direction waits in its goroutine from now on,
			// rather than fail the session.
			thePark.forget(d)
		}
	}
}

// parkResult is what became of a direction that asked to park.
type parkResult int

const (
	parked     parkResult = iota // it waits in the epoll set
	pairFailed                   // its pair failed meanwhile: it must end
	cannotPark                   // parking failed; it may wait in its goroutine
)

// finish ends d: after a clean end of its source it half-closes dst, so
// its peer learns there is no more to read (src is left alone: shutting
// down its reading side would tell its peer nothing, and both are closed
// when both copies are done). If dst cannot half-close, or the copy
// failed, both are closed so the other copy ends too.
func (p *pair) finish(d *dir, dst net.Conn, err error) {
	cw, ok := dst.(interface{ CloseWrite() error })
	if err != nil || !ok {
		p.fail()
	} else {
		cw.CloseWrite()
	}
	if d.src != nil {
		thePark.forget(d)
	}
	p.end()
}

// fail closes both connections, and ends a direction parked meanwhile,
// which no byte will wake.
func (p *pair) fail() {
	thePark.lock()
	p.failed = true
	taken := thePark.takeFailed(p)
	thePark.unlock()
	p.a.Close()
	p.b.Close()
	for _, d := range taken {
		thePark.forget(d)
		p.end()
	}
}

// end closes both connections once both copies have ended.
func (p *pair) end() {
	if p.left.Add(-1) == 0 {
		p.a.Close()
		p.b.Close()
		if p.done != nil {
			p.done()
		}
	}
}

// copyHalf copies src to dst until src ends; errParked means src has
// nothing to read now and its direction may park.
func copyHalf(dst, src net.Conn) error {
	var err error
	_, srcTCP := src.(*net.TCPConn)
	if d, ok := dst.(*net.TCPConn); ok && srcTCP {
		_, err = Copy(d, src)
	} else if rf, ok := dst.(io.ReaderFrom); ok && srcTCP {
		// A mux.Conn's ReadFrom splices; io.Copy would take the
		// *net.TCPConn's WriteTo first, which reaches it only through
		// a detour of copies.
		_, err = rf.ReadFrom(src)
	} else {
		_, err = io.Copy(dst, src)
	}
	return err
}
