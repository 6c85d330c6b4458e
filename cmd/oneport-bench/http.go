package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/oneport/oneport/internal/loadtest"
)

func httpFigures(bin string, o options) ([]row, error) {
	b, err := startBackends()
	if err != nil {
		return nil, err
	}
	defer b.stop()
	backend := b.http
	ps, stopPaths, err := startPaths(bin, o, backend, b.pid, "http", "--route", "/="+backend)
	if err != nil {
		return nil, err
	}
	defer stopPaths()
	models := request{path: "/v1/models"}
	var rps, p99, cpu, newConn, newCPU, blob, ttfb, sse50, sse99 samples
	for run := range o.runs {
		for _, p := range rotated(ps, run) {
			var lat time.Duration
			r, c, err := cpuPerOp(p.pids(), func() (r float64, err error) {
				r, lat, err = httpLoad(p.addr, models, 16, true, o.rateDur)
				return r, err
			})
			if err != nil {
				return nil, err
			}
			rps.add(p.col, r)
			p99.add(p.col, us(lat))
			cpu.add(p.col, c)
			if r, c, err = cpuPerOp(p.pids(), func() (r float64, err error) {
				r, _, err = httpLoad(p.addr, models, 4, false, o.rateDur)
				return r, err
			}); err != nil {
				return nil, err
			}
			newConn.add(p.col, r)
			newCPU.add(p.col, c)
			if r, _, err = httpLoad(p.addr, request{path: "/blob"}, 4, true, o.rateDur); err != nil {
				return nil, err
			}
			blob.add(p.col, r) // MiB/s: one MiB per request
			d50, d99, err := sseDelay(p.addr, 200, 2*time.Millisecond)
			if err != nil {
				return nil, err
			}
			sse50.add(p.col, us(d50))
			sse99.add(p.col, us(d99))
		}
		if err := sseFirstChunks(ps, 100, &ttfb); err != nil {
			return nil, err
		}
	}
	mem, err := idleHTTPRows(bin, o, backend)
	if err != nil {
		return nil, err
	}
	s99 := sse99.medians()
	added := noVals()
	for col := colOneport; col < ncols; col++ {
		added[col] = s99[col] - s99[colDirect]
	}
	atLeast := func(x float64) func(row) bool { return func(r row) bool { return r.ratio(colOneport) >= x } }
	rows := []row{
		{name: "http keep-alive req/s, 16 clients", unit: "req/s", v: rps.medians(), higherIsBetter: true,
			target: ">= 0.80x, >= haproxy", ok: func(r row) bool {
				o, h := r.ratio(colOneport), r.ratio(colHAProxy)
				return o >= 0.80 && !(h > o)
			}},
		{name: "http keep-alive p99", unit: "µs", v: p99.medians()},
		{name: "http cpu per keep-alive request", unit: "µs", v: cpu.medians(), absolute: true,
			target: "<= 20", ok: func(r row) bool { return r.v[colOneport] <= 20 }},
		{name: "http new-connection req/s, 4 clients", unit: "req/s", v: newConn.medians(), higherIsBetter: true,
			target: ">= 0.90x", ok: atLeast(0.90)},
		{name: "http cpu per new-connection request", unit: "µs", v: newCPU.medians(), absolute: true},
		{name: "http 1 MiB responses", unit: "MiB/s", v: blob.medians(), higherIsBetter: true,
			target: ">= 0.4x", ok: atLeast(0.4)},
		{name: "sse time to first chunk p50", unit: "µs", v: ttfb.medians(),
			target: "<= direct+300", ok: func(r row) bool { return r.v[colOneport]-r.v[colDirect] <= 300 }},
		{name: "sse chunk delay p50", unit: "µs", v: sse50.medians()},
		{name: "sse chunk delay p99", unit: "µs", v: s99},
		{name: "sse added chunk delay p99", unit: "µs", v: added, absolute: true,
			target: "< 200", ok: func(r row) bool { return r.v[colOneport] < 200 }},
	}
	return append(rows, mem...), nil
}

// idleFigures measures only the memory of idle HTTP connections.
func idleFigures(bin string, o options) ([]row, error) {
	b, err := startBackends()
	if err != nil {
		return nil, err
	}
	defer b.stop()
	return idleHTTPRows(bin, o, b.http)
}

// idleHTTPRows measures the memory of idle keep-alive connections through
// each proxy in front of backend at two scales: what a parked connection
// holds shows fully only once its live memory moves the garbage
// collector's heap target past its minimum.
func idleHTTPRows(bin string, o options, backend string) ([]row, error) {
	models := request{path: "/v1/models"}
	// A fixed number of requests, not a duration, so that the heap goes
	// through the same collections however busy the machine is.
	traffic := func(addr string) error { return httpRequests(addr, models, 16, o.idleRequests) }
	var rows []row
	for _, n := range []int{o.idle, o.idleMany} {
		if n <= 0 {
			continue
		}
		mem := noVals()
		for col, start := range map[int]starter{
			colOneport: func() (*daemon, error) { return startOneport(bin, "--route", "/="+backend) },
			colHAProxy: haproxyStarter(o, backend, "http"),
			colNginx:   func() (*daemon, error) { return startNginx(o.nginx, backend, "http") },
		} {
			m, err := idleMemory(start, n, o.runs, idleCost{open: httpIdle, traffic: traffic})
			if err != nil {
				return nil, err
			}
			mem[col] = m / 1024
		}
		rows = append(rows, row{name: fmt.Sprintf("memory per idle keep-alive conn, %d held", n), unit: "KiB PSS",
			v: mem, absolute: true, target: "<= 4", ok: func(r row) bool { return r.v[colOneport] <= 4 }})
	}
	return rows, nil
}

