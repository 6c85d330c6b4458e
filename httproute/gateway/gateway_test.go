package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeServer is a model server that records what it received.
type fakeServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
	models []string
}

func newFake(t *testing.T, models ...string) *fakeServer {
	t.Helper()
	f := &fakeServer{models: models}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			var data []map[string]any
			for _, m := range f.models {
				data = append(data, map[string]any{"id": m, "object": "model", "created": 1, "owned_by": "vllm"})
			}
			json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data})
			return
		}
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.bodies = append(f.bodies, string(b))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"served_by":%q,"len":%d,"cl":%d,"usage":{"prompt_tokens":3,"completion_tokens":5}}`,
			f.models[0], len(b), r.ContentLength)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bodies...)
}

func newGateway(t *testing.T, cfg Config) (*Gateway, *httptest.Server) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.Refresh(context.Background())
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv
}

func post(t *testing.T, url, ct, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, ct, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRoutesByModelByteForByte(t *testing.T) {
	a, b := newFake(t, "llama-3"), newFake(t, "bge-small")
	_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: a.Listener.Addr().String()}, {Address: b.URL}}})
	for _, tc := range []struct{ path, body, want string }{
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"say \"model\": x"}],  "model" : "llama-3","n":1}`, "llama-3"},
		{"/v1/embeddings", `{"input":["a",{"model":"llama-3"}],"model":"bge-small"}`, "bge-small"},
		{"/v1/embeddings", `{"mod\u0065l":"bge-small","input":"x"}`, "bge-small"},
	} {
		resp, got := post(t, srv.URL+tc.path, "application/json", tc.body)
		if resp.StatusCode != 200 || !strings.Contains(got, `"served_by":"`+tc.want+`"`) {
			t.Fatalf("%s %s: %d %s, want served by %s", tc.path, tc.body, resp.StatusCode, got, tc.want)
		}
	}
	if got := a.received(); len(got) != 1 || got[0] != `{"messages":[{"role":"user","content":"say \"model\": x"}],  "model" : "llama-3","n":1}` {
		t.Errorf("upstream a received %q, want the body unchanged", got)
	}
}

