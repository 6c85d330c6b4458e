// Package tunnel carries SSH, and other allow-listed TCP targets, over a
// WebSocket (RFC 6455) on oneport's one port, for networks that let only
// HTTPS through: office and hotel proxies, and GPU clouds that expose a
// box only through an HTTPS reverse proxy.
//
// The server side is Server, an http.Handler for one path (default
// DefaultPath). A WebSocket upgrade on that path is relayed to the SSH
// target, or with ?target=HOST:PORT to one of Config.Targets. Each
// binary WebSocket message carries bytes of the stream; the messages'
// boundaries mean nothing. Refusals come before the upgrade, as plain
// HTTP: 426 for a request that is no WebSocket upgrade, 403 for a target
// not on the list, 502 when the target cannot be reached.
//
// The client side is Client: it dials the tunnel through an HTTP proxy
// if one is configured (HTTP CONNECT), verifies the server's certificate
// against the system roots, a given root, or a root pinned on first use
// as SSH pins host keys, and gives the tunnel as a net.Conn. Pipe joins
// it to stdin and stdout for an OpenSSH ProxyCommand, Forward serves
// local connections through it (ssh -L style). Every error names the hop
// that failed (HopError).
//
// The WebSocket is github.com/coder/websocket's; websocket.NetConn makes
// it a net.Conn, so the bytes are relayed by internal/relay as every
// other connection of oneport is.
//
// WebSocket over HTTP/2 (RFC 8441 extended CONNECT) is served too: Go's
// HTTP/2 turns it on only for the whole process, from GODEBUG
// (http2xconnect=1), which package internal/xconnect sets before
// net/http starts; GODEBUG=http2xconnect=0 turns it off. coder/websocket
// accepts only HTTP/1.1 upgrades, so an extended CONNECT stream is
// dressed as one (h2server.go), and its handler waits for the session,
// since the stream ends with it. Refusals are the same statuses as over
// HTTP/1.1; another :protocol than websocket is a 501. The session line
// says which protocol the tunnel came on (proto=HTTP/1.1 or HTTP/2).
// Client.HTTP2 (oneport connect --http2) dials that way, with
// golang.org/x/net/http2, as net/http's client refuses :protocol.
//
// Measured (2 cores, loopback, oneport and sshd on the same machine):
// see BenchmarkSCP for scp through the tunnel against scp through the
// plain port, and BenchmarkIdleTunnelMemory for an idle session's cost.
package tunnel
