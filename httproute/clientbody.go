package httproute

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
)

// clientBody is the request body as a transport reads it: it remembers
// whether reading the client's body failed, so that a request that failed
// because of its client (who left mid-body, or framed the body badly) is
// not held against the upstream. Close leaves the body open for a retry.
// Once the net/http connection it is sent on is closed, it reads as
// ended: nothing more of it can reach the upstream (see transportConn).
type clientBody struct {
	r    io.Reader
	err  atomic.Pointer[error] // first read error other than io.EOF
	conn atomic.Pointer[transportConn]
}

func (b *clientBody) Read(p []byte) (int, error) {
	if c := b.conn.Load(); c != nil && c.isClosed() {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err.Load() == nil {
		b.err.Store(&err)
	}
	return n, err
}

func (b *clientBody) Close() error { return nil }

// failure returns the client's error, or nil if its body read well (or b
// is nil).
func (b *clientBody) failure() error {
	if b == nil {
		return nil
	}
	if err := b.err.Load(); err != nil {
		return &clientBodyError{err: *err}
	}
	return nil
}

// clientBodyError reports a request that failed because its body could
// not be read from the client.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "read request body: " + e.err.Error() }

func (e *clientBodyError) Unwrap() error { return e.err }

// status is what the client gets: nothing if it left (logged as 499),
// 400 if it sent a body that does not parse (a bad chunk size).
func (e *clientBodyError) status() int {
	var oe *net.OpError
	switch {
	case errors.Is(e.err, io.ErrUnexpectedEOF), errors.Is(e.err, net.ErrClosed),
		errors.Is(e.err, os.ErrDeadlineExceeded), errors.Is(e.err, http.ErrBodyReadAfterClose),
		errors.As(e.err, &oe):
		return StatusClientClosedRequest
	}
	return http.StatusBadRequest
}
