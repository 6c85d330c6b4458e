package mux

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// errHelloRead stops the handshake once the ClientHello has been seen.
var errHelloRead = errors.New("clienthello read")

// readHello lets crypto/tls parse the ClientHello at the start of br and
// returns its server name and ALPN protocols. It only peeks: br still holds
// every byte afterwards. A malformed or truncated hello is returned as err.
func readHello(br *bufio.Reader) (sni string, alpn []string, err error) {
	var hello *tls.ClientHelloInfo
	cfg := &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			hello = h
			return nil, errHelloRead
		},
	}
	herr := tls.Server(&peekConn{br: br}, cfg).Handshake()
	if hello == nil {
		return "", nil, herr
	}
	// crypto/tls takes the server name's bytes as they come; routes and
	// certificates are chosen by it, so it must be a host name.
	if !validServerName(hello.ServerName) {
		return "", nil, fmt.Errorf("tls: server name %q is not a host name", hello.ServerName)
	}
	return hello.ServerName, hello.SupportedProtos, nil
}

// validServerName reports whether s is empty or an ASCII host name (IDNs
// travel in SNI as A-labels): letters, digits, '-', '_' and dots.
func validServerName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// peekConn is a read-only net.Conn over a bufio.Reader's peek window: Read
// returns buffered bytes past the ones it already returned, peeking further
// (and so reading from the network) only when it runs out. Writes fail, so
// the alert crypto/tls sends on abort goes nowhere.
type peekConn struct {
	br  *bufio.Reader
	off int
}

func (c *peekConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := c.br.Peek(c.off + 1)
	if len(b) <= c.off {
		if errors.Is(err, bufio.ErrBufferFull) {
			err = errSniffBufferFull
		}
		return 0, err
	}
	b, _ = c.br.Peek(c.br.Buffered())
	n := copy(p, b[c.off:])
	c.off += n
	return n, nil
}

func (c *peekConn) Write(p []byte) (int, error)        { return 0, net.ErrClosed }
func (c *peekConn) Close() error                       { return nil }
func (c *peekConn) LocalAddr() net.Addr                { return nil }
func (c *peekConn) RemoteAddr() net.Addr               { return nil }
func (c *peekConn) SetDeadline(t time.Time) error      { return nil }
func (c *peekConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *peekConn) SetWriteDeadline(t time.Time) error { return nil }
