// Package mux accepts connections on one listener, recognises each one's
// protocol from its first bytes and hands it to the target registered for
// that protocol.
//
// Recognised protocols are SSH ("SSH-"), TLS (a handshake record whose
// ClientHello is parsed by crypto/tls, keeping SNI and ALPN), HTTP/1 (any
// standard or WebDAV method), HTTP/2 with prior knowledge (the h2c
// preface), and user-defined probes by byte prefix or regular expression.
// A client that sends nothing before the sniff timeout goes to the
// on-timeout target (SSH by default: some SSH clients wait for the server's
// banner); one that sent bytes nothing recognises goes to the fallback
// target. Sniffing only peeks: the connection handed on replays every byte
// read so far.
//
// The package does not use github.com/soheilhy/cmux. That library's
// sub-listener Close closes the real listener, its Serve blocks on a client
// that sends nothing, and its matchers cannot pass what they found (SNI,
// ALPN) to the handler. Sniffing here runs in the connection's own
// goroutine under a deadline, a silent client is a routing decision rather
// than a hang, and the sniffed facts travel with the connection as a
// *Conn.
//
// mux owns every protocol decision, including those made inside TLS:
// TLSTerminator terminates TLS only to look inside it, handing HTTP
// (by ALPN, or sniffed) to an HTTP target and SSH found inside TLS to the
// SSH target. Certificates come from the caller as a *tls.Config; mux
// knows nothing of where they come from, nor of HTTP routing: it delivers
// connections to Targets, and ListenerTarget turns a stream of them into a
// net.Listener for an http.Server.
package mux
