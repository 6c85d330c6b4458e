package h1

import (
	"context"
	"net"
	"net/http"
	"time"
)

// Transport is the HTTP/1.1 client for plain-HTTP and unix-socket
// upstreams (see h1Transport). Build it with NewTransport.
type Transport = h1Transport

// NewTransport returns a Transport that connects with dial and hands the
// requests its fast path does not take to fallback. headerTimeout bounds
// the wait for a response's header (zero: no limit); at most maxIdle
// connections wait for reuse, each for at most idleTimeout.
//
// maxHeader bounds a response header in bytes, 1xx responses included
// (past it RoundTrip fails with an error that names the limit); maxDials
// bounds the connections being opened at once (zero or less means one):
// requests beyond it wait for one of those or for an idle connection,
// whichever comes first.
func NewTransport(dial func(ctx context.Context) (net.Conn, error), fallback *http.Transport,
	headerTimeout time.Duration, maxIdle int, idleTimeout time.Duration, maxHeader, maxDials int) *Transport {
	return &h1Transport{
		dial:          dial,
		fallback:      fallback,
		headerTimeout: headerTimeout,
		maxIdle:       maxIdle,
		idleTimeout:   idleTimeout,
		maxHeader:     maxHeader,
		maxDials:      maxDials,
	}
}

// idempotent reports whether a request with method may be sent again
// (RFC 9110 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}
