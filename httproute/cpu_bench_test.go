package httproute_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/mux"
)

// The request and response of the CPU benchmarks: a small JSON answer, as
// a model server's /v1/models, to a request with the fields curl and the
// OpenAI SDKs send.
const (
	benchRequest = "GET /v1/models HTTP/1.1\r\nHost: box\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n"
	benchBody    = `{"object":"list","data":[{"id":"m","object":"model","created":0,"owned_by":"vllm"}]}`
)

var benchResponse = "HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nServer: uvicorn\r\n" +
	"Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(benchBody)) + "\r\n\r\n" + benchBody

// rawBackend answers every request on a connection with benchResponse,
// with as little work of its own as it can, so that what the benchmarks
// measure is the proxy's.
func rawBackend(b *testing.B) string {
	return rawUpstream(b, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if skipRequestHead(br) != nil {
				return
			}
			if _, err := io.WriteString(c, benchResponse); err != nil {
				return
			}
		}
	})
}

// skipRequestHead reads a request's head, up to its blank line, from br:
// the benchmarks' requests have no body.
func skipRequestHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			return nil
		}
	}
}

// readBenchResponse reads one response of benchResponse's framing from br.
func readBenchResponse(br *bufio.Reader) error {
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if n != len(benchBody) {
		return io.ErrUnexpectedEOF
	}
	_, err := br.Discard(n)
	return err
}

// benchTarget starts what a CPU benchmark talks to: the backend itself
// (direct), or a proxy in front of it with the access log and an observer
// on, as the daemon runs it.
func benchTarget(b *testing.B, path string) string {
	backend := rawBackend(b)
	if path == "direct" {
		return backend
	}
	return benchTargetFor(b, path, backend)
}

// benchTargetFor starts a proxy in front of backend, under engine path.
func benchTargetFor(b *testing.B, path, backend string) string {
	return benchServe(b, path, route("/="+backend))
}

// benchServe starts a proxy serving r, under engine path.
func benchServe(b *testing.B, path string, r httproute.Route) string {
	var seen atomic.Int64
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := httproute.NewHandler([]httproute.Route{r}, httproute.WithLogger(log),
		httproute.WithObserver(func(httproute.RequestInfo) { seen.Add(1) }))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.CloseIdleConnections)
	// Listening as the daemon does: keepalive set once on the listener.
	ln, err := mux.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	// The mux hands connections to the server as the daemon's does, and
	// logs with the same logger.
	hs := httproute.NewServer(h, log)
	hs.Engine = path
	m := &mux.Server{HTTP: hs, SSH: closeTarget{}, Logger: log}
	go m.Serve(ln)
	b.Cleanup(func() { m.Close(); hs.Close() })
	return ln.Addr().String()
}

// benchDialer opens the clients' connections without TCP keepalive, whose
// four setsockopt calls would be the client's cost, not the proxy's.
var benchDialer = net.Dialer{KeepAlive: -1}

var benchPaths = []string{"direct", httproute.EngineOneport, httproute.EngineNetHTTP}

// BenchmarkKeepAliveCPU sends small requests one after another on one
// keep-alive connection and reports the process's CPU time per request
// (client, proxy and backend; the direct run is the client's and the
// backend's share) and the allocations per request.
func BenchmarkKeepAliveCPU(b *testing.B) {
	for _, path := range benchPaths {
		b.Run(strings.ReplaceAll(path, "/", "_"), func(b *testing.B) {
			addr := benchTarget(b, path)
			c, err := benchDialer.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte(benchRequest + "\r\n")
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if err := readBenchResponse(br); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkNewConnCPU is BenchmarkKeepAliveCPU with a new connection per
// request, closed after the response.
func BenchmarkNewConnCPU(b *testing.B) {
	for _, path := range benchPaths {
		b.Run(strings.ReplaceAll(path, "/", "_"), func(b *testing.B) {
			addr := benchTarget(b, path)
			req := []byte(benchRequest + "Connection: close\r\n\r\n")
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				c, err := benchDialer.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if err := readBenchResponse(bufio.NewReader(c)); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
			b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
