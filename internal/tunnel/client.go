package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// DefaultPing is the interval of the client's WebSocket pings when
// Client.Ping is zero: well inside the 100 s after which Cloudflare and
// similar fronts close an idle connection.
const DefaultPing = 20 * time.Second

// Client dials tunnels to one oneport. Its zero value is not usable: set
// URL. Fields must not change while it dials.
type Client struct {
	// URL is oneport's address: https://HOST[:PORT][/PATH] (WebSocket
	// over TLS) or http://... (plain WebSocket). An empty path or "/"
	// means DefaultPath.
	URL *url.URL
	// Target is a host:port the server allow-lists; empty means SSH.
	Target string
	// Proxy is an HTTP proxy URL (http://[user:pass@]host:port) to reach
	// the server through with CONNECT; empty means the environment's
	// (HTTPS_PROXY for https, HTTP_PROXY for http, both minus NO_PROXY);
	// "direct" means none.
	Proxy string
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// SNI replaces the server name sent in TLS and checked in the
	// certificate; empty means URL's host.
	SNI string
	// Host replaces the Host header of the WebSocket request; empty
	// means URL's host.
	Host string
	// Key, if set, is sent as Authorization: Bearer.
	Key string
	// Ping is the interval between WebSocket pings; a ping unanswered
	// within twice the interval (at least 10 s) cuts the tunnel. Zero
	// means DefaultPing; negative sends none.
	Ping time.Duration
	// Trust decides which server certificates to accept.
	Trust Trust
	// DialTimeout bounds reaching the server (proxy, TLS, upgrade); zero
	// means 30 s.
	DialTimeout time.Duration
	// HTTP2 opens the WebSocket over HTTP/2 (RFC 8441 extended CONNECT):
	// TLS with ALPN h2, or h2c with prior knowledge for http:// URLs, one
	// connection per tunnel. For fronts that pass HTTP/2 but mangle
	// HTTP/1.1 upgrades; false (the default) upgrades an HTTP/1.1
	// request, which every front passes.
	HTTP2 bool
}

// HopError is a failed tunnel, naming the hop that failed: "proxy",
// "connect", "tls", "oneport" (an HTTP refusal), "target" or "tunnel"
// (the path cut once open).
type HopError struct {
	Hop string
	Err error
}

func (e *HopError) Error() string { return e.Hop + ": " + e.Err.Error() }
func (e *HopError) Unwrap() error { return e.Err }

func hopErr(hop string, format string, args ...any) error {
	return &HopError{Hop: hop, Err: fmt.Errorf(format, args...)}
}

// serverAddr is the host:port the URL names, with the scheme's default
// port.
func serverAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// wsURL is the WebSocket URL of the tunnel for target.
func (c *Client) wsURL() (string, error) {
	u := *c.URL
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	case "http":
		u.Scheme = "ws"
	default:
		return "", fmt.Errorf("url %q: want https:// or http://", c.URL.Redacted())
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = DefaultPath
	}
	q := u.Query()
	if c.Target != "" {
		q.Set("target", c.Target)
	}
	u.RawQuery = q.Encode()
	u.User = nil
	return u.String(), nil
}

// Dial opens a tunnel and returns it as a net.Conn whose Close ends the
// tunnel. The pings run until then. ctx bounds the dial only.
func (c *Client) Dial(ctx context.Context) (net.Conn, error) {
	if c.URL == nil {
		return nil, errors.New("tunnel: no URL")
	}
	wsu, err := c.wsURL()
	if err != nil {
		return nil, err
	}
	timeout := c.DialTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	h := http.Header{}
	if c.Key != "" {
		h.Set("Authorization", "Bearer "+c.Key)
	}
	var rt http.RoundTripper = c.transport()
	if c.HTTP2 {
		rt = h2Transport{c}
	}
	ws, resp, err := websocket.Dial(dctx, wsu, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: rt, CheckRedirect: noRedirect},
		HTTPHeader: h,
		Host:       c.Host,
	})
	if err != nil {
		return nil, c.dialError(err, resp)
	}
	if resp != nil && resp.Body != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body.Close()
	}
	life, stop := context.WithCancel(context.Background())
	nc := websocket.NetConn(life, ws, websocket.MessageBinary)
	conn := &clientConn{Conn: nc, stop: stop, cut: make(chan struct{})}
	if c.Ping >= 0 {
		go conn.pinger(life, ws, c.pingEvery())
	}
	return conn, nil
}

func (c *Client) pingEvery() time.Duration {
	if c.Ping == 0 {
		return DefaultPing
	}
	return c.Ping
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// transport reaches the server through the proxy hop, then TLS, and only
// ever speaks HTTP/1.1, which the WebSocket upgrade needs.
func (c *Client) transport() *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return c.dialServer(ctx)
		},
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			raw, err := c.dialServer(ctx)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(raw, c.tlsConfig())
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				var he *HopError
				if errors.As(err, &he) {
					return nil, he
				}
				return nil, hopErr("tls", "handshake with %s: %w", serverAddr(c.URL), err)
			}
			return tc, nil
		},
		ForceAttemptHTTP2: false,
		Proxy:             nil,
	}
}

// dialError turns a failed WebSocket dial into a HopError naming where it
// failed.
func (c *Client) dialError(err error, resp *http.Response) error {
	var he *HopError
	if errors.As(err, &he) {
		return he
	}
	if resp == nil {
		return hopErr("connect", "%s: %w", serverAddr(c.URL), err)
	}
	msg := ""
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		msg = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	}
	status := resp.Status
	if msg != "" {
		status += ": " + msg
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return hopErr("oneport", "%s refused the key (%s); pass one with --key or ONEPORT_KEY", serverAddr(c.URL), status)
	case http.StatusForbidden:
		return hopErr("target", "%s refused the target (%s)", serverAddr(c.URL), status)
	case http.StatusBadGateway:
		return hopErr("target", "%s could not reach the target (%s)", serverAddr(c.URL), status)
	}
	if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
		return hopErr("oneport", "%s redirects the tunnel to %s (%s); connect to that URL", serverAddr(c.URL), loc, resp.Status)
	}
	if resp.StatusCode < 400 || resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUpgradeRequired {
		path := c.URL.Path
		if path == "" || path == "/" {
			path = DefaultPath
		}
		return hopErr("oneport", "%s has no tunnel at %s (it answered %s); is it oneport, with tunnel_path %s?", serverAddr(c.URL), path, status, path)
	}
	return hopErr("oneport", "%s answered %s", serverAddr(c.URL), status)
}

// clientConn is a dialed tunnel: Close also stops the pings, and a
// missed pong turns the next read's or write's error into one that says
// the path was cut.
type clientConn struct {
	net.Conn
	stop   context.CancelFunc
	cut    chan struct{}
	cutErr error
}

func (c *clientConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

func (c *clientConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	return n, c.explain(err)
}

func (c *clientConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	return n, c.explain(err)
}

func (c *clientConn) explain(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	select {
	case <-c.cut:
		return c.cutErr
	default:
	}
	return &HopError{Hop: "tunnel", Err: fmt.Errorf("connection to oneport lost: %w", err)}
}

// pinger pings every interval until ctx ends; a ping without a pong in
// time closes the tunnel as cut.
func (c *clientConn) pinger(ctx context.Context, ws *websocket.Conn, every time.Duration) {
	wait := max(2*every, 10*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		err := ws.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			c.cutErr = &HopError{Hop: "tunnel", Err: fmt.Errorf("path to oneport cut: no answer to a ping within %v: %w", wait, err)}
			close(c.cut)
			ws.CloseNow()
			return
		}
	}
}
