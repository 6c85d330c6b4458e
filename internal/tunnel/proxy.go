package tunnel

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"
)

// proxyURL returns the proxy to reach the server through, or nil.
func (c *Client) proxyURL() (*url.URL, error) {
	raw := c.Proxy
	if raw == "direct" {
		return nil, nil
	}
	if raw == "" {
		getenv := c.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		env := func(k string) string {
			if v := getenv(k); v != "" {
				return v
			}
			return getenv(strings.ToLower(k))
		}
		if c.URL.Scheme == "https" {
			raw = env("HTTPS_PROXY")
		} else {
			raw = env("HTTP_PROXY")
		}
		if raw == "" || NoProxy(env("NO_PROXY"), serverAddr(c.URL)) {
			return nil, nil
		}
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, hopErr("proxy", "proxy URL %q: want http://[user:pass@]host:port", redact(raw))
	}
	return u, nil
}

func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

// NoProxy reports whether the NO_PROXY list noProxy exempts addr
// (host:port) from the proxy, as curl reads it: comma- or space-separated
// entries, "*" for every host, a host name matching itself and its
// subdomains (a leading dot is optional), an IP address or CIDR prefix,
// any of them optionally with :port.
func NoProxy(noProxy, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	ip, ipErr := netip.ParseAddr(host)
	for e := range strings.FieldsFuncSeq(noProxy, func(r rune) bool { return r == ',' || r == ' ' }) {
		e = strings.ToLower(e)
		if e == "*" {
			return true
		}
		if h, p, err := net.SplitHostPort(e); err == nil {
			if p != port {
				continue
			}
			e = h
		}
		e = strings.Trim(e, "[]")
		if ipErr == nil {
			if pfx, err := netip.ParsePrefix(e); err == nil && pfx.Contains(ip) {
				return true
			}
			if a, err := netip.ParseAddr(e); err == nil && a == ip {
				return true
			}
			continue
		}
		e = strings.TrimPrefix(strings.TrimSuffix(e, "."), ".")
		if e != "" && (host == e || strings.HasSuffix(host, "."+e)) {
			return true
		}
	}
	return false
}

// dialServer opens a TCP path to the server: directly, or through the
// proxy with CONNECT.
func (c *Client) dialServer(ctx context.Context) (net.Conn, error) {
	addr := serverAddr(c.URL)
	pu, err := c.proxyURL()
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	if pu == nil {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, hopErr("connect", "%s: %w", addr, err)
		}
		return conn, nil
	}
	paddr := serverAddr(pu)
	conn, err := d.DialContext(ctx, "tcp", paddr)
	if err != nil {
		return nil, hopErr("proxy", "cannot reach proxy %s: %w", paddr, err)
	}
	if pu.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: pu.Hostname()})
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, hopErr("proxy", "TLS with proxy %s: %w", paddr, err)
		}
		conn = tc
	}
	out, err := connect(ctx, conn, pu, addr)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return out, nil
}

// connect asks the proxy on conn for a tunnel to addr.
func connect(ctx context.Context, conn net.Conn, pu *url.URL, addr string) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
		defer conn.SetDeadline(time.Time{})
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: http.Header{}}
	if pu.User != nil {
		pass, _ := pu.User.Password()
		cred := base64.StdEncoding.EncodeToString([]byte(pu.User.Username() + ":" + pass))
		req.Header.Set("Proxy-Authorization", "Basic "+cred)
	}
	if err := req.Write(conn); err != nil {
		return nil, hopErr("proxy", "send CONNECT to proxy %s: %w", pu.Host, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, hopErr("proxy", "proxy %s: no answer to CONNECT %s: %w", pu.Host, addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusProxyAuthRequired || resp.StatusCode == http.StatusUnauthorized {
			hint = " (put user:password in the proxy URL, or check them)"
		}
		return nil, hopErr("proxy", "proxy %s refused CONNECT %s: %s%s", pu.Host, addr, resp.Status, hint)
	}
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

// bufferedConn reads what the proxy sent after its answer first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// Describe says how the client reaches the server, for messages.
func (c *Client) Describe() string {
	pu, err := c.proxyURL()
	if err != nil || pu == nil {
		return serverAddr(c.URL)
	}
	return fmt.Sprintf("%s via proxy %s", serverAddr(c.URL), pu.Host)
}
