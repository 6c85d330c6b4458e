package httproute_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/closedport"
	"github.com/oneport/oneport/internal/conntest"
	"github.com/oneport/oneport/internal/syncbuf"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/mux"
)

// startHandler serves h the way oneport does (see startServing) and
// closes its upstream connections at the end.
func startHandler(t testing.TB, engine string, h *httproute.Handler, log *slog.Logger) string {
	t.Helper()
	t.Cleanup(h.CloseIdleConnections) // after the servers have stopped
	return startServing(t, engine, h, log)
}

// startServing serves h the way oneport does: a mux on 127.0.0.1:0 hands
// HTTP and h2c connections to httproute's server with the given engine.
// It returns the address.
func startServing(t testing.TB, engine string, h http.Handler, log *slog.Logger) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lt := mux.NewListenerTarget("http", ln.Addr())
	hs := httproute.NewServer(h, log)
	hs.Engine = engine
	m := &mux.Server{HTTP: lt, SSH: closeTarget{}}
	go hs.Serve(lt)
	go m.Serve(ln)
	t.Cleanup(func() { m.Close(); hs.Close() })
	return ln.Addr().String()
}

func newHandler(t testing.TB, log *slog.Logger, routes ...httproute.Route) *httproute.Handler {
	t.Helper()
	h, err := httproute.NewHandler(routes, httproute.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// counting backends answer with their name and count requests.
type counting struct {
	name string
	n    atomic.Int64
	srv  *httptest.Server
}

func newCounting(t *testing.T, name string) *counting {
	c := &counting{name: name}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		io.WriteString(w, name)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func fetch(t testing.TB, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWeightedRoundRobin(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		a, b := newCounting(t, "a"), newCounting(t, "b")
		addr := startProxy(t, engine, nil, httproute.Route{Path: "/", Policy: httproute.PolicyRoundRobin,
			Upstreams:       []string{hostOf(a.srv), hostOf(b.srv)},
			UpstreamOptions: map[string]httproute.UpstreamOptions{hostOf(b.srv): {Weight: 3}}})
		for range 400 {
			fetch(t, http.DefaultClient, "http://"+addr+"/")
		}
		if share := float64(b.n.Load()) / 400; share < 0.70 || share > 0.80 {
			t.Errorf("weight-3 upstream got %.2f of requests, want 0.75 (a=%d b=%d)", share, a.n.Load(), b.n.Load())
		}
	})
}

// Least connections sends new streams away from an upstream busy with a
// long generation.
func TestLeastConnAvoidsBusyUpstream(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		release := make(chan struct{})
		var busyStarted sync.Once
		started := make(chan struct{})
		busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/stream" {
				w.WriteHeader(200)
				w.(http.Flusher).Flush()
				busyStarted.Do(func() { close(started) })
				<-release
				return
			}
			io.WriteString(w, "busy")
		}))
		defer busy.Close()
		defer close(release)
		idle := newCounting(t, "idle")
		addr := startProxy(t, engine, nil, httproute.Route{Path: "/", Upstreams: []string{hostOf(busy), hostOf(idle.srv)}})
		// Open streams until one lands on the busy upstream.
		var streams []*http.Response
		defer func() {
			for _, s := range streams {
				s.Body.Close()
			}
		}()
		for i := 0; i < 10; i++ {
			resp, err := http.Get("http://" + addr + "/stream")
			if err != nil {
				t.Fatal(err)
			}
			streams = append(streams, resp)
			select {
			case <-started:
				i = 10
			default:
			}
		}
		<-started
		before := idle.n.Load()
		for range 10 {
			if _, body := fetch(t, http.DefaultClient, "http://"+addr+"/x"); body != "idle" {
				t.Fatalf("new request went to %q while the other upstream streams", body)
			}
		}
		if idle.n.Load()-before != 10 {
			t.Fatal("requests did not all reach the idle upstream")
		}
	})
}

