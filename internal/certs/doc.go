// Package certs owns the certificates oneport terminates TLS with: its
// own internal CA (for IP addresses and localhost, whose root users
// trust with `oneport ca`), certificates obtained from an ACME CA through
// certmagic (HTTP-01 and TLS-ALPN-01 answered on oneport's own port,
// DNS-01 through RFC 2136 updates), and certificates read from PEM files
// and reloaded when they change. A Manager chooses the certificate for
// each handshake through the *tls.Config it returns (TLS 1.2+ with AEAD
// suites only); a name it holds nothing for gets a default certificate
// rather than a failed handshake.
//
// It is separate from the mux, which terminates TLS with that
// configuration and decides what the plaintext is, and from httproute,
// which only ever sees HTTP: obtaining, storing and renewing certificates
// is a concern of its own with its own dependencies (certmagic, DNS), and
// neither the protocol decisions nor the routing need to know where a
// certificate came from. It imports neither of them.
package certs
