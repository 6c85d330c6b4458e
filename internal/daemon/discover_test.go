//go:build linux

package daemon

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/discover"
	"github.com/oneport/oneport/internal/discover/standin"
	"github.com/oneport/oneport/internal/oneporttest"
)

// scans delivers each applied discovery scan; waitFor reads them until
// one satisfies ok.
type scans chan *discover.Snapshot

func (c scans) hook(s *discover.Snapshot) {
	select {
	case c <- s:
	default: // the test is not waiting; it will see a later scan
	}
}

func (c scans) waitFor(t *testing.T, what string, ok func(routes map[string]string) bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case s := <-c:
			routes := map[string]string{}
			for _, r := range discover.Routes(s) {
				routes[r.Path] = strings.Join(r.Upstreams, ",")
			}
			if ok(routes) {
				return
			}
		case <-deadline:
			t.Fatalf("no discovery scan showed %s", what)
		}
	}
}

// With no routes configured, oneport routes /<model>/ to each model
// server it finds; a stopped server's route goes within the rescan
// interval, and a server that comes back elsewhere is followed.
func TestDiscoveredRoutesFollowServers(t *testing.T) {
	standin.Require(t)
	chat, embed, llama := "d-chat-model", "d-org/embed-model", "d-llama:8b"
	s := standin.StartAll(t, standin.Spec{Kind: "vllm", Model: chat}, standin.Spec{Kind: "tei", Model: embed},
		standin.Spec{Kind: "ollama", Model: llama})
	vllm, tei, ollama := s[0], s[1], s[2]
	c := make(scans, 1)
	addr := startWith(t, Options{OnDiscover: c.hook}, "--admin-socket", "off", "--discover-interval", "200ms")
	c.waitFor(t, "the three stand-ins", func(r map[string]string) bool {
		return r["/"+chat+"/"] == vllm.Addr && r["/"+embed+"/"] == tei.Addr && r["/"+llama+"/"] == ollama.Addr
	})
	for path, want := range map[string]string{
		"/" + chat + "/v1/models": `"id":"` + chat + `"`,
		"/" + embed + "/info":     `"model_id":"` + embed + `"`,
		"/" + llama + "/api/tags": `"name":"` + llama + `"`,
	} {
		code, body := oneporttest.Get(t, "http://"+addr+path)
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d %s, want %s", path, code, body, want)
		}
	}

	tei.Stop()
	c.waitFor(t, "the stopped TEI gone", func(r map[string]string) bool {
		_, teiThere := r["/"+embed+"/"]
		return !teiThere && r["/"+chat+"/"] == vllm.Addr
	})
	// A stale route would answer 502 (its upstream is gone); no route
	// is oneport's own answer.
	if code, body := oneporttest.Get(t, "http://"+addr+"/"+embed+"/info"); code == http.StatusBadGateway || strings.Contains(body, "model_id") {
		t.Errorf("the stopped server's route is still served: %d %s", code, body)
	}

	// The server comes back on another port: its route follows.
	moved := standin.Start(t, "tei", embed)
	c.waitFor(t, "TEI on its new port", func(r map[string]string) bool { return r["/"+embed+"/"] == moved.Addr })
	if code, body := oneporttest.Get(t, "http://"+addr+"/"+embed+"/info"); code != 200 || !strings.Contains(body, `"model_id":"`+embed+`"`) {
		t.Errorf("moved server not reached: %d %s", code, body)
	}
	if code, _ := oneporttest.Get(t, "http://"+addr+"/"+chat+"/v1/models"); code != 200 {
		t.Errorf("running server lost its route: %d", code)
	}
}

// Configured routes win; discovered ones come after them, before the
// configured catch-all "/".
func TestDiscoveredRoutesAfterConfigured(t *testing.T) {
	standin.Require(t)
	vllm := standin.Start(t, "vllm", "d-layer-model")
	mine := oneporttest.Backend(t, "mine")
	c := make(scans, 1)
	addr := startWith(t, Options{OnDiscover: c.hook}, "--admin-socket", "off", "--discover", "--discover-interval", "200ms",
		"--route", "/="+mine, "--route", "/d-layer-model/own/="+mine)
	c.waitFor(t, "the stand-in", func(r map[string]string) bool { return r["/d-layer-model/"] == vllm.Addr })
	for path, want := range map[string]string{
		"/d-layer-model/v1/models": `"id":"d-layer-model"`,
		"/d-layer-model/own/x":     "mine",
		"/other":                   "mine",
	} {
		if code, body := oneporttest.Get(t, "http://"+addr+path); code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d %q, want %q", path, code, body, want)
		}
	}
}