// A dead upstream under load fails no idempotent request, is taken out
// after its failures, and comes back after the cool-down.
func TestPassiveEjectionAndRecovery(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		// A cool-down that cannot end during the test: the status must
		// say ejected however slowly the requests ran.
		h, dead := ejectDeadUpstream(t, engine, time.Hour)
		if st := statusOf(h, dead); !st.Ejected {
			t.Errorf("status %+v, want ejected", st)
		}
		// The cool-down is a timer with no event of its own.
		h, dead = ejectDeadUpstream(t, engine, 300*time.Millisecond)
		conntest.Eventually(t, "the dead upstream is back after its cool-down", func() bool { return !statusOf(h, dead).Ejected })
	})
}

// ejectDeadUpstream sends idempotent requests to a round-robin route over
// a dead and a live upstream, none of which may fail, and returns once the
// dead one has been taken out for cooldown.
func ejectDeadUpstream(t *testing.T, engine string, cooldown time.Duration) (*httproute.Handler, string) {
	t.Helper()
	live := newCounting(t, "live")
	dead := closedport.Addr(t)
	var logs syncbuf.Buffer
	h := newHandler(t, slog.New(slog.NewTextHandler(&logs, nil)), httproute.Route{Path: "/", Policy: httproute.PolicyRoundRobin,
		Upstreams: []string{dead, hostOf(live.srv)},
		Passive:   httproute.PassiveHealth{MaxFails: 2, Cooldown: cooldown}})
	addr := startHandler(t, engine, h, nil)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				resp, err := http.Get("http://" + addr + "/v1/models")
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d idempotent requests failed with one of two upstreams dead", failed.Load())
	}
	if !strings.Contains(logs.String(), "upstream taken out after failures") {
		t.Fatalf("dead upstream never taken out:\n%s", logs.String())
	}
	return h, dead
}

func statusOf(h *httproute.Handler, addr string) httproute.UpstreamStatus {
	for _, s := range h.Upstreams() {
		if s.Address == addr {
			return s
		}
	}
	return httproute.UpstreamStatus{}
}

// Active checks flip health after the configured number of results, and
// requests avoid an unhealthy upstream; all down is a 503 with a reason.
func TestActiveHealthChecks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		var sick atomic.Bool
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" && sick.Load() {
				http.Error(w, "loading model", 503)
				return
			}
			io.WriteString(w, "ok")
		}))
		defer b.Close()
		h := newHandler(t, nil, httproute.Route{Path: "/", Upstreams: []string{hostOf(b)},
			Health: httproute.HealthCheck{Kind: "http", Interval: 20 * time.Millisecond, Healthy: 2, Unhealthy: 2}})
		addr := startHandler(t, engine, h, nil)
		waitHealth := func(want bool) {
			t.Helper()
			conntest.Eventually(t, fmt.Sprintf("health becomes %v", want), func() bool { return statusOf(h, hostOf(b)).Healthy == want })
		}
		sick.Store(true)
		waitHealth(false)
		code, body := fetch(t, http.DefaultClient, "http://"+addr+"/x")
		if code != 503 || !strings.Contains(body, "no healthy upstream") {
			t.Errorf("all down: %d %q, want 503 with a reason", code, body)
		}
		sick.Store(false)
		waitHealth(true)
		if code, _ := fetch(t, http.DefaultClient, "http://"+addr+"/x"); code != 200 {
			t.Errorf("after recovery: %d", code)
		}
	})
}

// TCP checks and draining.
func TestTCPCheckAndDrain(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		a, b := newCounting(t, "a"), newCounting(t, "b")
		h := newHandler(t, nil, httproute.Route{Path: "/", Upstreams: []string{hostOf(a.srv), hostOf(b.srv)},
			Health: httproute.HealthCheck{Kind: "tcp", Interval: 20 * time.Millisecond}})
		addr := startHandler(t, engine, h, nil)
		if err := h.SetDrained(hostOf(a.srv), true); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if _, body := fetch(t, http.DefaultClient, "http://"+addr+"/"); body != "b" {
				t.Fatalf("drained upstream got a request")
			}
		}
		h.SetDrained(hostOf(a.srv), false)
		seenA := false
		for range 20 {
			if _, body := fetch(t, http.DefaultClient, "http://"+addr+"/"); body == "a" {
				seenA = true
			}
		}
		if !seenA {
			t.Error("enabled upstream got no request")
		}
		if err := h.SetDrained("127.0.0.1:1", true); err == nil {
			t.Error("draining an unknown upstream succeeded")
		}
		b.srv.Close()
		conntest.Eventually(t, "the tcp check marks a closed upstream unhealthy", func() bool { return !statusOf(h, hostOf(b.srv)).Healthy })
	})
}

