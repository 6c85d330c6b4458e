package discover

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/closedport"
	"github.com/oneport/oneport/internal/conntest"
)

// listenerOf is a Listener for a test server in this process (PID 0: not
// skipped as the scanner's own).
func listenerOf(t *testing.T, addr string) Listener {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return Listener{Addr: ap}
}

func scanOf(t *testing.T, timeout time.Duration, addrs ...string) *Snapshot {
	t.Helper()
	var ls []Listener
	for _, a := range addrs {
		ls = append(ls, listenerOf(t, a))
	}
	sc := &Scanner{List: func() ([]Listener, error) { return ls, nil }, ProbeTimeout: timeout}
	snap, err := sc.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func jsonAt(routes map[string]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := routes[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	})
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name   string
		h      http.Handler
		kind   Kind
		models []string
	}{
		{"vllm", jsonAt(map[string]string{"/v1/models": `{"object":"list","data":[{"id":"meta-llama/Llama-3-8B"}]}`}), KindOpenAI, []string{"meta-llama/Llama-3-8B"}},
		{"tei", jsonAt(map[string]string{"/info": `{"model_id":"BAAI/bge-m3","model_type":{"embedding":{}}}`}), KindTEI, []string{"BAAI/bge-m3"}},
		{"tgi", jsonAt(map[string]string{"/info": `{"model_id":"mistral","max_total_tokens":4096}`,
			"/v1/models": `{"object":"list","data":[{"id":"tgi"}]}`}), KindTGI, []string{"mistral"}},
		{"ollama", jsonAt(map[string]string{"/api/tags": `{"models":[{"name":"llama3:8b"},{"name":"qwen2:7b"}]}`,
			"/v1/models": `{"object":"list","data":[{"id":"llama3:8b"}]}`}), KindOllama, []string{"llama3:8b", "qwen2:7b"}},
		{"triton", jsonAt(map[string]string{"/v2/health/ready": ``, "/v2": `{"name":"triton","version":"2.40.0","extensions":[]}`}), KindTriton, nil},
		{"comfyui", jsonAt(map[string]string{"/system_stats": `{"system":{"os":"posix"},"devices":[]}`}), KindComfyUI, nil},
		{"tensorboard", jsonAt(map[string]string{"/data/environment": `{"data_location":"/logs","window_title":""}`}), KindTensorBoard, nil},
		{"gradio", jsonAt(map[string]string{"/config": `{"version":"4.0","components":[],"dependencies":[]}`}), KindGradio, nil},
		{"jupyter", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Server", "TornadoServer/6.4")
			switch r.URL.Path {
			case "/":
				http.Redirect(w, r, "/tree?", http.StatusFound)
			case "/api":
				w.Write([]byte(`{"version": "2.14.0"}`))
			default:
				http.NotFound(w, r)
			}
		}), KindJupyter, nil},
		{"catch-all is plain http", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) }), KindHTTP, nil},
		{"garbage json is plain http", jsonAt(map[string]string{"/": "x", "/v1/models": `{"data":`, "/api/tags": `[1,2]`, "/info": `{"model_id":""}`}), KindHTTP, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.h)
			defer srv.Close()
			snap := scanOf(t, time.Second, srv.Listener.Addr().String())
			if len(snap.Servers) != 1 {
				t.Fatalf("servers = %+v", snap.Servers)
			}
			s := snap.Servers[0]
			if s.Kind != c.kind || !slices.Equal(s.Models, c.models) {
				t.Errorf("got %s %q, want %s %q", s.Kind, s.Models, c.kind, c.models)
			}
		})
	}
}

// A server that hangs, one that answers garbage and one that speaks first
// are classed within the probe timeout, and a closed port is left out.
func TestProbeMisbehavingServers(t *testing.T) {
	serve := func(f func(net.Conn)) string { return conntest.Serve(t, f) }
	hang := serve(func(c net.Conn) { defer c.Close(); io.Copy(io.Discard, c) })
	garbage := serve(func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 1024)
		c.Read(buf)
		c.Write([]byte("\x00\x01\xffnot http at all\r\n\r\n"))
	})
	banner := serve(func(c net.Conn) {
		defer c.Close()
		c.Write([]byte("220 mail ESMTP ready\r\n"))
		c.Read(make([]byte, 1))
	})
	closed := closedport.Addr(t)

	start := time.Now()
	snap := scanOf(t, 300*time.Millisecond, hang, garbage, banner, closed)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("scan took %v with a 300ms probe timeout", d)
	}
	got := map[string]Server{}
	for _, s := range snap.Servers {
		got[s.Addr] = s
	}
	if s := got[hang]; s.Kind != KindUnknown {
		t.Errorf("hanging server: %+v, want unknown", s)
	}
	if s := got[garbage]; s.Kind != KindUnknown {
		t.Errorf("garbage server: %+v, want unknown", s)
	}
	if s := got[banner]; s.Kind != KindOther || s.Detail != "speaks first: 220 mail ESMTP ready" {
		t.Errorf("banner server: %+v, want other", s)
	}
	if s, ok := got[closed]; ok {
		t.Errorf("closed port listed: %+v", s)
	}
}

