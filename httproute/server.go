package httproute

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oneport/oneport/httproute/internal/h1"
	"github.com/oneport/oneport/mux"
)

// Server serves oneport's HTTP. Plain HTTP/1 connections that the mux
// sniffed are served by oneport's own HTTP/1.1 engine (package
// httproute/internal/h1, whose doc says what it saves over net/http and
// how it stays compatible), or by the embedded http.Server when Engine
// says so; everything else (h2c, and HTTP that came out of TLS) always
// goes to the embedded http.Server.
//
// Create it with NewServer. Fields must not change once serving starts.
type Server struct {
	// Handler answers requests on both paths.
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request's header once its first
	// byte has arrived; zero means no limit. It and the next two fields
	// configure the own engine; HTTP has its own.
	ReadHeaderTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request; zero means no limit.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header; zero means
	// http.DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// HTTP serves h2c and TLS connections, and plain HTTP/1 under
	// EngineNetHTTP.
	HTTP *http.Server
	// Engine chooses what serves plain HTTP/1 connections: EngineOneport
	// (the zero value "" means the same) or EngineNetHTTP. Any other value
	// makes Serve return an error wrapping ErrUnknownEngine and
	// HandleConn close connections; check it first with CheckEngine.
	Engine string

	log *slog.Logger
	err error // the Engine's, once started

	once    sync.Once
	inner   *mux.ListenerTarget // feeds HTTP
	own     *h1.Server
	closing atomic.Bool
}

// NewServer returns the Server oneport serves routes with: HTTP/1 and h2c
// with prior knowledge, headers bounded by a read timeout against slow
// clients, and no read or write timeout on bodies, so uploads of any size
// and generations of any length are never cut.
func NewServer(h http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true) // over TLS, when ALPN says h2
	p.SetUnencryptedHTTP2(true)
	const headerTimeout, idleTimeout = 30 * time.Second, 5 * time.Minute
	return &Server{
		Handler:           h,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		log:               log,
		HTTP: &http.Server{
			Handler:           h,
			Protocols:         &p,
			ReadHeaderTimeout: headerTimeout,
			IdleTimeout:       idleTimeout,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
			ConnContext:       markTLS,
		},
	}
}

// Engines for Server.Engine.
const (
	// EngineOneport is oneport's own HTTP/1.1 engine, which holds no
	// buffer and no goroutine while a keep-alive connection is idle.
	EngineOneport = "oneport"
	// EngineNetHTTP is net/http's HTTP/1 server.
	EngineNetHTTP = "net/http"
)

// ErrUnknownEngine is returned for a Server.Engine that names no engine.
var ErrUnknownEngine = errors.New("unknown HTTP/1 engine")

// CheckEngine reports whether name is a valid Server.Engine.
func CheckEngine(name string) error {
	switch name {
	case "", EngineOneport, EngineNetHTTP:
		return nil
	}
	return fmt.Errorf("http engine %q: %w (want %q or %q)", name, ErrUnknownEngine, EngineOneport, EngineNetHTTP)
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

func (s *Server) start() {
	s.once.Do(func() {
		s.inner = mux.NewListenerTarget("http", nil)
		if s.err = CheckEngine(s.Engine); s.err != nil {
			s.log.Error("http server not started", "err", s.err)
			return
		}
		go s.HTTP.Serve(s.inner)
		if s.Engine == EngineNetHTTP {
			return
		}
		s.own = h1.NewServer(s.Handler, s.log)
		s.own.ReadHeaderTimeout = s.ReadHeaderTimeout
		s.own.IdleTimeout = s.IdleTimeout
		s.own.MaxHeaderBytes = s.MaxHeaderBytes
		s.own.Fallback = s.inner
		s.own.HTTPServer = s.HTTP // so that ReverseProxy aborts a cut response, as under s.HTTP
	})
}

// HandleConn serves c until the client or the server closes it; it makes
// Server a mux.Target.
func (s *Server) HandleConn(c net.Conn) {
	s.start()
	switch {
	case s.err != nil:
		c.Close()
	case s.own != nil:
		s.own.HandleConn(c)
	default:
		s.inner.HandleConn(c)
	}
}

// Serve serves the connections ln accepts, as HandleConn does, until ln
// fails. It returns http.ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	s.start()
	if s.err != nil {
		return s.err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			return err
		}
		go s.HandleConn(c)
	}
}

// Shutdown stops taking connections, closes idle ones, lets requests in
// progress finish (their connections close after the response), and
// returns once none is left or ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.start()
	errc := make(chan error, 1)
	go func() { errc <- s.HTTP.Shutdown(ctx) }()
	if s.own != nil {
		if err := s.own.Shutdown(ctx); err != nil {
			<-errc
			return err
		}
	}
	return <-errc
}

// Close closes every connection at once, idle or not.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.start()
	if s.own != nil {
		s.own.Close()
	}
	return s.HTTP.Close()
}
