package mux

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oneport/oneport/internal/rawsock"
	"github.com/oneport/oneport/internal/relay"
)

// Conn is a sniffed connection as a Target receives it. Read first replays
// the bytes sniffing read, then reads the network; io.Copy in either
// direction reaches the underlying *net.TCPConn, so Linux splices. Close
// logs one line with the connection's protocol, peers, byte counts and
// duration.
type Conn struct {
	// Conn is the accepted connection. Reading it directly skips the
	// replayed bytes; use it only for socket options and addresses.
	net.Conn

	rw      net.Conn // what Read and Write use: Conn, or rawsock's raw calls on it
	sniffed Sniffed
	target  string
	start   time.Time
	log     *slog.Logger
	done    func(*Conn)

	peeked []byte       // replayed by Read; nil once drained
	rx, tx atomic.Int64 // bytes from and to the client
	once   sync.Once
	err    error

	hookMu  sync.Mutex
	closed  bool   // guarded by hookMu
	onClose func() // guarded by hookMu
}

// Sniffed returns what sniffing found.
func (c *Conn) Sniffed() Sniffed { return c.sniffed }

// Peeked returns the sniffed bytes that Read has not replayed yet. The
// slice must not be modified.
func (c *Conn) Peeked() []byte { return c.peeked }

// NetConn returns the accepted connection, as tls.Conn.NetConn does.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// readWriter returns what a Conn of c reads and writes with: c's socket
// through rawsock's raw calls, except for plain SSH, which Targets relay
// by splicing (WriteTo, ReadFrom) and never read in user space.
func readWriter(c net.Conn, sn Sniffed) net.Conn {
	if sn.Proto == ProtoSSH {
		return c
	}
	return rawsock.NewConn(c)
}

// Read replays the sniffed bytes, then reads from the network.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.peeked) > 0 {
		n := copy(p, c.peeked)
		c.consume(n)
		return n, nil
	}
	n, err := c.rw.Read(p)
	c.rx.Add(int64(n))
	return n, err
}

func (c *Conn) consume(n int) {
	c.rx.Add(int64(n))
	c.peeked = c.peeked[n:]
	if len(c.peeked) == 0 {
		c.peeked = nil // release the sniffed bytes
	}
}

// Write writes to the network.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.rw.Write(p)
	c.tx.Add(int64(n))
	return n, err
}

// WriteTo writes the sniffed bytes to w, then copies the rest of the
// stream; with w a *net.TCPConn the kernel splices.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if len(c.peeked) > 0 {
		n, err := w.Write(c.peeked)
		c.consume(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	n, err := relay.Copy(w, c.Conn)
	c.rx.Add(n)
	return total + n, err
}

// ReadFrom copies r to the network; with r a *net.TCPConn the kernel
// splices.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	n, err := relay.Copy(c.Conn, r)
	c.tx.Add(n)
	return n, err
}

// CloseWrite shuts down the sending side, if the connection supports it.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// CloseRead shuts down the receiving side, if the connection supports it.
func (c *Conn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return nil
}

// OnClose arranges for f to be called once, after c is closed by anyone,
// and reports whether it will be: if c is closed already it returns false
// and never calls f. A later call replaces f. A relay that holds c
// without a goroutine waiting on it learns so of a forced shutdown.
func (c *Conn) OnClose(f func()) bool {
	c.hookMu.Lock()
	defer c.hookMu.Unlock()
	if c.closed {
		return false
	}
	c.onClose = f
	return true
}

// Close closes the connection and logs its summary line; later calls
// return the first call's result. The OnClose function, if any, runs
// after the first call has closed the connection.
func (c *Conn) Close() error {
	c.once.Do(c.closeOnce)
	c.hookMu.Lock()
	c.closed = true
	f := c.onClose
	c.onClose = nil
	c.hookMu.Unlock()
	if f != nil {
		f()
	}
	return c.err
}

func (c *Conn) closeOnce() {
	c.err = c.Conn.Close()
	if c.done != nil {
		c.done(c)
	}
	c.logClose()
}

// logClose logs the connection's summary line. The record is made here
// rather than by Logger.Info, which records the caller's program counter
// (a stack walk per connection, for a source position the line does not
// show) and boxes each value.
func (c *Conn) logClose() {
	ctx := context.Background()
	if !c.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, "conn", 0)
	rec.AddAttrs(
		slog.String("proto", c.protoName()),
		slog.String("client", c.Conn.RemoteAddr().String()),
		slog.String("target", c.target),
		slog.Int64("rx", c.rx.Load()),
		slog.Int64("tx", c.tx.Load()),
		slog.Duration("duration", time.Since(c.start).Round(time.Microsecond)),
	)
	c.log.Handler().Handle(ctx, rec)
}

func (c *Conn) protoName() string {
	if c.sniffed.Proto == ProtoCustom {
		return c.sniffed.Probe
	}
	return c.sniffed.Proto.String()
}
