package httproute_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/httproute"
)

// BenchmarkProxyJSON compares a small JSON request through the router
// (mux, http.Server, ReverseProxy) with the same request to the backend
// directly, in turns, and reports the ratio of their rates. allocs/op
// counts both requests, client and backend included; oneport-allocs/req
// is what the router adds to one request (proxied less direct).
func BenchmarkProxyJSON(b *testing.B) {
	for _, engine := range engines {
		b.Run(strings.ReplaceAll(engine, "/", "_"), func(b *testing.B) {
			b.ReportAllocs()
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"object":"list","data":[{"id":"m"}]}`)
			}))
			defer backend.Close()
			addr := startProxy(b, engine, nil, route("/="+hostOf(backend)))
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			get := func(url string) time.Duration {
				start := time.Now()
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return time.Since(start)
			}
			var direct, proxied time.Duration
			for b.Loop() {
				direct += get(backend.URL + "/v1/models")
				proxied += get("http://" + addr + "/v1/models")
			}
			b.ReportMetric(addedAllocs(func() { get("http://" + addr + "/v1/models") }, func() { get(backend.URL + "/v1/models") }),
				"oneport-allocs/req")
			b.ReportMetric(float64(direct)/float64(proxied), "ratio")
			b.ReportMetric(float64(proxied.Microseconds())/float64(b.N), "oneport-µs/req")
			b.ReportMetric(float64(direct.Microseconds())/float64(b.N), "direct-µs/req")
		})
	}
}

// addedAllocs returns the heap allocations one call of proxied makes
// beyond one call of direct, averaged over many: what the proxy adds to a
// request, the client and backend (in this process too) taken out.
func addedAllocs(proxied, direct func()) float64 {
	return testing.AllocsPerRun(200, proxied) - testing.AllocsPerRun(200, direct)
}

// BenchmarkMatch measures route selection on a table of typical size.
func BenchmarkMatch(b *testing.B) {
	tab := mustSpecsB(b, "/=127.0.0.1:1", "/embedding-model/=127.0.0.1:2", "=/health=127.0.0.1:3",
		"~^/v1/(chat|completions)=127.0.0.1:4", "llm.example.com/=127.0.0.1:5", "*.example.com/a=127.0.0.1:6", "embed.*/=127.0.0.1:7")
	b.ReportAllocs()
	for b.Loop() {
		tab.Match("box:2222", "/embedding-model/v1/embeddings")
	}
}

func mustSpecsB(b *testing.B, specs ...string) *httproute.Table {
	var rs []httproute.Route
	for _, s := range specs {
		rs = append(rs, route(s))
	}
	t, err := httproute.NewTable(rs)
	if err != nil {
		b.Fatal(err)
	}
	return t
}
