package httproute

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	// Turns on HTTP/2 extended CONNECT for the process; handler.go uses it.
	_ "github.com/oneport/oneport/internal/xconnect/h2ws"
)

// WebSockets over HTTP/2 (RFC 8441): once extended CONNECT is on, a
// browser opens every WebSocket to an HTTP/2 origin as a CONNECT stream
// with :protocol "websocket", and no Upgrade, Connection or
// Sec-WebSocket-Key. Upstreams speak WebSocket over HTTP/1.1 only, so
// the Handler turns such a stream into an HTTP/1.1 upgrade upstream
// (h2ws.Upgrade): the same request the client would have sent over
// HTTP/1.1, with a fresh key, going through the route's rewrites as any
// upgrade does. The upstream's 101 becomes the stream's 200 (its
// Sec-WebSocket-Protocol, -Extensions and Set-Cookie pass, the handshake
// headers do not), and the bytes then flow between the stream and the
// upstream connection until either ends. Any other answer passes
// through as a response. The session is logged and counted as an
// upgraded one (status 101, rx and tx), with method CONNECT.

// refuseExtendedConnect answers an extended CONNECT this Handler does not
// translate, and reports whether it did: any :protocol but websocket, and
// routes served by a handler of their own rather than the proxy.
func refuseExtendedConnect(w http.ResponseWriter, proto string, c *compiled) bool {
	switch {
	case !strings.EqualFold(proto, "websocket"):
		http.Error(w, fmt.Sprintf("oneport: extended CONNECT for protocol %q is not supported (only websocket)", proto),
			http.StatusNotImplemented)
		return true
	case c != nil && c.Serve != nil:
		http.Error(w, fmt.Sprintf("oneport: route %s does not serve WebSockets", c.name()), http.StatusNotImplemented)
		return true
	}
	return false
}

// webSocketAccept is the Sec-WebSocket-Accept a server answers key with
// (RFC 6455 section 4.2.2).
func webSocketAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// errBadSwitch is an upstream's 101 that does not complete the WebSocket
// handshake oneport started.
var errBadSwitch = errors.New("upstream answered the WebSocket upgrade with a broken handshake")

// xconnectTransport sends one extended CONNECT's upgrade upstream through
// next, and turns a 101 into the stream's 200 whose body is what the
// upstream sends; it relays the client's stream to the upstream itself.
type xconnectTransport struct {
	next   http.RoundTripper
	client io.ReadCloser // the client's stream
	lw     *logWriter
}

func (t *xconnectTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.Header.Get("Sec-WebSocket-Key")
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		return resp, err
	}
	up, ok := resp.Body.(io.ReadWriteCloser)
	if !ok || !hasToken(resp.Header, "Upgrade", "websocket") || resp.Header.Get("Sec-WebSocket-Accept") != webSocketAccept(key) {
		resp.Body.Close()
		return nil, errBadSwitch
	}
	n := new(upgradeCounts)
	t.lw.upgrade = n
	s := &xconnectSession{up: up, n: n}
	// A client that resets its stream ends the session upstream at once.
	s.stop = context.AfterFunc(req.Context(), func() { up.Close() })
	go s.toUpstream(t.client)
	h := resp.Header
	for _, k := range []string{"Connection", "Upgrade", "Sec-WebSocket-Accept", "Content-Length", "Transfer-Encoding"} {
		h.Del(k)
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK,
		Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
		Header: h, Body: s, ContentLength: -1, Request: req,
	}, nil
}

// xconnectSession is an upgraded upstream connection as the 200's body:
// reading it reads what the upstream sends to the client; closing it
// ends the session.
type xconnectSession struct {
	up   io.ReadWriteCloser
	n    *upgradeCounts
	stop func() bool
}

func (s *xconnectSession) Read(p []byte) (int, error) {
	n, err := s.up.Read(p)
	s.n.tx.Add(int64(n))
	return n, err
}

func (s *xconnectSession) Close() error {
	s.stop()
	return s.up.Close()
}

// toUpstream copies the client's stream to the upstream until it ends:
// at its end the upstream's sending side is closed where it can be, and
// the upstream then ends the session; when the stream breaks (the
// handler returned, or the client reset it) or the upstream is gone,
// copying stops.
func (s *xconnectSession) toUpstream(client io.Reader) {
	buf := make([]byte, 16<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			s.n.rx.Add(int64(n))
			if _, werr := s.up.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err == io.EOF {
			if cw, ok := s.up.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			return
		}
		if err != nil {
			s.up.Close()
			return
		}
	}
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
