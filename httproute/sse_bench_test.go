package httproute_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/oneport/oneport/httproute"
)

// sseBackend answers every request on a connection with an event stream
// whose header and first event go in one write, as model servers send
// them, and whose end follows once next says so: a stream still open
// when the client reads its first event.
func sseBackend(b *testing.B, next <-chan struct{}) string {
	const first = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" +
		"Transfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n"
	return rawUpstream(b, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if skipRequestHead(br) != nil {
				return
			}
			if _, err := io.WriteString(c, first); err != nil {
				return
			}
			<-next
			if _, err := io.WriteString(c, "0\r\n\r\n"); err != nil {
				return
			}
		}
	})
}

// BenchmarkSSEFirstChunk asks, over a kept-alive connection, for an event
// stream whose first event is sent at once, directly and through the
// proxy in turns, and reports the p50 of the time from sending the
// request to reading the first event on each path and what the proxy
// adds: oneport-bench's "sse time to first chunk", at low load.
func BenchmarkSSEFirstChunk(b *testing.B) {
	next := make(chan struct{})
	backend := sseBackend(b, next)
	paths := []string{backend, benchTargetFor(b, httproute.EngineOneport, backend)}
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
	req := []byte("GET /v1/chat/completions HTTP/1.1\r\nHost: box\r\nAccept: text/event-stream\r\n\r\n")
	event := []byte("data: 1\n")
	var ds [2][]time.Duration
	b.ReportAllocs()
	for b.Loop() {
		for i, c := range conns {
			br := readers[i]
			start := time.Now()
			if _, err := c.Write(req); err != nil {
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
	direct, proxied := p50(ds[0]), p50(ds[1])
	b.ReportMetric(direct, "direct-p50-µs")
	b.ReportMetric(proxied, "oneport-p50-µs")
	b.ReportMetric(proxied-direct, "added-p50-µs")
}
