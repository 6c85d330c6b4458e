package httproute

import (
	"errors"
	"net"
	"net/http/httptrace"
	"sync"
)

// transportConn is an upstream connection of net/http's HTTP/1 transport
// that, once the transport has closed it, takes writes without sending
// them. The transport closes a connection when reading the response fails
// (a header past the limit, a malformed status line) while its write loop
// may still be copying the request body; that write then fails with "use
// of closed network connection", and net/http reports a failed write
// inside the body copy as a failure to read the request body, which takes
// precedence over the response's error and hides it (golang/go#81217).
// Nothing reads what is written after the close, so taking it lets the
// body copy end and the response's error reach the client. The request's
// clientBody stops at EOF once its connection is closed, so the rest of a
// large upload is not read into the void.
type transportConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func newTransportConn(c net.Conn) *transportConn {
	return &transportConn{Conn: c, closed: make(chan struct{})}
}

// Close closes the connection; later writes are discarded.
func (c *transportConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func (c *transportConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Write writes p, or discards it if the transport has closed the
// connection, before or during the write.
func (c *transportConn) Write(p []byte) (int, error) {
	if c.isClosed() {
		return len(p), nil
	}
	n, err := c.Conn.Write(p)
	if err != nil && errors.Is(err, net.ErrClosed) && c.isClosed() {
		return len(p), nil
	}
	return n, err
}

// CloseWrite half-closes the connection, as an upgraded session's end
// needs, if the connection underneath can (TCP and unix sockets do).
func (c *transportConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// NetConn returns the connection underneath.
func (c *transportConn) NetConn() net.Conn { return c.Conn }

// traceConn returns a trace that tells b which connection its request
// was sent on, so that b ends when net/http closes that connection.
func traceConn(b *clientBody) *httptrace.ClientTrace {
	return &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if tc, ok := i.Conn.(*transportConn); ok {
			b.conn.Store(tc)
		}
	}}
}
