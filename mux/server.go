package mux

import (
	"bufio"
	"bytes"
	"container/list"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oneport/oneport/internal/workers"
)

// Target receives sniffed connections. HandleConn owns c (a *Conn): it
// must close c when it is done with it, and may block for the
// connection's whole life. After HandleConn returns, mux does not touch c
// again except to close it on a forced shutdown.
type Target interface {
	HandleConn(c net.Conn)
}

// Defaults for the zero values of Server's fields.
const (
	DefaultSniffTimeout     = 2 * time.Second
	DefaultMaxPendingSniffs = 1024
)

// sniffBufSize holds a TLS record of maximum size with its header, enough
// for any ClientHello sent in one record.
const sniffBufSize = 16384 + 5

// Server accepts connections, sniffs each and hands it to a Target. Its
// zero value with SSH set is ready to Serve. Fields must not change once
// Serve has been called.
type Server struct {
	// SSH receives SSH connections, and silent and unrecognised ones
	// unless OnTimeout or Fallback say otherwise.
	SSH Target
	// HTTP receives HTTP/1 and h2c connections; nil closes them.
	HTTP Target
	// TLS receives TLS connections; nil closes them.
	TLS Target
	// Probes are user-defined protocols, tried in order before the
	// built-in ones.
	Probes []Probe
	// OnTimeout receives connections that sent nothing within
	// SniffTimeout; nil means SSH.
	OnTimeout Target
	// Fallback receives connections whose first bytes match nothing;
	// nil means SSH.
	Fallback Target
	// SniffTimeout bounds how long a connection may take to show its
	// protocol, from accept. Zero means DefaultSniffTimeout.
	SniffTimeout time.Duration
	// MaxPendingSniffs bounds connections being sniffed at once. When a
	// new connection would exceed it, the oldest pending one is closed,
	// so a flood of silent clients cannot hold off a real one. Zero
	// means DefaultMaxPendingSniffs; negative means no bound.
	MaxPendingSniffs int
	// MaxConns bounds open connections, sniffing or handed off. Past it,
	// new connections are closed at once with a log line. Zero or
	// negative means no bound.
	MaxConns int
	// Logger receives connection and error logs; nil discards them.
	Logger *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	pending   list.List      // of *pendingSniff, oldest first
	open      int            // accepted and not yet closed
	handing   int            // being accepted, or accepted and not yet taken by their target
	closing   bool           // listeners closed: no new connections
	forced    bool           // Close: everything is being closed
	wg        sync.WaitGroup // connection goroutines
	workers   workers.Pool   // runs the connection goroutines
	evictLog  limitedLog
	refuseLog limitedLog

	stats counters

	probeOnce  sync.Once
	probeToken []byte
	probesSeen atomic.Uint64

	hooks *testHooks // nil outside tests
}

// testHooks are called on events that tests wait for.
type testHooks struct {
	pendingChanged func()      // a sniff became pending or stopped being; s.mu is held
	sniffRead      func(n int) // the sniffer read n bytes
	handingOff     func()      // a sniffed connection is about to be registered and handed off
}

// pendingChanged calls the test hook, if any; s.mu must be held.
func (s *Server) pendingChanged() {
	if s.hooks != nil && s.hooks.pendingChanged != nil {
		s.hooks.pendingChanged()
	}
}

type pendingSniff struct {
	conn    net.Conn
	evicted bool // guarded by Server.mu
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, sniffBufSize) }}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("mux: server closed")

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) sniffTimeout() time.Duration {
	if s.SniffTimeout <= 0 {
		return DefaultSniffTimeout
	}
	return s.SniffTimeout
}

func (s *Server) maxPending() int {
	if s.MaxPendingSniffs == 0 {
		return DefaultMaxPendingSniffs
	}
	return s.MaxPendingSniffs
}

