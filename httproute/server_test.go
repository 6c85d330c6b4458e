package httproute_test

import (
	"errors"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/oneport/oneport/httproute"
)

// An unknown engine is a clear error from CheckEngine and from Serve, and
// the known ones, with the zero value, are accepted.
func TestServerEngineValidated(t *testing.T) {
	for _, e := range []string{"", httproute.EngineOneport, httproute.EngineNetHTTP} {
		if err := httproute.CheckEngine(e); err != nil {
			t.Errorf("CheckEngine(%q) = %v", e, err)
		}
	}
	err := httproute.CheckEngine("nginx")
	if !errors.Is(err, httproute.ErrUnknownEngine) || !strings.Contains(err.Error(), `"nginx"`) ||
		!strings.Contains(err.Error(), `"net/http"`) {
		t.Errorf("CheckEngine(nginx) = %v, want ErrUnknownEngine naming the value and the choices", err)
	}
	s := httproute.NewServer(http.NotFoundHandler(), nil)
	s.Engine = "nginx"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := s.Serve(ln); !errors.Is(err, httproute.ErrUnknownEngine) {
		t.Errorf("Serve with engine nginx = %v, want ErrUnknownEngine", err)
	}
	s.Close()
}

// Each engine is the one that serves plain HTTP/1: the handler's stack
// shows net/http's server under EngineNetHTTP and the own engine
// otherwise.
func TestServerEngineServesHTTP1(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		stacks := make(chan string, 1)
		probe := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, 64<<10)
			stacks <- string(buf[:runtime.Stack(buf, false)])
		})
		addr := startServing(t, engine, probe, nil)
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		stack := <-stacks
		own := strings.Contains(stack, "internal/h1.(*h1conn)")
		std := strings.Contains(stack, "net/http.(*conn).serve")
		if want := engine != httproute.EngineNetHTTP; own != want || std == want {
			t.Errorf("engine %q: own engine in stack %v, net/http %v:\n%s", engine, own, std, stack)
		}
	})
}
