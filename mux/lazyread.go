package mux

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/oneport/oneport/internal/rawsock"
)

// sniffReader reads a connection for sniffing. Most clients have sent
// their first bytes by the time the connection is accepted, so it first
// tries a read that does not wait, and arms the read deadline only before
// a read that does: a connection sniffed in one read never touches a timer.
type sniffReader struct {
	conn     net.Conn
	raw      syscall.RawConn // nil if conn does not expose one
	deadline time.Time
	armed    bool
	onRead   func(n int) // if set, called after each read that returned bytes (tests)
}

func newSniffReader(c net.Conn, deadline time.Time) *sniffReader {
	r := &sniffReader{conn: c, deadline: deadline}
	if sc, ok := c.(syscall.Conn); ok && rawsock.Supported {
		if raw, err := sc.SyscallConn(); err == nil {
			r.raw = raw
		}
	}
	return r
}

func (r *sniffReader) Read(p []byte) (int, error) {
	n, err := r.read(p)
	if n > 0 && r.onRead != nil {
		r.onRead(n)
	}
	return n, err
}

func (r *sniffReader) read(p []byte) (int, error) {
	if r.raw != nil && !r.armed {
		var n int
		var rerr error
		err := r.raw.Read(func(fd uintptr) bool {
			n, rerr = rawsock.Read(fd, p)
			return true // never wait here
		})
		switch {
		case err != nil:
			return 0, err
		case rerr == nil && n > 0:
			return n, nil
		case rerr == nil && n == 0 && len(p) > 0:
			return 0, io.EOF
		case rerr != nil && !errors.Is(rerr, syscall.EAGAIN):
			return 0, rerr
		}
	}
	if !r.armed {
		r.armed = true
		if err := r.conn.SetReadDeadline(r.deadline); err != nil {
			return 0, err
		}
	}
	return r.conn.Read(p)
}

// disarm clears the read deadline if it was set.
func (r *sniffReader) disarm() {
	if r.armed {
		r.conn.SetReadDeadline(time.Time{})
	}
}