// A reload that turns discover off removes the discovered routes; one
// that turns it back on brings them back. Configured routes stay.
func TestReloadTogglesDiscovery(t *testing.T) {
	standin.Require(t)
	vllm := standin.Start(t, "vllm", "t-reload-model")
	mine := oneporttest.Backend(t, "mine")
	conf := func(on bool) string {
		return fmt.Sprintf("discover = %v\ndiscover_interval = \"200ms\"\n[[route]]\npath = \"/mine/\"\nupstream = %q\n", on, mine)
	}
	path := oneporttest.WriteConfig(t, conf(true))
	c := make(scans, 1)
	reload := make(chan struct{})
	ready := make(chan struct{}, 4)
	notify := func(state string) {
		if state == "READY=1" {
			select {
			case ready <- struct{}{}:
			default:
			}
		}
	}
	addr := startWith(t, Options{OnDiscover: c.hook, Reload: reload, Notify: notify}, "--admin-socket", "off", "--config", path)
	<-ready // serving
	c.waitFor(t, "the stand-in", func(r map[string]string) bool { return r["/t-reload-model/"] == vllm.Addr })
	if code, _ := oneporttest.Get(t, "http://"+addr+"/t-reload-model/v1/models"); code != 200 {
		t.Fatalf("discovered route: %d", code)
	}

	os.WriteFile(path, []byte(conf(false)), 0o600)
	reload <- struct{}{}
	<-ready
	if code, body := oneporttest.Get(t, "http://"+addr+"/t-reload-model/v1/models"); code == 200 && strings.Contains(body, "t-reload-model") {
		t.Errorf("discover = false left the discovered route: %d %s", code, body)
	}
	if code, body := oneporttest.Get(t, "http://"+addr+"/mine/x"); code != 200 || !strings.Contains(body, "mine") {
		t.Errorf("configured route after reload: %d %s", code, body)
	}

	// The old watcher has stopped (the reload waited for it): drop the
	// scan it may have left, so only the new one's count.
	select {
	case <-c:
	default:
	}
	os.WriteFile(path, []byte(conf(true)), 0o600)
	reload <- struct{}{}
	<-ready
	c.waitFor(t, "the stand-in again", func(r map[string]string) bool { return r["/t-reload-model/"] == vllm.Addr })
	if code, _ := oneporttest.Get(t, "http://"+addr+"/t-reload-model/v1/models"); code != 200 {
		t.Errorf("discovered route after turning discover on again: %d", code)
	}
}

// With nothing configured, /v1/ is one base URL for every model server
// found: GET /v1/models lists all their models, a request goes to the
// server of its model, and a server that stops leaves the list at the next
// scan.
func TestDiscoveredModelsShareOneBaseURL(t *testing.T) {
	standin.Require(t)
	chat, embed, llama := "z-chat-model", "z-org/embed-model", "z-llama:8b"
	s := standin.StartAll(t, standin.Spec{Kind: "vllm", Model: chat}, standin.Spec{Kind: "tei", Model: embed},
		standin.Spec{Kind: "ollama", Model: llama})
	vllm, tei := s[0], s[1]
	c := make(scans, 1)
	addr := startWith(t, Options{OnDiscover: c.hook}, "--admin-socket", "off", "--discover-interval", "200ms")
	c.waitFor(t, "the three stand-ins", func(r map[string]string) bool {
		return r["/"+chat+"/"] == vllm.Addr && r["/"+embed+"/"] == tei.Addr && r["/"+llama+"/"] != ""
	})
	code, body := oneporttest.Get(t, "http://"+addr+"/v1/models")
	for _, m := range []string{chat, embed, llama} {
		if code != 200 || !strings.Contains(body, `"id":"`+m+`"`) {
			t.Errorf("GET /v1/models: %d %s, want %s listed", code, body, m)
		}
	}
	for _, tc := range []struct{ path, model, server string }{
		{"/v1/chat/completions", chat, "vllm"},
		{"/v1/embeddings", embed, "tei"},
	} {
		resp, err := http.Post("http://"+addr+tc.path, "application/json",
			strings.NewReader(`{"input":"x","messages":[],"model":"`+tc.model+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"served_by":"`+tc.server+`"`) {
			t.Errorf("POST %s model %s: %d %s, want it served by %s", tc.path, tc.model, resp.StatusCode, b, tc.server)
		}
	}
	resp, err := http.Post("http://"+addr+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"nope"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), "model_not_found") {
		t.Errorf("unknown model: %d %s, want 404 model_not_found", resp.StatusCode, b)
	}

	tei.Stop()
	c.waitFor(t, "the stopped TEI gone", func(r map[string]string) bool {
		_, teiThere := r["/"+embed+"/"]
		return !teiThere
	})
	if _, body := oneporttest.Get(t, "http://"+addr+"/v1/models"); strings.Contains(body, embed) || !strings.Contains(body, chat) {
		t.Errorf("after TEI stopped, /v1/models: %s", body)
	}
}

// Two test runs on one box each start stand-ins serving the same models.
// A scan sees both runs' (oneport discovers every server on the box), but
// a test's oneport routes to its own alone: otherwise each run's routes
// gained the other's servers as replicas, and both runs failed.
func TestDiscoveryTestsIgnoreOtherRunsStandIns(t *testing.T) {
	standin.Require(t)
	const model = "o-chat-model"
	other := standin.StartOther(t, "vllm", model)
	own := standin.Start(t, "vllm", model)
	c := make(scans, 1)
	startWith(t, Options{OnDiscover: c.hook}, "--admin-socket", "off", "--discover-interval", "200ms")
	var got string
	c.waitFor(t, "a route to "+model, func(r map[string]string) bool { got = r["/"+model+"/"]; return got != "" })
	if got != own.Addr {
		t.Errorf("/%s/ goes to %s, want %s alone (another run's stand-in is %s)", model, got, own.Addr, other.Addr)
	}

	snap, err := (&discover.Scanner{ProbeTimeout: 5 * time.Second}).Scan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, s := range snap.ModelServers()[model] {
		all = append(all, s.Addr)
	}
	if !slices.Contains(all, own.Addr) || !slices.Contains(all, other.Addr) {
		t.Errorf("a scan with no Skip found %s on %q, want both %s and %s", model, all, own.Addr, other.Addr)
	}
}
