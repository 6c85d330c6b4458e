package httproute

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// NewServer returns the http.Server oneport serves routes with: HTTP/1 and
// h2c with prior knowledge, headers bounded by a read timeout against slow
// clients, and no read or write timeout on bodies, so uploads of any size
// and generations of any length are never cut.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true) // over TLS, when ALPN says h2
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         &p,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext:       markTLS,
	}
}

// tlsInside marks requests whose connection is TLS that oneport
// terminated but that reached the server wrapped (HTTP found inside TLS
// without ALPN), where r.TLS stays nil.
type tlsInside struct{}

func markTLS(ctx context.Context, c net.Conn) context.Context {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		if _, ok := nc.NetConn().(*tls.Conn); ok {
			return context.WithValue(ctx, tlsInside{}, true)
		}
	}
	return ctx
}

func isTLS(r *http.Request) bool {
	return r.TLS != nil || r.Context().Value(tlsInside{}) != nil
}
