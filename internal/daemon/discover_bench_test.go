package daemon

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/oneport/oneport/httproute"
)

// BenchmarkDiscoveredLayer compares a request served by a configured
// route with one served by a discovered route, which is matched after the
// configured table: the difference is the layer's cost.
func BenchmarkDiscoveredLayer(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer backend.Close()
	up := backend.Listener.Addr().String()
	user, err := httproute.NewHandler([]httproute.Route{{Path: "/mine/", Upstreams: []string{up}}, {Path: "/", Upstreams: []string{up}}})
	if err != nil {
		b.Fatal(err)
	}
	disc, err := httproute.NewHandler([]httproute.Route{{Path: "/llama/", Upstreams: []string{up}}})
	if err != nil {
		b.Fatal(err)
	}
	defer user.CloseIdleConnections()
	defer disc.CloseIdleConnections()
	s := &server{handler: user}
	s.disc.Store(&discovery{handler: disc})
	for _, path := range []string{"/mine/v1/models", "/llama/v1/models"} {
		b.Run(path, func(b *testing.B) {
			req := httptest.NewRequest("GET", "http://box"+path, nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				s.routeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%s: %d", path, w.Code)
				}
			}
		})
	}
}
