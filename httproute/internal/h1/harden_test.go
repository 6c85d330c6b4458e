package h1_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/httproute/internal/h1"
	"github.com/oneport/oneport/internal/conntest"
)

// A request with both Content-Length and Transfer-Encoding is served by
// its chunked framing, but the connection closes after the response (RFC
// 9112 6.1): whoever sent it may frame it differently. This is the own
// engine's: net/http's server drops the Content-Length field and keeps
// the connection.
func TestContentLengthWithTransferEncodingCloses(t *testing.T) {
	addr, _ := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}), nil)
	c := dialServer(t, addr)
	io.WriteString(c, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+
		"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close || string(body) != "abc" {
		t.Fatalf("status %d, close %v, body %q: want 200, Connection: close and abc", resp.StatusCode, resp.Close, body)
	}
	if rest, err := io.ReadAll(br); len(rest) > 0 || err != nil {
		t.Fatalf("the connection served on: %q %v", rest, err)
	}
	// Without Content-Length, chunked requests keep the connection.
	c2 := dialServer(t, addr)
	io.WriteString(c2, "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	br2 := bufio.NewReader(c2)
	resp, err = http.ReadResponse(br2, nil)
	if err != nil || resp.Close {
		t.Fatalf("plain chunked request: %v, close %v", err, resp != nil && resp.Close)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	io.WriteString(c2, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err = http.ReadResponse(br2, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a second request on the same connection: %v, %v", resp, err)
	}
}

// The same when the header arrives in two pieces: the second read moved
// the buffered bytes under the saved header, which then no longer showed
// Content-Length, and the connection stayed open.
func TestContentLengthWithTransferEncodingInTwoSegmentsCloses(t *testing.T) {
	reads := make(chan struct{}, 16)
	defer h1.OnHeaderRead(func() { reads <- struct{}{} })()
	addr, _ := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}), nil)
	c := dialServer(t, addr)
	io.WriteString(c, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")
	<-reads // the server holds the first piece
	io.WriteString(c, "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close || string(body) != "abc" {
		t.Fatalf("status %d, close %v, body %q: want 200, Connection: close and abc", resp.StatusCode, resp.Close, body)
	}
}

// The Transport reads at most its limit of a response header, however
// much an upstream sends, 1xx responses included, and says so.
func TestTransportResponseHeaderLimit(t *testing.T) {
	up := conntest.Serve(t, func(c net.Conn) {
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		status := "HTTP/1.1 200 OK\r\n"
		if req.URL.Path == "/early" {
			status = "HTTP/1.1 103 Early Hints\r\n"
		}
		io.WriteString(c, status)
		line := "X-Filler: " + strings.Repeat("a", 1014) + "\r\n"
		for range 4 << 10 { // 4 MiB, bounded so that no limit fails instead of filling memory
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
	d := &net.Dialer{}
	dial := func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", up) }
	const limit = 16 << 10
	tr := h1.NewTransport(dial, &http.Transport{}, time.Minute, 8, time.Minute, limit, 8)
	t.Cleanup(tr.CloseIdleConnections)
	for _, path := range []string{"/", "/early"} {
		req, _ := http.NewRequest("GET", "http://"+up+path, nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: got a response with %d header fields", path, len(resp.Header))
		}
		if !strings.Contains(err.Error(), "header") || !strings.Contains(err.Error(), strconv.Itoa(limit)) {
			t.Errorf("%s: error %q does not name the header limit", path, err)
		}
	}
}
