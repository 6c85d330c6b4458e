//go:build attack

// The attack suite runs the attacks oneport's HTTP path must withstand
// against a real mux, Server and Handler on 127.0.0.1, and prints what
// they cost: run it with
//
//	go test -tags attack -run Attack -count=1 -v ./httproute/
//
// It takes under a minute, touches nothing but loopback, and fails if an
// attack gets through. Its figures include the test's own clients, which
// run in the same process.
package httproute_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/mux"
)

// attackHeaderTimeout stands in for the server's 30 s ReadHeaderTimeout,
// so that slowloris is cut within the suite's time.
const attackHeaderTimeout = 2 * time.Second

// attackTarget serves routes as oneport does by default (the own HTTP/1
// engine), with a short header timeout, and returns its address and
// handler.
func attackTarget(t *testing.T, routes ...httproute.Route) (string, *httproute.Handler) {
	t.Helper()
	h, err := httproute.NewHandler(routes)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lt := mux.NewListenerTarget("http", ln.Addr())
	hs := httproute.NewServer(h, nil)
	hs.Engine = httproute.EngineOneport
	hs.ReadHeaderTimeout, hs.HTTP.ReadHeaderTimeout = attackHeaderTimeout, attackHeaderTimeout
	m := &mux.Server{HTTP: lt, SSH: closeTarget{}}
	go hs.Serve(lt)
	go m.Serve(ln)
	t.Cleanup(func() { m.Close(); hs.Close(); h.CloseIdleConnections() })
	return ln.Addr().String(), h
}

// heap returns the live heap after a collection.
func heap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// peakHeap samples the heap until stop is closed and returns its peak.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// legit sends GETs to url until stop is closed and reports how many
// succeeded, how many failed, and the slowest.
func legit(url string, stop <-chan struct{}) <-chan [3]int64 {
	out := make(chan [3]int64, 1)
	go func() {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
		defer client.CloseIdleConnections()
		var ok, bad, slowest int64
		for {
			select {
			case <-stop:
				out <- [3]int64{ok, bad, slowest}
				return
			default:
			}
			start := time.Now()
			resp, err := client.Get(url)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			slowest = max(slowest, int64(time.Since(start)))
			if err == nil && resp.StatusCode == 200 {
				ok++
			} else {
				bad++
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return out
}

// figures collects the suite's results, printed at the end.
type figures struct {
	mu    sync.Mutex
	lines []string
}

func (f *figures) add(t *testing.T, format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	t.Log(s)
	f.mu.Lock()
	f.lines = append(f.lines, fmt.Sprintf("%-26s %s", t.Name()[strings.IndexByte(t.Name(), '/')+1:], s))
	f.mu.Unlock()
}

func TestAttackSuite(t *testing.T) {
	start := time.Now()
	var fig figures
	defer func() {
		t.Logf("attack suite figures (%.1f s):\n%s", time.Since(start).Seconds(), strings.Join(fig.lines, "\n"))
	}()
	t.Run("smuggling", func(t *testing.T) { attackSmuggling(t, &fig) })
	t.Run("slowloris", func(t *testing.T) { attackSlowloris(t, &fig) })
	t.Run("idle-keepalive", func(t *testing.T) { attackIdle(t, &fig) })
	t.Run("silent-connections", func(t *testing.T) { attackSilent(t, &fig) })
	t.Run("endless-headers", func(t *testing.T) { attackEndlessHeaders(t, &fig) })
	t.Run("mid-stream-crash", func(t *testing.T) { attackCrash(t, &fig) })
	t.Run("client-body-abort", func(t *testing.T) { attackBodyAbort(t, &fig) })
	t.Run("h2-rapid-reset", func(t *testing.T) { attackRapidReset(t, &fig) })
}

// Request smuggling: each payload hides a request for /smuggled where a
// server that reads the framing another way would see it. None may reach
// the upstream.
func attackSmuggling(t *testing.T, fig *figures) {
	var mu sync.Mutex
	var paths []string
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
	}))
	defer b.Close()
	addr, _ := attackTarget(t, route("/="+hostOf(b)))
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	chunk := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled)
	payloads := map[string]string{
		"CL.TE":               "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
		"TE.CL":               "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk,
		"TE.TE duplicate":     "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: cow\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + smuggled,
		"TE space colon":      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + smuggled,
		"TE xchunked":         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + smuggled,
		"TE chunked,identity": "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled,
		"TE obs-fold":         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + smuggled,
		"TE tab":              "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked\r\nContent-Length: 44\r\n\r\n0\r\n\r\n" + smuggled,
		"CL.CL":               "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 37\r\n\r\n" + smuggled,
		"CL plus":             "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +37\r\n\r\n" + smuggled,
		"CL list":             "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 37\r\n\r\n" + smuggled,
		"bare LF CL.TE":       "POST / HTTP/1.1\nHost: x\nContent-Length: 44\nTransfer-Encoding: chunked\n\n0\n\n" + smuggled,
		"chunk size 0x":       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x0\r\n\r\n" + smuggled,
		"chunk size overflow": "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n\r\n" + smuggled,
		"chunk LF only":       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\n\n" + smuggled,
		"HTTP/1.0 TE":         "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 44\r\n\r\n0\r\n\r\n" + smuggled,
		"GET with CL.TE":      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
	}
	refused, closed := 0, 0
	for name, raw := range payloads {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(c, raw)
		c.(*net.TCPConn).CloseWrite()
		out, _ := io.ReadAll(c)
		c.Close()
		n := bytes.Count(out, []byte("HTTP/1.1 "))
		switch {
		case n == 0 || bytes.HasPrefix(out, []byte("HTTP/1.1 4")) || bytes.HasPrefix(out, []byte("HTTP/1.1 5")):
			refused++
		case n == 1:
			closed++
		default:
			t.Errorf("%s: %d responses on one connection:\n%s", name, n, out)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	got := slices.Index(paths, "/smuggled") >= 0
	if got {
		t.Errorf("a smuggled request reached the upstream: %v", paths)
	}
	fig.add(t, "%d payloads: %d refused, %d served once then closed, %d smuggled", len(payloads), refused, closed, map[bool]int{true: 1}[got])
}

// Slowloris: hundreds of clients send their headers a field at a time.
// Real requests go on being served; the slow ones are cut at the header
// timeout.
func attackSlowloris(t *testing.T, fig *figures) {
	b := newCounting(t, "b")
	addr, _ := attackTarget(t, route("/="+hostOf(b.srv)))
	const n = 500
	var cut atomic.Int64
	var wg sync.WaitGroup
	before := heap()
	stop := make(chan struct{})
	peak := peakHeap(stop)
	deadline := time.Now().Add(attackHeaderTimeout + 2*time.Second)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
				return
			}
			for time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
				if _, err := io.WriteString(c, "X-Slow: 1\r\n"); err != nil {
					cut.Add(1)
					return
				}
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			var ne net.Error
			if _, err := c.Read(make([]byte, 1)); err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
				cut.Add(1) // closed by the server
			}
		}()
	}
	lstop := make(chan struct{})
	res := legit("http://"+addr+"/", lstop)
	wg.Wait()
	close(lstop)
	r := <-res
	close(stop)
	p := <-peak
	grow := p - min(before, p)
	if r[1] > 0 || r[0] == 0 {
		t.Errorf("real requests during slowloris: %d ok, %d failed", r[0], r[1])
	}
	if cut.Load() < n*9/10 {
		t.Errorf("only %d of %d slow clients were cut at the header timeout", cut.Load(), n)
	}
	fig.add(t, "%d slow clients: %d cut at the %v header timeout; real requests %d ok, %d failed, slowest %v; heap +%s",
		n, cut.Load(), attackHeaderTimeout, r[0], r[1], time.Duration(r[2]).Round(time.Millisecond), mib(grow))
}

