//go:build unix

package daemon

import (
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/oneport/oneport/internal/oneporttest"
)

// http_engine chooses what serves plain HTTP/1 in the running daemon: the
// backend, in this process, sees the own engine's connection goroutine
// among the stacks only when it is chosen.
func TestHTTPEngineSettingChoosesTheServer(t *testing.T) {
	for _, tc := range []struct {
		engine string
		own    bool
	}{{"", true}, {"oneport", true}, {"net/http", false}} {
		t.Run("engine="+tc.engine, func(t *testing.T) {
			stacks := make(chan string, 1)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				buf := make([]byte, 4<<20)
				stacks <- string(buf[:runtime.Stack(buf, true)])
				io.WriteString(w, "ok")
			})}
			go up.Serve(ln)
			t.Cleanup(func() { up.Close() })
			body := "[[route]]\npath = \"/\"\nupstream = \"" + ln.Addr().String() + "\"\n"
			if tc.engine != "" {
				body = "http_engine = \"" + tc.engine + "\"\n" + body
			}
			addr := startOneport(t, io.Discard, "--config", oneporttest.WriteConfig(t, body))
			if code, got := oneporttest.Get(t, "http://"+addr+"/"); code != 200 || got != "ok" {
				t.Fatalf("GET: %d %q", code, got)
			}
			http.DefaultClient.CloseIdleConnections()
			if own := strings.Contains(<-stacks, "internal/h1.(*h1conn)"); own != tc.own {
				t.Errorf("http_engine %q: own engine serving %v, want %v", tc.engine, own, tc.own)
			}
		})
	}
}
