package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oneport/oneport/httproute"
)

// chatBody is a chat request of about size bytes whose model comes last,
// after the messages: the scan's worst case (the OpenAI Python SDK
// sends the messages first too).
func chatBody(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"messages":[`)
	for i := 0; b.Len() < size-100; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"role":"user","content":"%s \"quoted\" text"}`, strings.Repeat("x", 200))
	}
	b.WriteString(`],"max_tokens":16,"model":"llama-3"}`)
	return b.Bytes()
}

func BenchmarkReadModel(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		body := chatBody(size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_, buf, _, _, err := readModel(bytes.NewReader(body), int64(len(body)), DefaultMaxBody)
				if err != nil {
					b.Fatal(err)
				}
				putBuf(buf)
			}
		})
	}
}

// benchRoutes serves a plain path route and a gateway route to the same
// upstream, through httproute's Handler and the loopback.
func benchRoutes(b *testing.B, up *httptest.Server) (plain, gw string) {
	g, err := New(Config{Upstreams: []Upstream{{Address: up.URL}}, Models: []Model{{Name: "llama-3", Upstream: up.URL}}})
	if err != nil {
		b.Fatal(err)
	}
	addr := up.Listener.Addr().String()
	h, err := httproute.NewHandler([]httproute.Route{
		{Path: "/plain", Upstreams: []string{addr}},
		{Path: "/gw", Upstreams: []string{addr}, Serve: g},
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL + "/plain", srv.URL + "/gw"
}

// BenchmarkModelRouting compares a request's latency through a gateway
// route with a plain path route, and reports the medians and what the
// gateway adds: time, and heap allocations per request (gateway-allocs/req;
// allocs/op counts both requests, client and upstream included).
func BenchmarkModelRouting(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	plain, gw := benchRoutes(b, up)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for _, size := range []int{4 << 10, 1 << 20} {
		body := chatBody(size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			do := func(url string) time.Duration {
				t0 := time.Now()
				resp, err := client.Post(url+"/v1/chat/completions", "application/json", bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
				return time.Since(t0)
			}
			var p, g []time.Duration
			for b.Loop() {
				p = append(p, do(plain))
				g = append(g, do(gw))
			}
			mp, mg := median(p), median(g)
			b.ReportMetric(float64(mp.Microseconds()), "plain-p50-us")
			b.ReportMetric(float64(mg.Microseconds()), "gateway-p50-us")
			b.ReportMetric(float64((mg - mp).Microseconds()), "added-p50-us")
			b.ReportMetric(float64(mg)/float64(mp), "ratio")
			runs := 200
			if size > 64<<10 {
				runs = 50
			}
			b.ReportMetric(testing.AllocsPerRun(runs, func() { do(gw) })-testing.AllocsPerRun(runs, func() { do(plain) }),
				"gateway-allocs/req")
		})
	}
}

// BenchmarkSSEChunkDelay measures how long a streamed chunk takes from
// the upstream's flush to the client, plain route against gateway route
// (usage scanning on the way).
func BenchmarkSSEChunkDelay(b *testing.B) {
	next := make(chan chan time.Time)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		for reply := range next {
			if reply == nil {
				return
			}
			io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"token\"}}]}\n\n")
			w.(http.Flusher).Flush()
			reply <- time.Now()
		}
	}))
	defer up.Close()
	plain, gw := benchRoutes(b, up)
	b.ReportAllocs()
	stream := func(url string) (*bufio.Reader, func()) {
		resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"llama-3","stream":true}`))
		if err != nil {
			b.Fatal(err)
		}
		var once sync.Once
		return bufio.NewReader(resp.Body), func() { once.Do(func() { next <- nil; resp.Body.Close() }) }
	}
	measure := func(br *bufio.Reader) time.Duration {
		reply := make(chan time.Time, 1)
		next <- reply
		if _, err := br.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		got := time.Now()
		br.ReadString('\n')
		return got.Sub(<-reply)
	}
	pr, pclose := stream(plain)
	defer pclose()
	var p, g []time.Duration
	for b.Loop() {
		p = append(p, measure(pr))
	}
	pclose()
	gr, gclose := stream(gw)
	defer gclose()
	for range len(p) {
		g = append(g, measure(gr))
	}
	b.ReportMetric(float64(median(p).Microseconds()), "plain-p50-us")
	b.ReportMetric(float64(median(g).Microseconds()), "gateway-p50-us")
}

// BenchmarkQueuedWaiters measures the memory of requests waiting in an
// upstream's queue: heap and goroutine stacks per waiter.
func BenchmarkQueuedWaiters(b *testing.B) {
	const n = 10000
	b.ReportAllocs()
	for b.Loop() {
		var l limiter
		l.limit = 1
		l.acquire(context.Background(), 0, time.Hour, nil)
		ctx, cancel := context.WithCancel(context.Background())
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() { l.acquire(ctx, n, time.Hour, nil) })
		}
		for l.queued() < n {
			runtime.Gosched()
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := float64(after.HeapAlloc-before.HeapAlloc) / n
		stack := float64(after.StackInuse-before.StackInuse) / n
		b.ReportMetric(heap, "heap-B/waiter")
		b.ReportMetric(heap+stack, "heap+stack-B/waiter")
		b.ReportMetric((heap+stack)*n/(1<<20), "MiB/10k")
		cancel()
		wg.Wait()
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
