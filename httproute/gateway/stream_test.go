package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/syncbuf"
)

// sseUpstream streams chat chunks; each chunk after the first waits for
// a value on next. It closes gone when its client disconnects.
type sseUpstream struct {
	*httptest.Server
	next chan struct{}
	gone chan struct{}
}

func newSSE(t *testing.T, model string, chunks int) *sseUpstream {
	u := &sseUpstream{next: make(chan struct{}), gone: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			fmt.Fprintf(w, `{"object":"list","data":[{"id":%q}]}`, model)
			return
		}
		io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range chunks {
			if i > 0 {
				select {
				case <-u.next:
				case <-r.Context().Done():
					close(u.gone)
					return
				}
			}
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}}\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(u.Close)
	return u
}

func TestSSEKeepaliveBetweenEvents(t *testing.T) {
	up := newSSE(t, "m", 2)
	_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: up.URL}}, SSEKeepalive: 20 * time.Millisecond})
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line := func() string { l, _ := br.ReadString('\n'); return l }
	if l := line(); !strings.HasPrefix(l, "data: ") {
		t.Fatalf("first line %q", l)
	}
	line() // the blank line ending the event
	if l := line(); l != ": keepalive\n" {
		t.Fatalf("while the upstream is silent got %q, want a keepalive comment", l)
	}
	close(up.next)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "t1") || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Fatalf("rest of stream %q", rest)
	}
}

func TestNoKeepaliveUnlessAsked(t *testing.T) {
	up := newSSE(t, "m", 2)
	_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: up.URL}}})
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	br.ReadString('\n')
	br.ReadString('\n')
	time.AfterFunc(50*time.Millisecond, func() { close(up.next) })
	if l, err := br.ReadString('\n'); !strings.HasPrefix(l, "data: ") {
		t.Fatalf("got %q (%v), want the next event", l, err)
	}
}

func TestClientCancelReachesUpstream(t *testing.T) {
	up := newSSE(t, "m", 3)
	for _, ka := range []time.Duration{0, time.Hour} {
		_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: up.URL}}, SSEKeepalive: ka})
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		bufio.NewReader(resp.Body).ReadString('\n')
		cancel()
		select {
		case <-up.gone:
		case <-time.After(5 * time.Second):
			t.Fatalf("keepalive %v: the upstream did not see the client leave", ka)
		}
		resp.Body.Close()
		up.gone = make(chan struct{})
	}
}