// Many silent connections: more than the mux sniffs at once. Real
// requests still get through; memory stays small.
func attackSilent(t *testing.T, fig *figures) {
	b := newCounting(t, "b")
	addr, _ := attackTarget(t, route("/="+hostOf(b.srv)))
	const n = 3000
	before := heap()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	stop := make(chan struct{})
	res := legit("http://"+addr+"/", stop)
	time.Sleep(time.Second)
	after := heap()
	held := after - min(before, after)
	close(stop)
	r := <-res
	if r[1] > 0 || r[0] == 0 {
		t.Errorf("real requests among silent connections: %d ok, %d failed", r[0], r[1])
	}
	fig.add(t, "%d silent connections: heap +%s (%d B each); real requests %d ok, %d failed, slowest %v",
		n, mib(held), held/n, r[0], r[1], time.Duration(r[2]).Round(time.Millisecond))
}

// Idle keep-alive connections: each made one request and waits. They
// hold no buffer and no goroutine of their own.
func attackIdle(t *testing.T, fig *figures) {
	b := newCounting(t, "b")
	addr, _ := attackTarget(t, route("/="+hostOf(b.srv)))
	const n = 2000
	time.Sleep(100 * time.Millisecond) // the last attack's connections close
	before := heap()
	goBefore := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	time.Sleep(200 * time.Millisecond) // past idlePark: parked
	held := int64(heap()) - int64(before)
	goroutines := runtime.NumGoroutine() - goBefore
	if goroutines > n/10 {
		t.Errorf("%d idle connections hold %d goroutines", n, goroutines)
	}
	fig.add(t, "%d idle keep-alive connections: heap %+.1f MiB (%d B each, client side included), %d goroutines more",
		n, float64(held)/(1<<20), held/n, goroutines)
}

