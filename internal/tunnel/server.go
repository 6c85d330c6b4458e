package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/oneport/oneport/internal/relay"
	"github.com/oneport/oneport/internal/xconnect/h2ws"
)

// DefaultPath is the tunnel's URL path when Config.Path is empty.
const DefaultPath = "/.oneport/ssh"

// SSH names the SSH target in Dial calls, logs and metrics.
const SSH = "ssh"

// Config is what a reload may change; a Server holds one snapshot at a
// time and sessions keep the target they started with.
type Config struct {
	// Path is the URL path the tunnel answers on; empty means
	// DefaultPath.
	Path string
	// Targets are the host:port addresses a client may ask for with
	// ?target=; the SSH target is always allowed. Empty allows only SSH.
	Targets []string
}

func (c *Config) path() string {
	if c == nil || c.Path == "" {
		return DefaultPath
	}
	return c.Path
}

// Server is the tunnel's http.Handler. Its zero value refuses every
// target: set Dial. Fields must not change once it serves.
type Server struct {
	// Dial connects to target, SSH for the SSH target or one of
	// Config.Targets.
	Dial func(ctx context.Context, target string) (net.Conn, error)
	// Logger receives one line per ended session; nil discards.
	Logger *slog.Logger
	// Spawn runs the relay's copies; nil means plain goroutines.
	Spawn relay.Spawner

	cfg   atomic.Pointer[Config]
	stats counters
}

// SetConfig makes c the configuration for new sessions.
func (s *Server) SetConfig(c Config) {
	c.Targets = slices.Clone(c.Targets)
	s.cfg.Store(&c)
}

// Path returns the URL path the tunnel answers on.
func (s *Server) Path() string { return s.cfg.Load().path() }

// Match reports whether r is for the tunnel.
func (s *Server) Match(r *http.Request) bool { return r.URL.Path == s.Path() }

// Hint is the one-line answer to a request that is no WebSocket upgrade.
const Hint = "this is oneport's SSH tunnel, a WebSocket: use it with " +
	"ssh -o ProxyCommand='oneport connect https://HOST:PORT' user@HOST"

// ServeHTTP refuses what it cannot serve with a one-line reason (426, 403,
// 502; 501 for an extended CONNECT of another protocol), then upgrades to
// a WebSocket and relays it to the target until either side ends. It
// returns once the session is over, over HTTP/1.1 as over HTTP/2 (RFC
// 8441 extended CONNECT, whose stream ends with the handler): a session
// is one request for as long as it lasts, as a proxied WebSocket is, so
// whatever counts requests in flight in front of it (a key's
// concurrency limit) counts the session until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cfg := s.cfg.Load()
	target := r.URL.Query().Get("target")
	if target == "" {
		target = SSH
	}
	if target != SSH && (cfg == nil || !slices.Contains(cfg.Targets, target)) {
		s.logger().Info("tunnel refused: target not in tunnel_targets", "target", target, "client", r.RemoteAddr)
		http.Error(w, fmt.Sprintf("tunnel target %q is not in tunnel_targets", target), http.StatusForbidden)
		return
	}
	xproto := h2ws.Protocol(r)
	if xproto != "" && !strings.EqualFold(xproto, "websocket") {
		http.Error(w, fmt.Sprintf("tunnel: extended CONNECT for protocol %q is not supported (only websocket)", xproto),
			http.StatusNotImplemented)
		return
	}
	if xproto == "" && !isUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		http.Error(w, Hint, http.StatusUpgradeRequired)
		return
	}
	if s.Dial == nil {
		http.Error(w, "tunnel: no target configured", http.StatusBadGateway)
		return
	}
	up, err := s.Dial(r.Context(), target)
	if err != nil {
		s.logger().Warn("tunnel target unreachable", "target", target, "client", r.RemoteAddr, "err", err)
		http.Error(w, fmt.Sprintf("tunnel target %s unreachable: %v", target, err), http.StatusBadGateway)
		return
	}
	var h2 *h2Writer
	if xproto != "" {
		h2, r = asHTTP1(w, r)
		w = h2
		defer h2.finish()
	}
	// Counted before the client can know the tunnel is open.
	s.stats.open.Add(1)
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		// Accept has answered the client.
		s.stats.open.Add(-1)
		up.Close()
		return
	}
	s.stats.count(target)
	ended := make(chan struct{})
	proto := "HTTP/1.1"
	if h2 != nil {
		proto = "HTTP/2"
	}
	s.relay(ws, up, target, r.RemoteAddr, proto, ended)
	<-ended
}

func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && hasToken(r.Header, "Connection", "upgrade") && hasToken(r.Header, "Upgrade", "websocket")
}

func hasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// relay copies between the WebSocket and up until both directions end,
// then logs the session, counts it closed and closes ended.
func (s *Server) relay(ws *websocket.Conn, up net.Conn, target, client, proto string, ended chan<- struct{}) {
	// The session outlives the request: its context ends at Close.
	nc := &counted{Conn: websocket.NetConn(context.Background(), ws, websocket.MessageBinary)}
	start := time.Now()
	relay.Pair(s.Spawn, nc, up, func() {
		s.stats.open.Add(-1)
		rx, tx := nc.rx.Load(), nc.tx.Load()
		s.stats.rx.Add(rx)
		s.stats.tx.Add(tx)
		s.logger().Info("tunnel session ended", "target", target, "upstream", up.RemoteAddr().String(), "client", client,
			"proto", proto, "rx_bytes", rx, "tx_bytes", tx, "duration", time.Since(start).Round(time.Millisecond))
		close(ended)
	})
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// counted counts the bytes a tunnel carries: rx from the client, tx to it.
type counted struct {
	net.Conn
	rx, tx atomic.Int64
}

func (c *counted) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rx.Add(int64(n))
	if errors.Is(err, context.Canceled) {
		err = net.ErrClosed
	}
	return n, err
}

func (c *counted) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.tx.Add(int64(n))
	return n, err
}