// Serve accepts connections on ln until ln fails or the server shuts
// down, and returns ErrServerClosed after Shutdown or Close. Serve may be
// called for several listeners at once.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		// Counted before Accept, so that a connection Accept has returned
		// is never invisible to StopAccepting, however the goroutines
		// interleave.
		s.expect()
		raw, err := ln.Accept()
		if err != nil {
			s.handedOff()
			if s.isClosing() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors, or a connection aborted before
			// accept: back off rather than spin, and keep serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger().Warn("accept failed; retrying", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.admit() {
			raw.Close()
			s.handedOff()
			continue
		}
		s.workers.Go(func() {
			defer s.wg.Done()
			s.handle(raw)
		})
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// admit counts a new connection against MaxConns and, when it is
// admitted, adds its goroutine to s.wg. A connection accepted after Close
// began is not admitted: adding to s.wg under s.mu, only while not
// forced, keeps Add from racing Close's Wait. One accepted while
// StopAccepting closes the listener is: it has left the kernel's queue,
// which the next process may share, so dropping it would reset a client
// no one else can serve. Shutdown's Wait cannot race it either, because
// StopAccepting waits until every accepted connection is handed off.
func (s *Server) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forced {
		return false
	}
	if s.MaxConns > 0 && s.open >= s.MaxConns {
		s.stats.refused.Add(1)
		s.refuseLog.warn(s.logger(), "connection limit reached; refusing new connections", "max_conns", s.MaxConns)
		return false
	}
	s.open++
	s.wg.Add(1)
	return true
}

// expect counts a connection about to be accepted until its target has
// taken it (see handedOff).
func (s *Server) expect() {
	s.mu.Lock()
	s.handing++
	s.mu.Unlock()
}

// release undoes admit for a connection closed before any hand-off.
func (s *Server) release() {
	s.mu.Lock()
	s.open--
	s.mu.Unlock()
}

// handedOff records that a connection's target has taken it (or that it
// was dropped).
func (s *Server) handedOff() {
	s.mu.Lock()
	s.handing--
	s.mu.Unlock()
}

// readStart sniffs r and returns what it found and every byte it read,
// copied out of the pooled buffer. A stream that sent nothing before its
// read deadline is ProtoSilent.
func readStart(r io.Reader, probes []Probe) (Sniffed, []byte, error) {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	sniffed, err := sniff(br, probes)
	var peeked []byte
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		peeked = append([]byte(nil), b...)
	}
	br.Reset(nil)
	readerPool.Put(br)
	if err != nil && len(peeked) == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		sniffed.Proto = ProtoSilent
	}
	return sniffed, peeked, err
}

// handle sniffs raw and hands it to its target.
func (s *Server) handle(raw net.Conn) {
	defer s.handedOff()
	drop := func() {
		raw.Close()
		s.release()
	}
	start := time.Now()
	ps, ok := s.addPending(raw)
	if !ok {
		drop()
		return
	}
	sr := newSniffReader(raw, start.Add(s.sniffTimeout()))
	if s.hooks != nil {
		sr.onRead = s.hooks.sniffRead
	}
	sniffed, peeked, err := readStart(sr, s.Probes)
	sr.disarm()

	switch {
	case s.removePending(ps): // evicted: closed already
		drop()
		return
	case s.isProbe(peeked):
		s.probesSeen.Add(1)
		drop()
		return
	case err != nil && sniffed.Proto != ProtoSilent && len(peeked) == 0:
		// The client went away before saying anything.
		s.stats.abandoned.Add(1)
		drop()
		return
	}
	if s.hooks != nil && s.hooks.handingOff != nil {
		s.hooks.handingOff()
	}
	t := s.target(sniffed)
	c := &Conn{
		Conn:    raw,
		rw:      readWriter(raw, sniffed),
		sniffed: sniffed,
		target:  targetName(t, sniffed),
		start:   start,
		log:     s.logger(),
		peeked:  peeked,
		done:    s.connDone,
	}
	if !s.track(c) {
		c.Close()
		return
	}
	s.stats.conns[sniffed.Proto].Add(1)
	if t == nil {
		s.logger().Warn("no target for protocol; closing", "proto", c.protoName(), "client", raw.RemoteAddr().String())
		c.Close()
		return
	}
	t.HandleConn(c)
}

func (s *Server) target(sn Sniffed) Target {
	or := func(t, def Target) Target {
		if t != nil {
			return t
		}
		return def
	}
	switch sn.Proto {
	case ProtoSSH:
		return s.SSH
	case ProtoTLS:
		return s.TLS
	case ProtoHTTP, ProtoH2C:
		return s.HTTP
	case ProtoCustom:
		for i := range s.Probes {
			if s.Probes[i].Name == sn.Probe {
				return s.Probes[i].Target
			}
		}
		return nil
	case ProtoSilent:
		return or(s.OnTimeout, s.SSH)
	default:
		return or(s.Fallback, s.SSH)
	}
}

func targetName(t Target, sn Sniffed) string {
	if st, ok := t.(fmt.Stringer); ok {
		return st.String()
	}
	if t == nil {
		return "none"
	}
	return sn.Proto.String()
}