// Switching a route's tag moves new requests to the other pool at once,
// while a stream in flight finishes on the old one.
func TestTagSwitchUnderLoad(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		streamGate := make(chan struct{})
		blue := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/stream" {
				w.Header().Set("Content-Type", "text/event-stream")
				for i := range 3 {
					fmt.Fprintf(w, "data: blue %d\n\n", i)
					w.(http.Flusher).Flush()
					if i == 0 {
						<-streamGate
					}
				}
				return
			}
			io.WriteString(w, "blue")
		}))
		defer blue.Close()
		green := newCounting(t, "green")
		route := httproute.Route{Path: "/", Tag: "blue", Upstreams: []string{hostOf(blue), hostOf(green.srv)},
			UpstreamOptions: map[string]httproute.UpstreamOptions{hostOf(blue): {Tags: []string{"blue"}}, hostOf(green.srv): {Tags: []string{"green"}}}}
		h := newHandler(t, nil, route)
		addr := startHandler(t, engine, h, nil)
		resp, err := http.Get("http://" + addr + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		if l, _ := r.ReadString('\n'); l != "data: blue 0\n" {
			t.Fatalf("stream started with %q", l)
		}
		route.Tag = "green"
		tab, err := httproute.NewTable([]httproute.Route{route})
		if err != nil {
			t.Fatal(err)
		}
		h.SetTable(tab)
		for range 5 {
			if _, body := fetch(t, http.DefaultClient, "http://"+addr+"/x"); body != "green" {
				t.Fatalf("after the switch a new request reached %q", body)
			}
		}
		close(streamGate)
		rest, _ := io.ReadAll(r)
		if !strings.Contains(string(rest), "data: blue 2") {
			t.Fatalf("in-flight stream did not finish on the old pool: %q", rest)
		}
	})
}

// ip_hash keeps a client on one upstream.
func TestIPHashSticks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		a, b, c := newCounting(t, "a"), newCounting(t, "b"), newCounting(t, "c")
		addr := startProxy(t, engine, nil, httproute.Route{Path: "/", Policy: httproute.PolicyIPHash,
			Upstreams: []string{hostOf(a.srv), hostOf(b.srv), hostOf(c.srv)}})
		_, first := fetch(t, http.DefaultClient, "http://"+addr+"/")
		for range 20 {
			if _, body := fetch(t, http.DefaultClient, "http://"+addr+"/"); body != first {
				t.Fatalf("client moved from %s to %s", first, body)
			}
		}
	})
}

// A POST whose first upstream refuses the connection is retried on another
// with its whole body (nothing was sent to the first).
func TestRetryRefusedKeepsBody(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		dead := closedport.Addr(t)
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "got %q", b)
		}))
		defer echo.Close()
		addr := startProxy(t, engine, nil, httproute.Route{Path: "/", Policy: httproute.PolicyFirst, Upstreams: []string{dead, hostOf(echo)}})
		for _, body := range []string{`{"model":"m"}`, strings.Repeat("x", 100<<10)} { // fast path and http.Transport
			resp, err := http.Post("http://"+addr+"/v1/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != fmt.Sprintf("got %q", body) {
				t.Errorf("%d-byte POST after a refused upstream: %d %.80q", len(body), resp.StatusCode, b)
			}
		}
	})
}

// engines are the values of Server.Engine that tests serving through a
// Server run against, so a regression in either engine fails.
var engines = []string{httproute.EngineOneport, httproute.EngineNetHTTP}

// forEachEngine runs test once per engine, as a subtest named after it.
func forEachEngine(t *testing.T, test func(t *testing.T, engine string)) {
	for _, e := range engines {
		t.Run(strings.ReplaceAll(e, "/", "_"), func(t *testing.T) { test(t, e) })
	}
}