// request is what the load clients send: GET path, or POST body to it,
// with header set.
type request struct {
	path   string
	body   []byte
	header http.Header
}

// httpLoad runs workers clients sending req to addr for dur and returns
// requests per second and the p99 latency.
func httpLoad(addr string, req request, workers int, keepAlive bool, dur time.Duration) (float64, time.Duration, error) {
	return httpLoadScheme("http", addr, req, workers, keepAlive, dur)
}

// httpLoadScheme is httpLoad over http or https (HTTP/1.1, any
// certificate).
func httpLoadScheme(scheme, addr string, req request, workers int, keepAlive bool, dur time.Duration) (float64, time.Duration, error) {
	do, stop := requester(scheme, addr, req, workers, keepAlive)
	defer stop()
	rate, lats, err := runWorkers(workers, dur, do)
	if err != nil {
		return 0, 0, err
	}
	return rate, loadtest.Percentile(lats, 99), nil
}

// httpRequests sends req to addr total times over workers kept-alive
// clients, and returns the first error.
func httpRequests(addr string, req request, workers, total int) error {
	do, stop := requester("http", addr, req, workers, true)
	defer stop()
	var left atomic.Int64
	left.Store(int64(total))
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for left.Add(-1) >= 0 {
				if err := do(); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// requester returns a function that sends req to addr once and checks
// for a 200, over a client with room for workers kept-alive connections
// (HTTP/1.1, any certificate), and a function that closes its
// connections.
func requester(scheme, addr string, req request, workers int, keepAlive bool) (do func() error, stop func()) {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, DisableKeepAlives: !keepAlive, DisableCompression: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	client := &http.Client{Transport: tr}
	url := scheme + "://" + addr + req.path
	return func() error {
		method, body := "GET", io.Reader(nil)
		if req.body != nil {
			method, body = "POST", bytes.NewReader(req.body)
		}
		r, err := http.NewRequest(method, url, body)
		if err != nil {
			return err
		}
		for k, v := range req.header {
			r.Header[k] = v
		}
		if req.body != nil {
			r.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(r)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("%s %s: status %d", method, req.path, resp.StatusCode)
		}
		return err
	}, tr.CloseIdleConnections
}

// sseDelay streams n events gap apart and returns the p50 and p99 of the
// time each took from the backend's write to the client's read.
func sseDelay(addr string, n int, gap time.Duration) (time.Duration, time.Duration, error) {
	resp, err := http.Get(fmt.Sprintf("http://%s/v1/chat/completions?n=%d&gap=%s", addr, n, gap))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	ds, err := loadtest.SSEDelays(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	if len(ds) != n {
		return 0, 0, fmt.Errorf("got %d events, want %d", len(ds), n)
	}
	return loadtest.Percentile(ds, 50), loadtest.Percentile(ds, 99), nil
}

// sseFirstChunks asks each path in turn, n times, for an event stream
// whose first event is sent at once and whose second follows 2 ms later,
// over a kept-alive connection, and adds to s the p50 of the time from
// sending the request to reading the first event. A proxy that buffers
// the stream shows the 2 ms.
func sseFirstChunks(ps []path, n int, s *samples) error {
	clients := make([]*http.Client, len(ps))
	for i := range ps {
		tr := &http.Transport{DisableCompression: true}
		defer tr.CloseIdleConnections()
		clients[i] = &http.Client{Transport: tr}
	}
	ds := make([][]time.Duration, len(ps))
	for range n {
		for i, p := range ps {
			d, err := sseFirstChunk(clients[i], p.addr)
			if err != nil {
				return err
			}
			ds[i] = append(ds[i], d)
		}
	}
	for i, p := range ps {
		s.add(p.col, us(loadtest.Percentile(ds[i], 50)))
	}
	return nil
}

func sseFirstChunk(client *http.Client, addr string) (time.Duration, error) {
	start := time.Now()
	resp, err := client.Get("http://" + addr + "/v1/chat/completions?n=2&first=0s&gap=2ms")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		return 0, fmt.Errorf("first event: %w", err)
	}
	d := time.Since(start)
	_, err = io.Copy(io.Discard, br)
	return d, err
}

// httpIdle opens a keep-alive connection through addr, makes one request
// and leaves the connection idle.
func httpIdle(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	io.WriteString(c, "GET /v1/models HTTP/1.1\r\nHost: box\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return c, nil
}
