//go:build unix

package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/oneporttest"
	"github.com/oneport/oneport/internal/syncbuf"
)

// A gateway route from the config file routes by model, lists the
// upstreams' models and aliases, and reports usage in the metrics.
func TestGatewayRouteServes(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			io.WriteString(w, `{"object":"list","data":[{"id":"llama-3","object":"model"}]}`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"got":%q,"usage":{"prompt_tokens":4,"completion_tokens":2}}`, b)
	}))
	defer up.Close()
	cfg := oneporttest.WriteConfig(t, fmt.Sprintf(`
metrics_path = "/metrics"
[[route]]
path = "/"
gateway = true
upstream = %q
[[model]]
name = "llama-3"
aliases = ["gpt-4o-mini"]
`, up.Listener.Addr().String()))
	var logs syncbuf.Buffer
	addr := startOneport(t, &logs, "--config", cfg)
	base := "http://" + addr
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, body := oneporttest.Get(t, base+"/v1/models"); strings.Contains(body, `"llama-3"`) && strings.Contains(body, `"gpt-4o-mini"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateway never listed llama-3 and its alias")
		}
	}
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"gpt-4o-mini"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `{\"model\":\"llama-3\"}`) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	_, metrics := oneporttest.Get(t, base+"/metrics")
	for _, want := range []string{
		`gen_ai_client_token_usage_sum{gen_ai_request_model="gpt-4o-mini",gen_ai_token_type="input",key=""} 4`,
		`gen_ai_server_request_duration_seconds_count{gen_ai_request_model="gpt-4o-mini",key=""} 1`,
		`oneport_gateway_queue_wait_seconds_count{gen_ai_request_model="gpt-4o-mini"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(metrics, "gen_ai"))
		}
	}
	if !strings.Contains(logs.String(), "model=gpt-4o-mini") || !strings.Contains(logs.String(), "tokens_in=4") {
		t.Errorf("the access line lacks the model and tokens:\n%s", logs.String())
	}
}

// A reload keeps a gateway whose settings did not change (its queues and
// discovered models), and replaces one whose settings did.
func TestGatewayKeptAcrossReload(t *testing.T) {
	gs, err := newGateways(slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer gs.close()
	resolve := func(queue int) *config.Resolved {
		path := oneporttest.WriteConfig(t, fmt.Sprintf("[[route]]\npath = \"/\"\ngateway = true\nupstream = \"127.0.0.1:9\"\nmax_queue = %d\n"+
			"gateway_discover_interval = \"1h\"\n[[route]]\npath = \"/other\"\nupstream = \"127.0.0.1:9\"\n", queue))
		_, res := mustLoad(t, loader("--config", path))
		return res
	}
	served := func(res *config.Resolved) http.Handler {
		t.Helper()
		table, commit, err := gs.prepare(res)
		if err != nil {
			t.Fatal(err)
		}
		commit()
		r, _, ok := table.Match("x", "/v1/models")
		if !ok || r.Serve == nil {
			t.Fatalf("the gateway route has no gateway: %+v", r)
		}
		if r, _, _ := table.Match("x", "/other"); r.Serve != nil {
			t.Fatal("a path route got a gateway")
		}
		return r.Serve
	}
	first := served(resolve(5))
	if again := served(resolve(5)); again != first {
		t.Error("an unchanged gateway route got a new gateway")
	}
	if changed := served(resolve(6)); changed == first {
		t.Error("a changed gateway route kept its old gateway")
	}
}

// The admin API's route JSON cannot carry a gateway's settings, so it
// refuses to change a gateway route rather than drop them: the route keeps
// serving as a gateway, and its text in the config file is untouched.
func TestAdminRefusesToChangeAGatewayRoute(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"object":"list","data":[{"id":"llama-3","object":"model"}]}`)
	}))
	defer up.Close()
	f := startAdminFixture(t, fmt.Sprintf("[[route]]\nname = \"gw\"\npath = \"/v1/\"\ngateway = true\nmax_queue = 7\nupstream = %q\n",
		up.Listener.Addr().String()))
	before := string(mustReadFile(t, f.Config))
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/routes/gw?persist=true", `{"name":"gw","path":"/v1/","upstream":[{"address":"` + f.A + `"}]}`},
		{"POST", "/tag/gw?persist=true", `{"tag":""}`},
		{"POST", "/upstreams?route=gw&persist=true", `{"address":"` + f.B + `"}`},
	} {
		code, body := f.Call(t, c.method, c.path, c.body)
		if code != http.StatusConflict || !strings.Contains(body, "model gateway") {
			t.Errorf("%s %s: %d %s, want 409 naming the model gateway", c.method, c.path, code, body)
		}
	}
	if after := string(mustReadFile(t, f.Config)); after != before {
		t.Errorf("the config file changed:\n%s", after)
	}
	resp, err := http.Post("http://"+f.Addr+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"nope"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), "model_not_found") {
		t.Errorf("the route stopped being a gateway: %d %s", resp.StatusCode, b)
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
