package httproute_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/oneport/oneport/httproute"
)

// A Table is a snapshot: SetTable serves a copy of it, so one Table given
// to two Handlers keeps their upstream state apart (draining an upstream
// in one leaves the other serving it), and routes read from a Table or
// changed after NewTable do not reach into it.
func TestTableImmutableAcrossHandlers(t *testing.T) {
	b := echoBackend(t, "b")
	routes := []httproute.Route{route("/=" + hostOf(b))}
	tab, err := httproute.NewTable(routes)
	if err != nil {
		t.Fatal(err)
	}
	routes[0].Upstreams[0] = "127.0.0.1:1" // the caller's slice, not the table's
	got := tab.Routes()
	got[0].Upstreams[0] = "127.0.0.1:2"
	if again := tab.Routes(); again[0].Upstreams[0] != hostOf(b) {
		t.Fatalf("table's upstream changed to %q through a slice it was given or returned", again[0].Upstreams[0])
	}
	serve := func(h *httproute.Handler) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "http://x/v1/models", nil))
		return w.Code
	}
	one, two := newHandler(t, nil), newHandler(t, nil)
	defer one.CloseIdleConnections()
	defer two.CloseIdleConnections()
	one.SetTable(tab)
	two.SetTable(tab)
	if one.Table() == tab || one.Table() == two.Table() {
		t.Error("Handlers serve the Table they were given instead of their own copies")
	}
	if err := one.SetDrained(hostOf(b), true); err != nil {
		t.Fatal(err)
	}
	if code := serve(one); code != http.StatusServiceUnavailable {
		t.Errorf("handler that drained the upstream answered %d, want 503", code)
	}
	if code := serve(two); code != http.StatusOK {
		t.Errorf("other handler answered %d, want 200: it shares the first one's drain", code)
	}
}