// addPending registers a connection being sniffed, closing the oldest
// pending one if the bound is reached.
func (s *Server) addPending(c net.Conn) (*list.Element, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forced {
		return nil, false
	}
	if max := s.maxPending(); max > 0 && s.pending.Len() >= max {
		oldest := s.pending.Remove(s.pending.Front()).(*pendingSniff)
		oldest.evicted = true
		oldest.conn.Close()
		s.stats.evicted.Add(1)
		s.evictLog.warn(s.logger(), "too many connections being sniffed; closed the oldest", "max_pending_sniffs", max)
	}
	e := s.pending.PushBack(&pendingSniff{conn: c})
	s.pendingChanged()
	return e, true
}

// removePending unregisters a finished sniff and reports whether it had
// been evicted (its connection is then closed already).
func (s *Server) removePending(e *list.Element) (evicted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := e.Value.(*pendingSniff)
	if ps.evicted {
		return true
	}
	s.pending.Remove(e)
	s.pendingChanged()
	return false
}

// track registers a handed-off connection for Close to close, and
// reports false, registering nothing, once Close has begun: Close may
// have closed the registered ones already.
func (s *Server) track(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forced {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*Conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) connDone(c *Conn) {
	p := c.sniffed.Proto
	s.stats.rx[p].Add(c.rx.Load())
	s.stats.tx[p].Add(c.tx.Load())
	s.mu.Lock()
	delete(s.conns, c)
	s.open--
	s.mu.Unlock()
}

// ActiveConns returns how many handed-off connections are open.
func (s *Server) ActiveConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// StopAccepting closes the listeners, then waits until every connection
// already accepted has been sniffed and taken by its target, that is until
// its HandleConn has returned (or ctx is done). A caller that shuts its
// targets down (an http.Server behind a ListenerTarget) does so after
// this, so that no accepted client is dropped.
func (s *Server) StopAccepting(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	return s.waitFor(ctx, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.handing == 0
	})
}

// Shutdown stops accepting and waits for connections being sniffed and
// handed-off connections to end on their own, then lets the goroutines
// kept for reuse exit. When ctx is done first it closes them as Close
// does and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.StopAccepting(ctx)
	if err == nil {
		err = s.waitFor(ctx, func() bool { return s.ActiveConns() == 0 })
	}
	if err != nil {
		s.Close()
		return err
	}
	s.wg.Wait()
	s.workers.Close()
	return nil
}

func (s *Server) waitFor(ctx context.Context, done func() bool) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// Close stops accepting, closes every connection at once, waits for the
// connections' goroutines, and lets the goroutines kept for reuse exit.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing, s.forced = true, true
	for ln := range s.listeners {
		ln.Close()
	}
	for e := s.pending.Front(); e != nil; e = e.Next() {
		ps := e.Value.(*pendingSniff)
		ps.evicted = true
		ps.conn.Close()
	}
	s.pending.Init()
	s.mu.Unlock()
	s.closeConns()
	s.wg.Wait()
	s.workers.Close()
	return nil
}

func (s *Server) closeConns() {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// token returns the random bytes that mark this server's own probes.
func (s *Server) token() []byte {
	s.probeOnce.Do(func() {
		s.probeToken = make([]byte, 24)
		copy(s.probeToken, "\x00op-probe")
		rand.Read(s.probeToken[9:])
	})
	return s.probeToken
}

func (s *Server) isProbe(b []byte) bool {
	return len(b) >= 24 && b[0] == 0 && bytes.Equal(b[:24], s.token())
}

// Probe checks that the server is serving: it connects to addr (one of the
// server's listening addresses), sends a token only this server knows, and
// waits until the accept loop has taken the connection and sniffing has
// read the token. A wedged accept loop or sniffer makes it fail, which is
// what a watchdog needs. The probe is not logged or handed to any target.
func (s *Server) Probe(ctx context.Context, addr string) error {
	before := s.probesSeen.Load()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer c.Close()
	if _, err := c.Write(s.token()); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for s.probesSeen.Load() == before {
		select {
		case <-ctx.Done():
			return fmt.Errorf("probe: not served: %w", ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// limitedLog logs a repeated warning at most once a second, counting the
// ones it held back.
type limitedLog struct {
	last       time.Time
	suppressed int
}

// warn must be called with the owner's lock held.
func (l *limitedLog) warn(log *slog.Logger, msg string, args ...any) {
	now := time.Now()
	if now.Sub(l.last) < time.Second {
		l.suppressed++
		return
	}
	if l.suppressed > 0 {
		args = append(args, "suppressed", l.suppressed)
	}
	log.Warn(msg, args...)
	l.last, l.suppressed = now, 0
}