// An upstream that sends header fields forever: every request gets a
// 502 and memory stays bounded.
func attackEndlessHeaders(t *testing.T, fig *figures) {
	var sent atomic.Int64
	up := rawUpstream(t, func(c net.Conn) {
		if _, err := readHeader(c); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := []byte("X-Filler: " + strings.Repeat("a", 1014) + "\r\n")
		for {
			if _, err := c.Write(line); err != nil {
				return
			}
			sent.Add(int64(len(line)))
		}
	})
	addr, _ := attackTarget(t, route("/="+up))
	const n = 20
	before := heap()
	stop := make(chan struct{})
	peak := peakHeap(stop)
	var wg sync.WaitGroup
	var bad, out atomic.Int64
	began := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			resp, err := client.Get("http://" + addr + "/")
			if err != nil {
				t.Log(err)
				bad.Add(1)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 502:
			case 503: // the failures took the upstream out, as they should
				out.Add(1)
			default:
				t.Logf("%d %s", resp.StatusCode, body)
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(began)
	close(stop)
	p := <-peak
	grow := p - min(before, p)
	if bad.Load() > 0 {
		t.Errorf("%d of %d requests got neither 502 nor 503", bad.Load(), n)
	}
	fig.add(t, "%d requests: answered in %v (%d 502, then %d 503 once the upstream was taken out); the upstream got %s of header out; peak heap +%s",
		n, took.Round(time.Millisecond), int64(n)-out.Load(), out.Load(), mib(uint64(sent.Load())), mib(grow))
}

// An upstream that crashes mid-response: no client may see a complete
// response.
func attackCrash(t *testing.T, fig *figures) {
	up := rawUpstream(t, func(c net.Conn) {
		r, err := readHeader(c)
		if err != nil {
			return
		}
		if r.URL.Path == "/cl" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"partial\":")
		} else {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"+
				"d\r\ndata: token\n\n\r\n")
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	addr, _ := attackTarget(t, route("/="+up))
	const n = 100
	complete := 0
	var p [3]int
	for i := range n {
		path := "/chunked"
		if i%2 == 1 {
			path = "/cl"
		}
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			p[0]++
			continue
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err == nil:
			complete++
		case errors.Is(err, io.ErrUnexpectedEOF):
			p[1]++
		default:
			p[2]++
		}
	}
	if complete > 0 {
		t.Errorf("%d of %d cut responses looked complete", complete, n)
	}
	fig.add(t, "%d cut responses (chunked and sized): %d looked complete, %d cut mid-body, %d cut before the header, %d other errors",
		n, complete, p[1], p[0], p[2])
}

// Clients that abort their request bodies or frame them badly: the
// upstream stays in service.
func attackBodyAbort(t *testing.T, fig *figures) {
	b := newCounting(t, "b")
	addr, h := attackTarget(t, route("/="+hostOf(b.srv)))
	const n = 50
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if i%2 == 0 {
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
			c.(*net.TCPConn).SetLinger(0)
		} else {
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
			io.ReadAll(c)
		}
		c.Close()
	}
	ejected := statusOf(h, hostOf(b.srv)).Ejected
	code, _ := fetch(t, http.DefaultClient, "http://"+addr+"/")
	if ejected || code != 200 {
		t.Errorf("after %d bad bodies: ejected %v, status %d", n, ejected, code)
	}
	fig.add(t, "%d aborted or malformed request bodies: upstream ejected %v, next request %d", n, ejected, code)
}

// HTTP/2 rapid reset from two attackers while a real client works: few
// upstream connections, and the real requests are served.
func attackRapidReset(t *testing.T, fig *figures) {
	up, cl := countingUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	addr, h := attackTarget(t, route("/="+up))
	const attackers, dur = 2, 3 * time.Second
	var resets atomic.Int64
	stop := make(chan struct{})
	res := legit("http://"+addr+"/", stop)
	var wg sync.WaitGroup
	began := time.Now()
	for range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(began) < dur {
				hc := dialH2C(t, addr)
				for i := 0; i < 5000 && time.Since(began) < dur; i++ {
					hc.get("/", true)
					resets.Add(1)
				}
				hc.c.Close()
			}
		}()
	}
	wg.Wait()
	took := time.Since(began).Seconds()
	close(stop)
	r := <-res
	waitIdle(t, h)
	conns := cl.n.Load()
	if r[1] > 0 {
		t.Errorf("real requests under rapid reset: %d ok, %d failed", r[0], r[1])
	}
	if conns*50 > resets.Load() {
		t.Errorf("%d reset streams opened %d upstream connections, more than one in 50", resets.Load(), conns)
	}
	fig.add(t, "%d attackers, %.0f resets/s: %.1f upstream connects/s (%d in all); real requests %d ok, %d failed, slowest %v",
		attackers, float64(resets.Load())/took, float64(conns)/took, conns, r[0], r[1], time.Duration(r[2]).Round(time.Millisecond))
}
