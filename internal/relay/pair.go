package relay

import (
	"io"
	"net"
	"sync/atomic"
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
func Pair(spawn Spawner, a, b net.Conn, done func()) {
	p := &pair{a: a, b: b, done: done}
	p.left.Store(2)
	if spawn == nil {
		go p.toA()
		go p.toB()
		return
	}
	spawn.Go(p.toA)
	// Started last, this one runs next on this thread: a's first (sniffed)
	// bytes go out without waiting for another thread to wake.
	spawn.Go(p.toB)
}

// pair is one relayed connection. Its two copies are named methods, so a
// goroutine dump tells which direction each waits in.
type pair struct {
	a, b net.Conn
	done func()
	left atomic.Int32 // copies still running
}

// toB copies a to b.
func (p *pair) toB() {
	defer p.end()
	half(p.b, p.a)
}

// toA copies b to a.
func (p *pair) toA() {
	defer p.end()
	half(p.a, p.b)
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

// half copies src to dst, then half-closes dst, so its peer learns there
// is no more to read. (src is left alone: shutting down its reading side
// would tell its peer nothing, and both are closed when both copies are
// done.) If dst cannot half-close, or the copy failed, both are closed so
// the other copy ends too.
func half(dst, src net.Conn) {
	var err error
	_, srcTCP := src.(*net.TCPConn)
	if rf, ok := dst.(io.ReaderFrom); ok && srcTCP {
		// A mux.Conn's ReadFrom splices; io.Copy would take the
		// *net.TCPConn's WriteTo first, which reaches it only through
		// a detour of copies.
		_, err = rf.ReadFrom(src)
	} else {
		_, err = io.Copy(dst, src)
	}
	cw, ok := dst.(interface{ CloseWrite() error })
	if err != nil || !ok {
		dst.Close()
		src.Close()
		return
	}
	cw.CloseWrite()
}
