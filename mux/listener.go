package mux

import (
	"net"
	"sync"
)

// ListenerTarget is a Target that is also a net.Listener: connections
// handed to it are returned by Accept, so an http.Server or a TLS
// terminator can Serve them. Create it with NewListenerTarget.
type ListenerTarget struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	name   string
}

// NewListenerTarget returns a ListenerTarget that reports addr as its
// address and name in connection logs.
func NewListenerTarget(name string, addr net.Addr) *ListenerTarget {
	return &ListenerTarget{
		addr:   addr,
		name:   name,
		conns:  make(chan net.Conn),
		closed: make(chan struct{}),
	}
}

// HandleConn waits until Accept takes c; if the listener is closed first,
// it closes c.
func (l *ListenerTarget) HandleConn(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

// Accept returns the next handed-off connection, or net.ErrClosed once
// Close has been called.
func (l *ListenerTarget) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close makes Accept return net.ErrClosed. It does not close connections
// already accepted. It is safe to call more than once.
func (l *ListenerTarget) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr returns the address given to NewListenerTarget.
func (l *ListenerTarget) Addr() net.Addr { return l.addr }

// String returns the name given to NewListenerTarget.
func (l *ListenerTarget) String() string { return l.name }