func TestRoutesReplicasAndApps(t *testing.T) {
	snap := &Snapshot{Servers: []Server{
		{Kind: KindOpenAI, Addr: "127.0.0.1:8001", Models: []string{"llama"}},
		{Kind: KindOpenAI, Addr: "127.0.0.1:8000", Models: []string{"llama", "../evil", "a b"}},
		{Kind: KindTEI, Addr: "127.0.0.1:8080", Models: []string{"BAAI/bge-m3"}},
		{Kind: KindJupyter, Addr: "127.0.0.1:8888"},
		{Kind: KindJupyter, Addr: "127.0.0.1:8889"},
		{Kind: KindTriton, Addr: "127.0.0.1:9000"},
		{Kind: KindHTTP, Addr: "127.0.0.1:9999"},
		{Kind: KindOpenAI, Listen: "10.0.0.1:7000", Models: []string{"remote"}},
	}}
	var got []string
	for _, r := range Routes(snap) {
		got = append(got, r.Path+"="+joinAddrs(r.Upstreams))
	}
	want := []string{"/BAAI/bge-m3/=127.0.0.1:8080", "/jupyter/=127.0.0.1:8888", "/llama/=127.0.0.1:8000,127.0.0.1:8001", "/triton/=127.0.0.1:9000"}
	if !slices.Equal(got, want) {
		t.Errorf("routes\n got %q\nwant %q", got, want)
	}
	if n := len(snap.ModelServers()["llama"]); n != 2 {
		t.Errorf("llama replicas = %d, want 2", n)
	}
}

func joinAddrs(a []string) string {
	out := ""
	for i, s := range a {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

func TestPathName(t *testing.T) {
	for name, want := range map[string]bool{
		"llama3:8b": true, "meta-llama/Llama-3.1-8B-Instruct": true, "a@b+c": true,
		"": false, "../x": false, "a//b": false, "/a": false, "a/": false, "a b": false, "a%2f": false,
		".oneport": false, "a/./b": false, "é": false,
	} {
		if PathName(name) != want {
			t.Errorf("PathName(%q) = %v, want %v", name, !want, want)
		}
	}
}

func TestRedactArgs(t *testing.T) {
	for in, want := range map[string]string{
		"vllm serve m --api-key sk-123 --port 8000":             "vllm serve m --api-key *** --port 8000",
		"jupyter lab --IdentityProvider.token=abc --no-browser": "jupyter lab --IdentityProvider.token=*** --no-browser",
		"ollama serve":                               "ollama serve",
		"x --password --verbose":                     "x --password --verbose",
		"text-embeddings-router --model-id BAAI/bge": "text-embeddings-router --model-id BAAI/bge",
	} {
		if got := redactArgs(strings.Split(in, " ")); got != want {
			t.Errorf("redact %q = %q, want %q", in, got, want)
		}
	}
}

// A server that does not speak HTTP is probed once per socket, not on
// every rescan; an HTTP server is probed again (its models may change).
func TestNonHTTPProbedOnce(t *testing.T) {
	var accepts atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			c.Write([]byte("+OK redis-like banner\r\n"))
			c.Close()
		}
	}()
	l := listenerOf(t, ln.Addr().String())
	l.Inode = 12345
	sc := &Scanner{List: func() ([]Listener, error) { return []Listener{l}, nil }}
	for i := range 3 {
		snap, err := sc.Scan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Servers) != 1 || snap.Servers[0].Kind != KindOther {
			t.Fatalf("scan %d: %+v", i, snap.Servers)
		}
	}
	if n := accepts.Load(); n != 1 {
		t.Errorf("probed %d times in 3 scans, want once", n)
	}
	l.Inode = 999 // a new socket on the port is a new server
	sc.Scan(context.Background())
	if n := accepts.Load(); n != 2 {
		t.Errorf("a new socket was not probed: %d connections", n)
	}
}
