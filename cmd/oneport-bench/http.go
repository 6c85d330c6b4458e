package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
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
	p, stopPaths, err := startPaths(bin, o, backend, b.pid, "http", "--route", "/="+backend)
	if err != nil {
		return nil, err
	}
	defer stopPaths()
	addrs := p.list()
	n := len(addrs)
	rps, p99, cpu, newConn, blob, sse50, sse99 := perPath(n), perPath(n), perPath(n), perPath(n), perPath(n), perPath(n), perPath(n)
	for range o.runs {
		for i, a := range addrs {
			var lat time.Duration
			r, c, err := cpuPerOp(p.pids[i], o.rateDur, func() (float64, error) {
				r, l, err := httpLoad(a, "/v1/models", 16, true, o.rateDur)
				lat = l
				return r, err
			})
			if err != nil {
				return nil, err
			}
			rps[i], p99[i], cpu[i] = append(rps[i], r), append(p99[i], us(lat)), append(cpu[i], c)
			if r, _, err = httpLoad(a, "/v1/models", 4, false, o.rateDur); err != nil {
				return nil, err
			}
			newConn[i] = append(newConn[i], r)
			if r, _, err = httpLoad(a, "/blob", 4, true, o.rateDur); err != nil {
				return nil, err
			}
			blob[i] = append(blob[i], r) // MiB/s: one MiB per request
			d50, d99, err := sseDelay(a, 200, 2*time.Millisecond)
			if err != nil {
				return nil, err
			}
			sse50[i], sse99[i] = append(sse50[i], us(d50)), append(sse99[i], us(d99))
		}
	}
	mem, err := idleMemory(bin, "", o.idle, o.runs, httpIdle, "--route", "/="+backend)
	if err != nil {
		return nil, err
	}
	s50, s99 := medians(sse50), medians(sse99)
	addedSSE := s99[1] - s99[0]
	rows := []row{
		fig("http keep-alive small JSON", "req/s", medians(rps), true, ">= 0.4x", func(r float64) bool { return r >= 0.4 }),
		fig("http keep-alive p99", "µs", medians(p99), false, "", nil),
		fig("http cpu per request, own process", "µs", medians(cpu), false, "", nil),
		fig("http new conn per request", "req/s", medians(newConn), true, "", nil),
		fig("http 1 MiB responses", "MiB/s", medians(blob), true, ">= 0.4x", func(r float64) bool { return r >= 0.4 }),
		fig("sse chunk delay p50", "µs", s50, false, "", nil),
		fig("sse chunk delay p99", "µs", s99, false, "", nil),
		{name: "sse added chunk latency p99", unit: "µs", vals: addedVals(s99, func(i int) float64 { return s99[i] - s99[0] }),
			onlyProxies: true, target: "< 200", verdict: verdict(addedSSE < 200)},
		{name: "memory per idle keep-alive conn", unit: "KiB PSS", vals: []float64{0, mem / 1024}, onlyProxies: true,
			target: "< 16", verdict: verdict(mem/1024 < 16)},
	}
	return rows, nil
}

// httpLoad runs workers clients requesting path for dur and returns
// requests per second and the p99 latency.
func httpLoad(addr, path string, workers int, keepAlive bool, dur time.Duration) (float64, time.Duration, error) {
	return httpLoadScheme("http", addr, path, workers, keepAlive, dur)
}

// httpLoadScheme is httpLoad over http or https (HTTP/1.1, any
// certificate).
func httpLoadScheme(scheme, addr, path string, workers int, keepAlive bool, dur time.Duration) (float64, time.Duration, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, DisableKeepAlives: !keepAlive, DisableCompression: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	rate, lats, err := runWorkers(workers, dur, func() error {
		resp, err := client.Get(scheme + "://" + addr + path)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
		}
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return rate, loadtest.Percentile(lats, 99), nil
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
