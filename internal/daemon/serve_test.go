//go:build unix

package daemon

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/oneporttest"
	"github.com/oneport/oneport/internal/sshtest"
	"github.com/oneport/oneport/internal/syncbuf"
)

// After shutdown no goroutine of oneport's is left.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	var n int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if n = runtime.NumGoroutine(); n <= before+2 { // the SSH test server and backend stop in Cleanup
			return
		}
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("%d goroutines left, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
}

// SSH and HTTP share the one port: an SSH login and an HTTP request to a
// routed upstream both work, and each connection logs one line.
func TestOnePortServesSSHAndHTTP(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := sshtest.StartInProcess(t)
	up := oneporttest.EchoBackend(t)
	var logs syncbuf.Buffer
	t.Run("serve", func(t *testing.T) {
		addr := startOneport(t, &logs, "--ssh", srv.Addr, "--route", "/embedding-model/="+up)
		out, err := sshtest.Run(addr, srv.Client, "echo hello")
		if err != nil || out != "hello\n" {
			t.Fatalf("ssh: %q %v", out, err)
		}
		if _, body := oneporttest.Get(t, "http://"+addr+"/embedding-model/v1/models"); body != "upstream saw /v1/models" {
			t.Fatalf("body %q", body)
		}
		http.DefaultClient.CloseIdleConnections()
	})
	l := logs.String()
	for _, want := range []string{`msg=conn proto=ssh`, `msg=conn proto=http`, `msg=http method=GET`, `status=200`} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
	waitGoroutines(t, before)
}

