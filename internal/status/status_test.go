package status

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/discover"
)

func testPage() *Page {
	var c Counter
	c.Add()
	return &Page{
		Facts: func(host string) Facts {
			snap := &discover.Snapshot{Servers: []discover.Server{
				{Kind: discover.KindOpenAI, Addr: "127.0.0.1:8000", Listen: "0.0.0.0:8000", Models: []string{"llama<script>"}, Process: "vllm", PID: 42},
				{Kind: discover.KindOpenAI, Addr: "127.0.0.1:8001", Listen: "0.0.0.0:8001", Models: []string{"llama<script>"}},
			}}
			return Facts{Listen: ":2222", SSH: "127.0.0.1:22", TLS: "internal",
				Routes:      []Route{{Name: "chat", Path: "/chat/", Upstreams: []Upstream{{Address: "127.0.0.1:30000", State: "up"}}}},
				Discovering: true, Servers: snap.Servers, Models: ModelsOf(snap),
				Connections: map[string]int64{"http": 2}, Requests: c.Rates(),
				CA: &CA{Fingerprint: "AB:CD", Download: Prefix + "ca.pem", Connect: "oneport connect https://" + host}}
		},
		CARoot: func() ([]byte, error) { return []byte("-----BEGIN CERTIFICATE-----\n"), nil },
	}
}

func do(p *Page, remote, path string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "http://box:2222"+path, nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	return w
}

// Only loopback clients that no proxy forwarded see the page; everyone
// else gets the 404 of a page that does not exist.
func TestAccess(t *testing.T) {
	p := testPage()
	notFound := do(p, "203.0.113.7:5555", Prefix+"nope").Body.String()
	for _, c := range []struct {
		name, remote string
		hdr          []string
		want         int
	}{
		{"loopback v4", "127.0.0.1:5555", nil, 200},
		{"loopback v6", "[::1]:5555", nil, 200},
		{"internet", "203.0.113.7:5555", nil, 404},
		{"private network", "10.0.0.2:5555", nil, 404},
		{"local proxy for the internet", "127.0.0.1:5555", []string{"X-Forwarded-For", "203.0.113.7"}, 404},
		{"local proxy, Forwarded", "127.0.0.1:5555", []string{"Forwarded", "for=203.0.113.7"}, 404},
		{"cloudflared", "127.0.0.1:5555", []string{"Cf-Connecting-Ip", "203.0.113.7"}, 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{Prefix, Prefix + "status.json", Prefix + "ca.pem"} {
				w := do(p, c.remote, path, c.hdr...)
				if w.Code != c.want {
					t.Errorf("%s: %d, want %d", path, w.Code, c.want)
				}
				if c.want == 404 && w.Body.String() != notFound {
					t.Errorf("%s: refusal %q differs from a missing page's %q", path, w.Body.String(), notFound)
				}
			}
		})
	}
	p.Allow = func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer admin" }
	if w := do(p, "203.0.113.7:5555", Prefix, "Authorization", "Bearer admin"); w.Code != 200 {
		t.Errorf("Allow hook ignored: %d", w.Code)
	}
	if w := do(p, "127.0.0.1:5555", Prefix); w.Code != 404 {
		t.Errorf("Allow hook replaced by loopback: %d", w.Code)
	}
}

// The page is readable without JavaScript: everything is in the HTML,
// escaped.
func TestHTMLWithoutScript(t *testing.T) {
	w := do(testPage(), "127.0.0.1:1", Prefix)
	body := w.Body.String()
	for _, want := range []string{"/chat/", "127.0.0.1:30000", "llama&lt;script&gt;", "2 replicas", "oneport connect https://box:2222",
		"AB:CD", `href="/.oneport/ca.pem"`, "vllm[42]", `<script src="page.js"></script>`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "llama<script>") {
		t.Error("a model name reached the page unescaped")
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
}

func TestJSONAndAssets(t *testing.T) {
	p := testPage()
	var f Facts
	if err := json.Unmarshal(do(p, "127.0.0.1:1", Prefix+"status.json").Body.Bytes(), &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Routes) != 1 || len(f.Models) != 1 || !f.Models[0].Replicas || f.Requests.Total != 1 {
		t.Errorf("facts %+v", f)
	}
	for path, ct := range map[string]string{"page.js": "text/javascript", "style.css": "text/css", "ca.pem": "application/x-pem-file"} {
		w := do(p, "127.0.0.1:1", Prefix+path)
		b, _ := io.ReadAll(w.Body)
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), ct) || len(b) == 0 {
			t.Errorf("%s: %d %q", path, w.Code, w.Header().Get("Content-Type"))
		}
	}
	p.CARoot = nil
	if w := do(p, "127.0.0.1:1", Prefix+"ca.pem"); w.Code != 404 {
		t.Errorf("ca.pem without a CA: %d", w.Code)
	}
}

func TestCounterRing(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	c := &Counter{now: func() time.Time { return now }}
	c.Add()
	c.Add()
	now = now.Add(10 * time.Second)
	c.Add()
	r := c.Rates()
	if r.Total != 3 || r.LastMinute != 3 || r.Buckets[len(r.Buckets)-1] != 1 || r.Buckets[len(r.Buckets)-2] != 2 {
		t.Errorf("rates %+v", r)
	}
	now = now.Add(70 * time.Second) // the first minute has left the last minute
	c.Add()
	if r := c.Rates(); r.LastMinute != 1 || r.Total != 4 {
		t.Errorf("after a minute: %+v", r)
	}
	now = now.Add(time.Duration(buckets) * 10 * time.Second) // the ring came round: old buckets are reset
	if r := c.Rates(); r.LastMinute != 0 || sum(r.Buckets) != 0 {
		t.Errorf("after five minutes: %+v", r)
	}
	c.Add()
	if r := c.Rates(); sum(r.Buckets) != 1 {
		t.Errorf("reused bucket kept old counts: %+v", r)
	}
}

func sum(b []int64) (n int64) {
	for _, v := range b {
		n += v
	}
	return n
}

func BenchmarkCounterAdd(b *testing.B) {
	var c Counter
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add()
		}
	})
}

func BenchmarkPageJSON(b *testing.B) {
	p := testPage()
	b.ReportAllocs()
	for b.Loop() {
		do(p, "127.0.0.1:1", Prefix+"status.json")
	}
}