func TestUsageMetricsAndAccessLog(t *testing.T) {
	up := newSSE(t, "llama-3", 1)
	reg := prometheus.NewRegistry()
	met, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{Upstreams: []Upstream{{Address: up.URL}}, Metrics: met,
		Models:  []Model{{Name: "llama-3", Aliases: []string{"gpt-4o-mini"}}},
		KeyName: func(*http.Request) string { return "alice" }})
	if err != nil {
		t.Fatal(err)
	}
	g.Refresh(context.Background())
	var log syncbuf.Buffer
	h, err := httproute.NewHandler([]httproute.Route{{Path: "/", Upstreams: []string{up.Listener.Addr().String()}, Serve: g}},
		httproute.WithLogger(slog.New(slog.NewJSONHandler(&log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, body := post(t, srv.URL+"/v1/chat/completions", "application/json",
		`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}`)
	if resp.StatusCode != 200 || !strings.HasSuffix(body, "[DONE]\n\n") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if in := gaugeValue(reg, "gen_ai_client_token_usage"); in != 18 {
		t.Errorf("token usage sum %v, want 11+7", in)
	}
	if n := gaugeValue(reg, "gen_ai_server_time_to_first_token_seconds"); n <= 0 {
		t.Errorf("no time to first token recorded")
	}
	// 7 output tokens over the time g after the first: 6 more, at g/6
	// seconds each and 6/g per second (g is well under 6 s here).
	tpot, tps := gaugeValue(reg, "gen_ai_server_time_per_output_token_seconds"), gaugeValue(reg, "oneport_gateway_output_tokens_per_second")
	if tpot <= 0 || tps <= tpot || math.Abs(tpot*tps-1) > 1e-9 {
		t.Errorf("time per output token %v s and %v tokens/s: want g/6 and 6/g", tpot, tps)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "gen_ai_client_token_usage" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["gen_ai_request_model"] != "gpt-4o-mini" || labels["key"] != "alice" {
				t.Errorf("labels %v", labels)
			}
		}
	}
	var line map[string]any
	json.Unmarshal([]byte(log.String()), &line)
	if line["model"] != "gpt-4o-mini" || line["tokens_in"] != 11.0 || line["tokens_out"] != 7.0 || line["ttft"] == nil ||
		line["upstream"] != up.URL {
		t.Errorf("access line %s lacks model, tokens, ttft or upstream", log.String())
	}
}

func TestUsageFromJSONBody(t *testing.T) {
	for _, body := range []string{
		`{"data":[{"embedding":[0.1,0.2]}],"usage":{"prompt_tokens":8,"total_tokens":8}}`,
		`{"id":"x","usage" : {"input_tokens":8,"output_tokens":0}}`,
	} {
		for split := 1; split < len(body); split++ {
			s := usageScanner{}
			s.scan([]byte(body[:split]))
			s.scan([]byte(body[split:]))
			if u := s.finish(); u.in() != 8 {
				t.Fatalf("split at %d of %s: usage %+v", split, body, u)
			}
		}
	}
}

// The same through httproute's Server, with each HTTP/1 engine.
func TestClientCancelReachesUpstreamEngines(t *testing.T) {
	for _, tc := range []struct {
		engine  string
		chunked bool
	}{{httproute.EngineOneport, false}, {httproute.EngineOneport, true}, {httproute.EngineNetHTTP, false}, {httproute.EngineNetHTTP, true}} {
		engine := tc.engine
		t.Run(fmt.Sprintf("%s/chunked=%v", engine, tc.chunked), func(t *testing.T) {
			up := newSSE(t, "m", 3)
			g, err := New(Config{Upstreams: []Upstream{{Address: up.URL}}})
			if err != nil {
				t.Fatal(err)
			}
			g.Refresh(context.Background())
			addr := serveEngine(t, gatewayHandler(t, g, up.Server), engine)
			ctx, cancel := context.WithCancel(context.Background())
			var body io.Reader = strings.NewReader(`{"model":"m","stream":true}`)
			if tc.chunked {
				body = io.MultiReader(body)
			}
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/v1/chat/completions", body)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			bufio.NewReader(resp.Body).ReadString('\n')
			cancel()
			select {
			case <-up.gone:
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream did not see the client leave")
			}
			resp.Body.Close()
		})
	}
}

// gatewayHandler returns a Handler whose only route is g, in front of up.
func gatewayHandler(t *testing.T, g *Gateway, up *httptest.Server) *httproute.Handler {
	t.Helper()
	h, err := httproute.NewHandler([]httproute.Route{{Path: "/", Upstreams: []string{up.Listener.Addr().String()}, Serve: g}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.CloseIdleConnections)
	return h
}

// serveEngine serves h on 127.0.0.1:0 with the HTTP/1 engine named, and
// returns the address.
func serveEngine(t *testing.T, h http.Handler, engine string) string {
	t.Helper()
	srv := httproute.NewServer(h, nil)
	srv.Engine = engine
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// flushCounter is the server's ResponseWriter of a Handler. It counts the
// bare flushes: those with no body written since the one before, such as
// a timer's that sends a header alone or finds nothing left to send.
type flushCounter struct {
	http.ResponseWriter
	wrote bool
	bare  int
}

func (f *flushCounter) Write(p []byte) (int, error) {
	f.wrote = true
	return f.ResponseWriter.Write(p)
}

func (f *flushCounter) Flush() {
	if !f.wrote {
		f.bare++
	}
	f.wrote = false
	http.NewResponseController(f.ResponseWriter).Flush()
}

func (f *flushCounter) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// The header and first event of a stream whose upstream sent them
// together leave a gateway route in one write, as they leave a plain
// route: the client's first read has both, and nothing is flushed but
// what the upstream sent. The gateway's proxy used to flush as
// ReverseProxy does: a timer goroutine per stream that flushes once on its
// own, the header alone when it wins the race with the first event, and
// the client then wakes twice before its first token.
func TestStreamHeaderLeavesWithFirstEvent(t *testing.T) {
	for _, engine := range []string{httproute.EngineOneport, httproute.EngineNetHTTP} {
		t.Run(engine, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "data: 1\n\n")
				w.(http.Flusher).Flush() // header and event in one write
				<-r.Context().Done()
			}))
			t.Cleanup(up.Close)
			t.Cleanup(up.CloseClientConnections) // first: the streams end
			g, err := New(Config{Models: []Model{{Name: "m", Upstream: up.URL}}})
			if err != nil {
				t.Fatal(err)
			}
			h := gatewayHandler(t, g, up)
			bare := make(chan int, 1)
			addr := serveEngine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fc := &flushCounter{ResponseWriter: w}
				defer func() { bare <- fc.bare }()
				h.ServeHTTP(fc, r)
			}), engine)
			const body = `{"model":"m","stream":true}`
			req := "POST /v1/chat/completions HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\n" +
				fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
			for i := range 20 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(c, req)
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 4096)
				n, err := c.Read(buf)
				c.Close() // ends the stream, and the request
				if err != nil {
					t.Fatal(err)
				}
				if got := string(buf[:n]); !strings.HasPrefix(got, "HTTP/1.1 200 ") ||
					!strings.Contains(got, "\r\n\r\n9\r\ndata: 1\n\n\r\n") {
					t.Fatalf("request %d: first read %q has not the header and the first event", i, got)
				}
				select {
				case n := <-bare:
					if n != 0 {
						t.Fatalf("request %d: %d flushes with nothing written before them", i, n)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("request %d: the handler did not return once the client left", i)
				}
			}
		})
	}
}

