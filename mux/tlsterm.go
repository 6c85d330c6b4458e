package mux

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"
)

// DefaultHandshakeTimeout is TLSTerminator.HandshakeTimeout's zero value.
const DefaultHandshakeTimeout = 10 * time.Second

// TLSTerminator is a Target that terminates TLS only to look inside it:
// after the handshake it hands the plaintext on by ALPN ("h2" and
// "http/1.1" to HTTP), and without ALPN sniffs the decrypted stream as
// the Server sniffs accepted connections, sending SSH and silent clients
// to SSH and HTTP (HTTP/1 or h2c) to HTTP. A connection that negotiated
// "acme-tls/1" is closed after the handshake, which answered the
// TLS-ALPN-01 challenge (RFC 8737). Anything else inside TLS is closed
// with a log line.
//
// Certificates come from the caller through Config; the terminator knows
// nothing of where they come from, nor of HTTP routing. HTTP receives a
// *tls.Conn when ALPN chose HTTP, or a *Conn over the *tls.Conn (whose
// NetConn is the *tls.Conn) when sniffing did.
//
// HandleConn owns the connection it is given. Fields must not change once
// it serves.
type TLSTerminator struct {
	// Config is the server-side configuration; required. Its
	// GetConfigForClient, if set, chooses per ClientHello.
	Config *tls.Config
	// HTTP receives terminated HTTP; required.
	HTTP Target
	// SSH receives SSH, and clients silent for SniffTimeout, found inside
	// TLS; nil closes them.
	SSH Target
	// SniffTimeout bounds the look inside a TLS stream without ALPN; zero
	// means DefaultSniffTimeout.
	SniffTimeout time.Duration
	// HandshakeTimeout bounds a TLS handshake; zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Logger receives handshake failures; nil discards them.
	Logger *slog.Logger
}

func (t *TLSTerminator) logger() *slog.Logger {
	if t.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Logger
}

func (t *TLSTerminator) handshakeTimeout() time.Duration {
	if t.HandshakeTimeout <= 0 {
		return DefaultHandshakeTimeout
	}
	return t.HandshakeTimeout
}

// HandleConn terminates c and hands the plaintext on.
func (t *TLSTerminator) HandleConn(c net.Conn) {
	tc := tls.Server(c, t.Config)
	ctx, cancel := context.WithTimeout(context.Background(), t.handshakeTimeout())
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		sni := ""
		if mc, ok := c.(*Conn); ok {
			sni = mc.Sniffed().SNI
		}
		t.logger().Info("tls handshake failed", "client", c.RemoteAddr().String(), "sni", sni, "err", err)
		c.Close()
		return
	}
	switch tc.ConnectionState().NegotiatedProtocol {
	case "h2", "http/1.1":
		t.HTTP.HandleConn(tc)
		return
	case "acme-tls/1":
		tc.Close() // the challenge was answered in the handshake
		return
	}
	t.dispatchInner(c, tc)
}

// dispatchInner sniffs the plaintext of tc, whose handshake chose no
// application protocol, and hands it to its target.
func (t *TLSTerminator) dispatchInner(c net.Conn, tc *tls.Conn) {
	inner, err := Sniff(tc, t.SniffTimeout, nil, "tls", nil)
	if err != nil {
		tc.Close()
		return
	}
	switch inner.Sniffed().Proto {
	case ProtoSSH, ProtoSilent:
		if t.SSH == nil {
			inner.Close()
			return
		}
		t.SSH.HandleConn(inner)
	case ProtoHTTP, ProtoH2C:
		t.HTTP.HandleConn(inner)
	default:
		t.logger().Info("unrecognised protocol inside TLS; closing", "client", c.RemoteAddr().String())
		inner.Close()
	}
}

// String names the target in connection logs.
func (t *TLSTerminator) String() string { return "tls" }
