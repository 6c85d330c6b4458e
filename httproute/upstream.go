package httproute

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oneport/oneport/httproute/internal/h1"
)

// upstream is one parsed upstream address.
type upstream struct {
	raw    string
	target *url.URL // scheme http or https, host, base path
	h2c    bool
	socket string // unix socket path, or ""
	weight int
	tags   []string
	st     *upstreamState // set only in a Handler's copy of a table
}

// parseUpstream accepts host:port, http://, https://, h2c:// URLs and
// unix:/path.sock.
func parseUpstream(s string) (*upstream, error) {
	u := &upstream{raw: s}
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("upstream %q: a unix socket path must be absolute (unix:/run/x.sock)", s)
		}
		u.socket = path
		u.target = &url.URL{Scheme: "http", Host: "localhost"}
		return u, nil
	}
	if !strings.Contains(s, "://") {
		if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
			return nil, fmt.Errorf("upstream %q: want host:port, a URL or unix:/path", s)
		}
		s = "http://" + s
	}
	t, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", u.raw, err)
	}
	switch t.Scheme {
	case "http", "https":
	case "h2c":
		t.Scheme, u.h2c = "http", true
	default:
		return nil, fmt.Errorf("upstream %q: scheme %q not supported (http, https, h2c, unix)", u.raw, t.Scheme)
	}
	if t.Host == "" || t.RawQuery != "" || t.Fragment != "" || t.User != nil {
		return nil, fmt.Errorf("upstream %q: want scheme://host[:port][/base path]", u.raw)
	}
	t.Path = strings.TrimRight(t.Path, "/")
	t.RawPath = ""
	u.target = t
	return u, nil
}

func (u *upstream) String() string { return u.raw }

// transport builds the upstream's round tripper. Idle connections are
// kept for many parallel streams; responses are passed through as the
// upstream sent them (no transparent gzip). Plain-HTTP and unix-socket
// upstreams take the HTTP/1.1 fast path for common requests.
func (u *upstream) transport(r *Route) (http.RoundTripper, func()) {
	dialTimeout := r.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = DefaultDialTimeout
	}
	headerTimeout := r.ResponseHeaderTimeout
	if headerTimeout <= 0 {
		headerTimeout = DefaultResponseHeaderTimeout
	}
	maxHeader := r.MaxResponseHeaderBytes
	if maxHeader <= 0 {
		maxHeader = DefaultMaxResponseHeaderBytes
	}
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	network, addr := "tcp", u.target.Host
	if u.target.Port() == "" {
		addr = net.JoinHostPort(u.target.Hostname(), "80")
	}
	if u.socket != "" {
		network, addr = "unix", u.socket
	}
	t := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return newTransportConn(c), nil
		},
		MaxIdleConns:           0,
		MaxIdleConnsPerHost:    256,
		IdleConnTimeout:        90 * time.Second,
		ResponseHeaderTimeout:  headerTimeout,
		MaxResponseHeaderBytes: int64(maxHeader), // HTTP/2 too: it sets the header list size
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		ForceAttemptHTTP2:      u.target.Scheme == "https",
		TLSClientConfig:        &tls.Config{},
	}
	if u.target.Scheme == "https" {
		t.DialContext = d.DialContext
	}
	if u.h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		t.Protocols = &p
		return t, t.CloseIdleConnections
	}
	if u.target.Scheme != "http" {
		return t, t.CloseIdleConnections
	}
	dial := func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, network, addr) }
	ft := h1.NewTransport(dial, t, headerTimeout, 256, 90*time.Second, maxHeader, MaxDialsPerUpstream)
	return ft, ft.CloseIdleConnections
}

// MaxDialsPerUpstream bounds the connections being opened to one upstream
// at once. Requests beyond it wait for one of them or for an idle
// connection, whichever comes first: a flood of requests that are
// cancelled as soon as they are sent (HTTP/2 rapid reset) then costs the
// upstream a few connections, not one each.
const MaxDialsPerUpstream = 8

// errorStatus maps a proxy error to the status the client gets: 504 for
// timeouts, 499 when the client went away, 400 for a request body that
// does not parse, 502 otherwise.
func errorStatus(r *http.Request, err error) int {
	if errors.Is(r.Context().Err(), context.Canceled) {
		return StatusClientClosedRequest
	}
	if be, ok := errors.AsType[*clientBodyError](err); ok {
		return be.status()
	}
	if _, ok := errors.AsType[*errNoUpstream](err); ok {
		return http.StatusServiceUnavailable
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// StatusClientClosedRequest is logged when the client left before the
// upstream answered (nginx's 499); no response is sent.
const StatusClientClosedRequest = 499