// A gateway stream's header reaches the client at once when the first
// event is slow to come, with keepalives or without.
func TestStreamHeaderBeforeFirstEvent(t *testing.T) {
	for _, ka := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprintf("keepalive=%v", ka), func(t *testing.T) {
			got := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(200)
				w.(http.Flusher).Flush()
				select {
				case <-got:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "data: 1\n\ndata: [DONE]\n\n")
			}))
			t.Cleanup(up.Close)
			g, err := New(Config{Models: []Model{{Name: "m", Upstream: up.URL}}, SSEKeepalive: ka})
			if err != nil {
				t.Fatal(err)
			}
			addr := serveEngine(t, gatewayHandler(t, g, up), httproute.EngineOneport)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/v1/chat/completions",
				strings.NewReader(`{"model":"m","stream":true}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req) // returns with the header
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			close(got)
			b, err := io.ReadAll(resp.Body)
			if err != nil || string(b) != "data: 1\n\ndata: [DONE]\n\n" {
				t.Fatalf("body %q, %v", b, err)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// Each model, key and token type has its own series, also once their
// observers are reused from the cache.
func TestMetricsSeriesPerModelAndKey(t *testing.T) {
	a, b := newFake(t, "m1"), newFake(t, "m2")
	reg := prometheus.NewRegistry()
	met, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: a.URL}, {Address: b.URL}}, Metrics: met,
		KeyName: func(r *http.Request) string { return r.Header.Get("Test-Key") }})
	for _, c := range []struct{ key, model string }{{"alice", "m1"}, {"alice", "m1"}, {"bob", "m1"}, {"alice", "m2"}, {"bob", "m1"}, {"alice", "m1"}} {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"`+c.model+`"}`))
		req.Header.Set("Test-Key", c.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%+v: status %d", c, resp.StatusCode)
		}
	}
	got := map[string]float64{}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			name := mf.GetName() + "{" + strings.Join(ls, ",") + "}"
			if h := m.GetHistogram(); h != nil {
				got[name+" count"] = float64(h.GetSampleCount())
				got[name+" sum"] = h.GetSampleSum()
			}
		}
	}
	for name, want := range map[string]float64{
		"gen_ai_server_request_duration_seconds{gen_ai_request_model=m1,key=alice} count":           3,
		"gen_ai_server_request_duration_seconds{gen_ai_request_model=m1,key=bob} count":             2,
		"gen_ai_server_request_duration_seconds{gen_ai_request_model=m2,key=alice} count":           1,
		"gen_ai_client_token_usage{gen_ai_request_model=m1,gen_ai_token_type=input,key=alice} sum":  9,
		"gen_ai_client_token_usage{gen_ai_request_model=m1,gen_ai_token_type=output,key=alice} sum": 15,
		"gen_ai_client_token_usage{gen_ai_request_model=m1,gen_ai_token_type=output,key=bob} sum":   10,
		"gen_ai_client_token_usage{gen_ai_request_model=m2,gen_ai_token_type=input,key=alice} sum":  3,
		"oneport_gateway_queue_wait_seconds{gen_ai_request_model=m1} count":                         5,
		"oneport_gateway_queue_wait_seconds{gen_ai_request_model=m2} count":                         1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if len(got) != 2*(3+6+2) {
		t.Errorf("%d series, want 11 (3 durations, 6 token usages, 2 queue waits): %v", len(got)/2, got)
	}
}