func TestAliasRenamesModelOnly(t *testing.T) {
	a := newFake(t, "llama-3")
	_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: a.URL}},
		Models: []Model{{Name: "llama-3", Aliases: []string{"gpt-4o-mini"}}}})
	resp, got := post(t, srv.URL+"/v1/chat/completions", "application/json", `{"model":"gpt-4o-mini", "messages":[]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	want := `{"model":"llama-3", "messages":[]}`
	if r := a.received(); len(r) != 1 || r[0] != want {
		t.Fatalf("upstream received %q, want %q", r, want)
	}
	if !strings.Contains(got, fmt.Sprintf(`"cl":%d`, len(want))) {
		t.Errorf("upstream saw %s, want Content-Length %d", got, len(want))
	}
}

func TestUnknownModel(t *testing.T) {
	a := newFake(t, "llama-3")
	_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: a.URL}}})
	resp, got := post(t, srv.URL+"/v1/chat/completions", "application/json", `{"model":"gpt-5"}`)
	var e apiError
	json.Unmarshal([]byte(got), &e)
	if resp.StatusCode != 404 || e.Error.Code != "model_not_found" || !strings.Contains(e.Error.Message, "llama-3") {
		t.Fatalf("got %d %s, want 404 model_not_found listing llama-3", resp.StatusCode, got)
	}
	if len(a.received()) != 0 {
		t.Error("the upstream got the request")
	}
}

func TestBadInputIsRefusedBeforeTheUpstream(t *testing.T) {
	a := newFake(t, "llama-3")
	_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: a.URL}}, MaxBody: 1000})
	big := `{"messages":"` + strings.Repeat("x", 2000) + `","model":"llama-3"}`
	for _, tc := range []struct {
		name, ct, body string
		chunked        bool
		status         int
		code           string
	}{
		{"malformed", "application/json", `{"messages":[}`, false, 400, "invalid_body"},
		{"not an object", "application/json", `["model"]`, false, 400, "invalid_body"},
		{"truncated", "application/json", `{"messages":[1,2`, false, 400, "invalid_body"},
		{"missing model", "application/json", `{"messages":[]}`, false, 400, "missing_model"},
		{"empty model", "application/json", `{"model":""}`, false, 400, "missing_model"},
		{"model not a string", "application/json", `{"model":7}`, false, 400, "invalid_model"},
		{"over the limit", "application/json", big, false, 413, "request_too_large"},
		{"over the limit, chunked", "application/json", big, true, 413, "request_too_large"},
		{"not JSON", "text/plain", `{"model":"llama-3"}`, false, 415, "unsupported_content_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", body)
			req.Header.Set("Content-Type", tc.ct)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e apiError
			json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tc.status || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Errorf("got %d %+v, want %d %s", resp.StatusCode, e, tc.status, tc.code)
			}
		})
	}
	if r := a.received(); len(r) != 0 {
		t.Errorf("the upstream got %q", r)
	}
}

func TestModelsListMergedAndFiltered(t *testing.T) {
	a, b, c := newFake(t, "llama-3", "shared"), newFake(t, "bge-small", "shared"), newFake(t, "x")
	c.Close() // down: logged, not fatal
	_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: a.URL}, {Address: b.URL}, {Address: c.URL}},
		Models: []Model{{Name: "llama-3", Aliases: []string{"gpt-4o-mini"}}},
		ModelAllowed: func(r *http.Request, m string) bool {
			return r.Header.Get("Authorization") == "" || m != "bge-small"
		}})
	list := func(auth string) []string {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/models", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l modelList
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || l.Object != "list" {
			t.Fatalf("list: %v %+v", err, l)
		}
		var ids []string
		for _, d := range l.Data {
			if d.Object != "model" || d.OwnedBy == "" || d.Created == 0 {
				t.Errorf("entry %+v lacks OpenAI's fields", d)
			}
			ids = append(ids, d.ID)
		}
		return ids
	}
	if got := strings.Join(list(""), ","); got != "bge-small,gpt-4o-mini,llama-3,shared" {
		t.Errorf("models: %s", got)
	}
	if got := strings.Join(list("Bearer k"), ","); got != "gpt-4o-mini,llama-3,shared" {
		t.Errorf("models for a key without bge-small: %s", got)
	}
}

func TestDiscoversTEIAndOllama(t *testing.T) {
	tei := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/info" {
			io.WriteString(w, `{"model_id":"BAAI/bge-large-en-v1.5","max_input_length":512}`)
			return
		}
		http.NotFound(w, r)
	}))
	defer tei.Close()
	ollama := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/tags" {
			io.WriteString(w, `{"models":[{"name":"qwen2.5:0.5b","model":"qwen2.5:0.5b"}]}`)
			return
		}
		http.NotFound(w, r)
	}))
	defer ollama.Close()
	g, _ := newGateway(t, Config{Upstreams: []Upstream{{Address: tei.URL}, {Address: ollama.URL}}})
	if got := strings.Join(g.Models(), ","); got != "BAAI/bge-large-en-v1.5,qwen2.5:0.5b" {
		t.Errorf("models: %s", got)
	}
}

func TestSetDiscoveredAddsUpstreams(t *testing.T) {
	a, b := newFake(t, "llama-3"), newFake(t, "bge-small")
	g, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: a.URL}}})
	if err := g.SetDiscovered([]Upstream{{Address: b.URL}}); err != nil {
		t.Fatal(err)
	}
	g.Refresh(context.Background())
	if resp, got := post(t, srv.URL+"/v1/embeddings", "application/json", `{"model":"bge-small"}`); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	g.SetDiscovered(nil)
	if resp, _ := post(t, srv.URL+"/v1/embeddings", "application/json", `{"model":"bge-small"}`); resp.StatusCode != 404 {
		t.Fatalf("after the discovered upstream left: %d, want 404", resp.StatusCode)
	}
}

func TestMultipartModelField(t *testing.T) {
	var got string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			io.WriteString(w, `{"object":"list","data":[{"id":"whisper"}]}`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	defer up.Close()
	_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: up.URL}, {Address: newFake(t, "other").URL}}})
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "a.wav")
	fw.Write(bytes.Repeat([]byte{1, 2, 3}, 5000))
	mw.WriteField("model", "whisper")
	mw.Close()
	resp, msg := post(t, srv.URL+"/v1/audio/transcriptions", mw.FormDataContentType(), body.String())
	if resp.StatusCode != 200 || got != body.String() {
		t.Fatalf("%d %s; upstream got %d bytes, want the %d sent", resp.StatusCode, msg, len(got), body.Len())
	}
}

// gate is an upstream whose requests wait until released.
type gate struct {
	*httptest.Server
	arrived chan string
	release chan struct{}
}

func newGate(t *testing.T, model string) *gate {
	g := &gate{arrived: make(chan string, 100), release: make(chan struct{})}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			fmt.Fprintf(w, `{"object":"list","data":[{"id":%q}]}`, model)
			return
		}
		b, _ := io.ReadAll(r.Body)
		g.arrived <- string(b)
		select {
		case <-g.release:
		case <-r.Context().Done():
		}
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(g.Close)
	t.Cleanup(func() { close(g.release) })
	return g
}

func TestQueueFullAndTimeout(t *testing.T) {
	up := newGate(t, "m")
	reg := prometheus.NewRegistry()
	met, _ := NewMetrics(reg)
	joined := make(chan int, 10)
	met.onQueued = func(d int) { joined <- d }
	_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: up.URL, MaxConcurrent: 1}}, MaxQueue: 1,
		QueueTimeout: time.Hour, Metrics: met})
	first := make(chan int, 1)
	go func() {
		r, _ := post(t, srv.URL+"/v1/completions", "application/json", `{"model":"m","n":1}`)
		first <- r.StatusCode
	}()
	<-up.arrived
	second := make(chan int, 1)
	go func() {
		r, _ := post(t, srv.URL+"/v1/completions", "application/json", `{"model":"m","n":2}`)
		second <- r.StatusCode
	}()
	<-joined
	if d := gaugeValue(reg, "oneport_gateway_queue_depth"); d != 1 {
		t.Fatalf("queue depth %v, want 1", d)
	}
	resp, body := post(t, srv.URL+"/v1/completions", "application/json", `{"model":"m","n":3}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "queue_full") {
		t.Fatalf("third: %d %q %s, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	up.release <- struct{}{}
	if s := <-first; s != 200 {
		t.Fatalf("first: %d", s)
	}
	if b := <-up.arrived; b != `{"model":"m","n":2}` {
		t.Fatalf("then the upstream got %s, want the queued second", b)
	}
	up.release <- struct{}{}
	if s := <-second; s != 200 {
		t.Fatalf("second: %d", s)
	}
}

func TestQueueTimeout(t *testing.T) {
	up := newGate(t, "m")
	_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: up.URL, MaxConcurrent: 1}}, QueueTimeout: 50 * time.Millisecond})
	postAsync(t, srv.URL+"/v1/completions", `{"model":"m"}`)
	<-up.arrived
	resp, body := post(t, srv.URL+"/v1/completions", "application/json", `{"model":"m"}`)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "queue_timeout") {
		t.Fatalf("got %d %q %s, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	up.release <- struct{}{}
}

func TestReplicasFewestOutstanding(t *testing.T) {
	a, b := newGate(t, "m"), newGate(t, "m")
	_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: a.URL}, {Address: b.URL}}})
	postAsync(t, srv.URL+"/v1/completions", `{"model":"m"}`)
	var busy, free *gate
	select {
	case <-a.arrived:
		busy, free = a, b
	case <-b.arrived:
		busy, free = b, a
	}
	postAsync(t, srv.URL+"/v1/completions", `{"model":"m"}`)
	select {
	case <-free.arrived:
	case <-busy.arrived:
		t.Fatal("the second request went to the busy replica")
	}
	busy.release <- struct{}{}
	free.release <- struct{}{}
}