// Plain HTTP for hosts in redirect_http is sent to https on the same
// host and port; other hosts and ACME challenges are served as they are.
func TestHTTPSRedirect(t *testing.T) {
	up := oneporttest.EchoBackend(t)
	path := oneporttest.WriteConfig(t, fmt.Sprintf("listen = \"127.0.0.1:0\"\n[tls]\nredirect_http = [\"llm.example.com\"]\n[[route]]\npath = \"/\"\nupstream = %q\n", up))
	addr := startOneport(t, io.Discard, "--config", path, "--admin-socket", "off")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(host, p string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+addr+p, nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := get("LLM.example.com:2222", "/v1/models?x=1")
	if resp.StatusCode != 308 || resp.Header.Get("Location") != "https://LLM.example.com:2222/v1/models?x=1" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := get("other.example", "/v1/models"); resp.StatusCode != 200 {
		t.Errorf("other host: %d", resp.StatusCode)
	}
	if resp := get("llm.example.com", "/.well-known/acme-challenge/x"); resp.StatusCode == 308 {
		t.Error("ACME challenge redirected")
	}
}

// Routes are listed, added, replaced and deleted; each change serves at
// once; bad input is a 4xx with a message and changes nothing.
func TestAdminRouteCRUD(t *testing.T) {
	f := startAdminFixture(t, "")
	if got := f.Get(t, "/x"); got != "200 backend a saw /x" {
		t.Fatalf("before: %s", got)
	}
	code, body := f.Call(t, "POST", "/routes", fmt.Sprintf(`{"name":"embed","spec":"/embed/=%s"}`, f.B))
	if code != 201 || !strings.Contains(body, `"name": "embed"`) {
		t.Fatalf("add: %d %s", code, body)
	}
	if got := f.Get(t, "/embed/v1/models"); got != "200 backend b saw /v1/models" {
		t.Fatalf("added route: %s", got)
	}
	code, body = f.Call(t, "PUT", "/routes/embed", fmt.Sprintf(`{"path":"/embed/","upstreams":[{"address":%q}],"strip_prefix":false}`, f.A))
	if code != 200 {
		t.Fatalf("put: %d %s", code, body)
	}
	if got := f.Get(t, "/embed/v1/models"); got != "200 backend a saw /embed/v1/models" {
		t.Fatalf("replaced route: %s", got)
	}
	checkCalls(t, f, []adminCall{
		{"POST", "/routes", `{"name":`, 400, "bad JSON"},
		{"POST", "/routes", `{"name":"x","colour":"red"}`, 400, "unknown field"},
		{"POST", "/routes", `{"name":"x","spec":"/x=nohost"}`, 400, "want host:port"},
		{"POST", "/routes", fmt.Sprintf(`{"name":"embed","spec":"/y=%s"}`, f.A), 409, "exists"},
		{"PUT", "/routes/nope", fmt.Sprintf(`{"spec":"/y=%s"}`, f.A), 404, "no route named"},
		{"DELETE", "/routes/nope", "", 404, "no route named"},
		{"POST", "/tag/chat", `{"tag":"purple"}`, 400, "no upstream tagged"},
		{"POST", "/upstreams/127.0.0.1:1/drain", "", 404, "no route uses"},
		{"POST", "/routes?persist=true", fmt.Sprintf(`{"name":"z","spec":"/z=%s"}`, f.A), 201, ""},
	})
	if code, _ := f.Call(t, "DELETE", "/routes/embed", ""); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if got := f.Get(t, "/embed/v1/models"); got != "200 backend a saw /embed/v1/models" {
		t.Fatalf("after delete the default route should answer: %s", got)
	}
}

// Refused upstream changes name the problem and change no route.
func TestAdminUpstreamRefusals(t *testing.T) {
	f := startAdminFixture(t, "")
	checkCalls(t, f, []adminCall{
		{"POST", "/upstreams?route=chat", fmt.Sprintf(`{"address":%q}`, f.B), 409, "already has"},
		{"POST", "/upstreams", fmt.Sprintf(`{"address":%q}`, f.B), 400, "which route"},
		{"POST", "/upstreams?route=nope", `{"address":"127.0.0.1:9"}`, 404, "no route named"},
		{"POST", "/upstreams?route=chat", `{"address":"nohost"}`, 400, "want host:port"},
		{"DELETE", "/upstreams/127.0.0.1:9?route=chat", "", 404, "has no upstream"},
	})
}

// adminCall is a request to the admin API and the answer it must get:
// the status code and a piece of the body.
type adminCall struct {
	method, path, body string
	code               int
	says               string
}

// checkCalls makes each call in order; a refused one (status 400 and up)
// must leave the routes as they were.
func checkCalls(t *testing.T, f *oneporttest.Admin, calls []adminCall) {
	t.Helper()
	before := f.Routes(t)
	for _, tc := range calls {
		code, body := f.Call(t, tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("%s %s %s: %d %s, want %d saying %q", tc.method, tc.path, tc.body, code, body, tc.code, tc.says)
		}
		if code >= 400 && f.Routes(t) != before {
			t.Errorf("%s %s: a refused change changed the routes", tc.method, tc.path)
		}
	}
}

// Metrics count what happened.
func TestMetrics(t *testing.T) {
	srv := sshtest.StartInProcess(t)
	f := startAdminFixture(t, fmt.Sprintf("ssh = %q\n", srv.Addr))
	for range 3 {
		f.Get(t, "/v1/models")
	}
	if _, err := sshtest.Run(f.Addr, srv.Client, "echo hi"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf(`oneport_http_requests_total{code="200",route="chat",upstream=%q} 3`, f.A),
		`oneport_connections_total{protocol="http"} 1`,
		`oneport_connections_total{protocol="ssh"} 1`,
		fmt.Sprintf(`oneport_upstream_healthy{upstream=%q} 1`, f.A),
		`oneport_redirect_installed 0`,
		`oneport_http_time_to_first_byte_seconds_count{route="chat"} 3`,
	}
	var body string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, body = f.Call(t, "GET", "/metrics", "")
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %s:\n%s", missing, grepLines(body, "oneport_"))
		}
	}
	// Not on the public port unless asked.
	if got := f.Get(t, "/metrics"); strings.Contains(got, "oneport_http_requests_total") {
		t.Error("metrics exposed on the public port without metrics_path")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
