package httproute_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/httproute/gateway"
)

// sseBackend answers every request on a connection with an event stream
// whose header and first event go in one write, as model servers send
// them, and whose end follows once next says so: a stream still open
// when the client reads its first event. Only the benchmark's requests
// (sseMarker) wait for next; a stray one, which another program on the
// box may send to the proxy's port, would take the benchmark's turn.
func sseBackend(b *testing.B, next <-chan struct{}) string {
	const first = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" +
		"Transfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n"
	return rawUpstream(b, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			ours, err := skipRequest(br)
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, first); err != nil {
				return
			}
			if ours {
				<-next
			}
			if _, err := io.WriteString(c, "0\r\n\r\n"); err != nil {
				return
			}
		}
	})
}

// sseMarker is the header field of the benchmark's requests.
const sseMarker = "X-Bench-Stream: 1\r\n"

// skipRequest reads a request from br, its head and the body its
// Content-Length announces, and reports whether it has sseMarker.
func skipRequest(br *bufio.Reader) (marked bool, err error) {
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
		marked = marked || string(line) == sseMarker
	}
	_, err = br.Discard(n)
	return marked, err
}

// BenchmarkSSEFirstChunk asks, over a kept-alive connection, for an event
// stream whose first event is sent at once, directly and through the
// proxy in turns, and reports the p50 of the time from sending the
// request to reading the first event on each path and what the proxy
// adds: oneport-bench's "sse time to first chunk", at low load. The
// proxy serves a plain route (route) or a gateway route, which routes a
// streamed chat completion by its model (gateway).
func BenchmarkSSEFirstChunk(b *testing.B) {
	b.Run("route", func(b *testing.B) {
		next := make(chan struct{})
		backend := sseBackend(b, next)
		req := "GET /v1/chat/completions HTTP/1.1\r\nHost: box\r\nAccept: text/event-stream\r\n" + sseMarker + "\r\n"
		sseFirstChunk(b, next, req, backend, benchTargetFor(b, httproute.EngineOneport, backend))
	})
	b.Run("gateway", func(b *testing.B) {
		next := make(chan struct{})
		backend := sseBackend(b, next)
		g, err := gateway.New(gateway.Config{Models: []gateway.Model{{Name: "m", Upstream: backend}}})
		if err != nil {
			b.Fatal(err)
		}
		const body = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		req := "POST /v1/chat/completions HTTP/1.1\r\nHost: box\r\nAccept: text/event-stream\r\n" + sseMarker +
			"Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		proxy := benchServe(b, httproute.EngineOneport, httproute.Route{Path: "/", Upstreams: []string{backend}, Serve: g})
		sseFirstChunk(b, next, req, backend, proxy)
	})
}

// sseFirstChunk sends req for an sseBackend's stream to direct and to
// proxied in turns, and reports the p50s of the time to its first event.
func sseFirstChunk(b *testing.B, next chan<- struct{}, req, direct, proxied string) {
	paths := []string{direct, proxied}
	conns := make([]net.Conn, len(paths))
	readers := make([]*bufio.Reader, len(paths))
	for i, addr := range paths {
		c, err := benchDialer.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i], readers[i] = c, bufio.NewReader(c)
	}
	event := []byte("data: 1\n")
	var ds [2][]time.Duration
	b.ReportAllocs()
	for b.Loop() {
		for i, c := range conns {
			br := readers[i]
			start := time.Now()
			if _, err := io.WriteString(c, req); err != nil {
				b.Fatal(err)
			}
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					b.Fatal(err)
				}
				if bytes.Equal(line, event) {
					break
				}
			}
			ds[i] = append(ds[i], time.Since(start))
			next <- struct{}{}
			for { // the rest of the stream: "\n", "\r\n", "0\r\n", "\r\n"
				line, err := br.ReadSlice('\n')
				if err != nil {
					b.Fatal(err)
				}
				if string(line) == "0\r\n" {
					br.ReadSlice('\n')
					break
				}
			}
		}
	}
	p50 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds()) / 1e3
	}
	d, p := p50(ds[0]), p50(ds[1])
	b.ReportMetric(d, "direct-p50-µs")
	b.ReportMetric(p, "oneport-p50-µs")
	b.ReportMetric(p-d, "added-p50-µs")
}