func gaugeValue(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += m.Histogram.GetSampleSum()
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			}
		}
	}
	return sum
}

// postAsync posts a JSON body from a goroutine; the status arrives on the
// channel (0 if the request failed).
func postAsync(t *testing.T, url, body string) <-chan int {
	ch := make(chan int, 1)
	go func() {
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			ch <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ch <- resp.StatusCode
	}()
	return ch
}

// A key limited to some models cannot reach another one by naming an
// allowed model in X-Model while the body names the other, nor through a
// path whose body the gateway does not read (Ollama's /api/chat).
func TestModelScopeNotBypassedByXModelOrUnparsedPaths(t *testing.T) {
	up := newFake(t, "llama-3", "secret-model")
	_, srv := newGateway(t, Config{Upstreams: []Upstream{{Address: up.URL}},
		ModelAllowed: func(r *http.Request, m string) bool {
			return r.Header.Get("Authorization") == "" || m == "llama-3"
		}})
	post := func(path, xModel, body string) int {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer limited")
		if xModel != "" {
			req.Header.Set("X-Model", xModel)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/v1/chat/completions", "", `{"model":"llama-3"}`); code != 200 {
		t.Fatalf("allowed model: %d", code)
	}
	for _, c := range []struct{ path, xModel, body string }{
		{"/v1/chat/completions", "llama-3", `{"model":"secret-model"}`},
		{"/api/chat", "", `{"model":"secret-model"}`},
		{"/api/chat", "llama-3", `{"model":"secret-model"}`},
	} {
		if code := post(c.path, c.xModel, c.body); code != http.StatusForbidden {
			t.Errorf("POST %s X-Model %q %s: %d, want 403", c.path, c.xModel, c.body, code)
		}
	}
	for _, b := range up.received() {
		if strings.Contains(b, "secret-model") {
			t.Errorf("the upstream received %s", b)
		}
	}
}

// The pooled buffer a body's head was read into goes back once the head
// has been passed on, through ReverseProxy (which does not pass Close on
// to the body) and either transport, whether the head is the whole body
// or only its start; and when the request is refused before the proxy.
func TestBodyHeadBufferGoesBack(t *testing.T) {
	a := newFake(t, "llama-3")
	short := `{"model":"llama-3","input":"x"}`
	long := `{"model":"llama-3","input":"` + strings.Repeat("x", 32<<10) + `"}`    // the h1 engine's size, longer than a read
	longer := `{"model":"llama-3","input":"` + strings.Repeat("x", 100<<10) + `"}` // past it: net/http's transport
	onlyOther := func(_ *http.Request, m string) bool { return m == "other" }
	for _, tc := range []struct {
		name string
		cfg  Config
		body string
		code int
	}{
		{"h1 engine, whole body", Config{}, short, 200},
		{"h1 engine, head of a long body", Config{}, long, 200},
		{"net/http transport, whole body", Config{Transport: &http.Transport{}}, short, 200},
		{"net/http transport, head of a long body", Config{}, longer, 200},
		{"unknown model", Config{}, `{"model":"nope","input":"x"}`, 404},
		{"model not allowed", Config{ModelAllowed: onlyOther}, short, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Upstreams = []Upstream{{Address: a.URL}}
			g, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			g.Refresh(context.Background())
			r := httptest.NewRequest(http.MethodPost, "/v1/embeddings", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			g.ServeHTTP(w, r)
			if w.Code != tc.code {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.code)
			}
			if got := a.received(); tc.code == 200 && got[len(got)-1] != tc.body {
				t.Fatalf("the upstream received %d bytes, not the %d-byte body", len(got[len(got)-1]), len(tc.body))
			}
			pb, ok := r.Body.(*prefixBody)
			if !ok {
				t.Fatalf("the request's body is a %T, not the replayed head", r.Body)
			}
			if pb.pooled != nil {
				t.Errorf("the head's pooled buffer (%d bytes) was not given back", cap(pb.pooled))
			}
		})
	}
}

// mediaType's shortcuts answer what mime.ParseMediaType answers.
func TestMediaTypeAsParseMediaType(t *testing.T) {
	for _, v := range []string{
		"application/json", "text/event-stream", "application/json; charset=utf-8", "text/event-stream; charset=utf-8",
		"Application/JSON", "application/json;charset=UTF-8", "application/vnd.api+json", "text/plain",
		"application/json; charset", "", "multipart/form-data; boundary=x", "application/json ;",
	} {
		want, _, _ := mime.ParseMediaType(v)
		if got := mediaType(v); got != want {
			t.Errorf("mediaType(%q) = %q, want %q", v, got, want)
		}
	}
}
