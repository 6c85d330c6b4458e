package tunnel

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"

	"golang.org/x/net/http2"
)

// h2Transport dials each tunnel as a WebSocket over HTTP/2 (RFC 8441): it
// takes the HTTP/1.1 upgrade request websocket.Dial makes, sends it as an
// extended CONNECT stream on a connection of its own (TLS with ALPN h2,
// or h2c with prior knowledge for http:// URLs), and answers the stream's
// 200 with the 101 that websocket.Dial checks, whose body is the stream.
// x/net's HTTP/2 transport is used because net/http's refuses the
// :protocol pseudo-header; it waits for the server's SETTINGS and fails
// if they do not enable extended CONNECT.
type h2Transport struct{ c *Client }

func (t h2Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	conn, err := t.dial(req)
	if err != nil {
		return nil, err
	}
	cc, err := (&http2.Transport{}).NewClientConn(conn)
	if err != nil {
		conn.Close()
		return nil, hopErr("oneport", "HTTP/2 with %s: %w", serverAddr(t.c.URL), err)
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	pr, pw := io.Pipe()
	// The stream outlives the dial, whose context ends when Dial
	// returns; until the answer, that context still bounds it.
	out := req.Clone(context.WithoutCancel(req.Context()))
	stop := context.AfterFunc(req.Context(), func() { cc.Close() })
	out.Method = http.MethodConnect
	for _, k := range []string{"Connection", "Upgrade", "Sec-WebSocket-Key"} {
		out.Header.Del(k)
	}
	out.Header.Set(":protocol", "websocket")
	out.Body, out.ContentLength = pr, -1
	resp, err := cc.RoundTrip(out)
	if !stop() && err == nil {
		err = req.Context().Err()
		resp.Body.Close()
	}
	if err != nil {
		cc.Close()
		return nil, hopErr("oneport", "%s: WebSocket over HTTP/2 (extended CONNECT): %w; connect without --http2",
			serverAddr(t.c.URL), err)
	}
	s := &h2Stream{r: resp.Body, w: pw, cc: cc}
	resp.Body = s
	if resp.StatusCode != http.StatusOK {
		return resp, nil // websocket.Dial reports it, and closes the body
	}
	// RFC 8441 section 5: a 200 is the stream's 101.
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp.StatusCode, resp.Status = http.StatusSwitchingProtocols, "101 Switching Protocols"
	resp.Header.Set("Upgrade", "websocket")
	resp.Header.Set("Connection", "Upgrade")
	resp.Header.Set("Sec-WebSocket-Accept", base64.StdEncoding.EncodeToString(sum[:]))
	return resp, nil
}

// dial opens the connection the stream goes on: through the proxy hop,
// then TLS, which must agree on h2.
func (t h2Transport) dial(req *http.Request) (net.Conn, error) {
	raw, err := t.c.dialServer(req.Context())
	if err != nil || t.c.URL.Scheme == "http" {
		return raw, err
	}
	cfg := t.c.tlsConfig()
	cfg.NextProtos = []string{http2.NextProtoTLS}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(req.Context()); err != nil {
		raw.Close()
		if he, ok := errors.AsType[*HopError](err); ok {
			return nil, he
		}
		return nil, hopErr("tls", "handshake with %s: %w", serverAddr(t.c.URL), err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
		tc.Close()
		return nil, hopErr("tls", "%s does not offer HTTP/2 (ALPN chose %q); connect without --http2", serverAddr(t.c.URL), p)
	}
	return tc, nil
}

// h2Stream is the extended CONNECT stream as the ReadWriteCloser
// websocket.Dial wants for a body: reads read the response, writes go
// out on the request; closing ends the stream and its connection.
type h2Stream struct {
	r  io.ReadCloser
	w  *io.PipeWriter
	cc *http2.ClientConn
}

func (s *h2Stream) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s *h2Stream) Write(p []byte) (int, error) { return s.w.Write(p) }

func (s *h2Stream) Close() error {
	s.w.Close()
	s.r.Close()
	return s.cc.Close()
}
