//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oneport/oneport/internal/admin"
	"github.com/oneport/oneport/internal/config"
)

// adminFixture is oneport running with a config file and an admin socket.
type adminFixture struct {
	addr, socket, config string
	a, b                 string // backends
}

func startAdminFixture(t *testing.T, extra string) *adminFixture {
	t.Helper()
	f := &adminFixture{a: namedBackend(t, "a"), b: namedBackend(t, "b")}
	f.socket = filepath.Join(t.TempDir(), "admin.sock")
	f.config = writeConfig(t, fmt.Sprintf(`# my comments
listen = "127.0.0.1:0"
%s
[[route]]
name = "chat"
path = "/"
upstream = [{address = %q, tags = ["blue"]}, {address = %q, tags = ["green"]}]
tag = "blue"
`, extra, f.a, f.b))
	f.addr = startOneport(t, io.Discard, "--config", f.config, "--admin-socket", f.socket)
	return f
}

func (f *adminFixture) call(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://oneport"+path, strings.NewReader(body))
	resp, err := admin.NewClient(f.socket).HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *adminFixture) get(t *testing.T, path string) string {
	t.Helper()
	code, body := httpGet(t, "http://"+f.addr+path)
	return fmt.Sprintf("%d %s", code, body)
}

// httpGet fetches url and returns the status code and body.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func routesNow(t *testing.T, f *adminFixture) string {
	_, body := f.call(t, "GET", "/routes", "")
	return body
}

// Tag switch and drain, through the CLI.
func TestAdminTagAndDrainCLI(t *testing.T) {
	f := startAdminFixture(t, "")
	if code, out, errOut := runCmd("route", "tag", "chat", "green", "--admin-socket", f.socket); code != 0 || !strings.Contains(out, "green") {
		t.Fatalf("route tag: %d %s %s", code, out, errOut)
	}
	if got := f.get(t, "/x"); got != "200 backend b saw /x" {
		t.Fatalf("after the tag switch: %s", got)
	}
	runCmd("route", "tag", "chat", "", "--admin-socket", f.socket)
	if code, _, errOut := runCmd("upstream", "drain", f.b, "--admin-socket", f.socket); code != 0 {
		t.Fatalf("drain: %s", errOut)
	}
	for range 10 {
		if got := f.get(t, "/x"); got != "200 backend a saw /x" {
			t.Fatalf("drained upstream served: %s", got)
		}
	}
	code, out, _ := runCmd("status", "--admin-socket", f.socket)
	if code != 0 || !strings.Contains(out, f.b+"  drained") || !strings.Contains(out, "chat") ||
		!strings.Contains(out, "/.oneport/ssh, 0 open, targets ssh") {
		t.Errorf("status:\n%s", out)
	}
	if code, _, _ := runCmd("upstream", "enable", f.b, "--admin-socket", f.socket); code != 0 {
		t.Fatal("enable failed")
	}
	if code, _, errOut := runCmd("status", "--admin-socket", filepath.Join(t.TempDir(), "none.sock")); code == 0 || !strings.Contains(errOut, "is oneport running") {
		t.Errorf("status without a server: %d %s", code, errOut)
	}
}

// persist=true writes the change to the config file, which a new oneport
// then serves; the old file is kept, and neither is more readable than the
// file was.
func TestAdminPersistRoundTrip(t *testing.T) {
	f := startAdminFixture(t, "")
	if err := os.Chmod(f.config, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd("route", "add", "/embed/="+f.b+"*2#green", "--name", "embed", "--persist", "--admin-socket", f.socket); code != 0 {
		t.Fatalf("%s %s", out, errOut)
	}
	for _, p := range []string{f.config, f.config + ".bak"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600 like the file before", p, fi.Mode().Perm())
		}
	}
	_, res, err := config.LoadFlags([]string{"--config", f.config})
	if err != nil {
		t.Fatalf("persisted file does not load: %v\n%s", err, mustRead(t, f.config))
	}
	var spec string
	for _, r := range res.Table.Routes() {
		if r.Name == "embed" {
			spec = r.Spec()
		}
	}
	if spec != "/embed/="+f.b+"*2#green" {
		t.Fatalf("persisted route %q", spec)
	}
	addr := startOneport(t, io.Discard, "--config", f.config, "--admin-socket", filepath.Join(t.TempDir(), "s"))
	if _, b := httpGet(t, "http://"+addr+"/embed/v1"); b != "backend b saw /v1" {
		t.Fatalf("restarted oneport: %q", b)
	}
}

// TCP admin is opt-in and needs the token.
func TestAdminTCPNeedsToken(t *testing.T) {
	// The port is picked, freed, then bound by oneport: another socket may
	// take it in between, so try a few.
	var adminAddr string
	for try := 0; ; try++ {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		adminAddr = ln.Addr().String()
		ln.Close()
		startAdminFixture(t, fmt.Sprintf("admin_listen = %q\nadmin_token = \"0123456789abcdef-secret\"\n", adminAddr))
		resp, err := http.Get("http://" + adminAddr + "/routes")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Fatalf("without token: %d", resp.StatusCode)
			}
			break
		}
		if try == 5 {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+adminAddr+"/routes", nil)
	req.Header.Set("Authorization", "Bearer 0123456789abcdef-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var routes []admin.Route
	json.NewDecoder(resp.Body).Decode(&routes)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(routes) != 1 {
		t.Fatalf("with token: %d %v", resp.StatusCode, routes)
	}
	path := writeConfig(t, "admin_listen = \"127.0.0.1:9\"\n")
	if code, _, errOut := runCmd("check", "--config", path); code == 0 || !strings.Contains(errOut, "admin_token") {
		t.Errorf("TCP admin without a token accepted: %s", errOut)
	}
}

// Upstreams are added to and removed from a route's pool; refusals
// change nothing.
func TestAdminUpstreamAddRemove(t *testing.T) {
	f := startAdminFixture(t, "")
	c := namedBackend(t, "c")
	if code, out, errOut := runCmd("upstream", "add", "chat", c, "--tag", "blue", "--weight", "5", "--admin-socket", f.socket); code != 0 {
		t.Fatalf("add: %s %s", out, errOut)
	}
	seenC := false
	for range 30 {
		if f.get(t, "/x") == "200 backend c saw /x" {
			seenC = true
		}
	}
	if !seenC {
		t.Fatal("the added upstream got no request")
	}
	before := routesNow(t, f)
	for _, tc := range []struct {
		method, path, body string
		code               int
		says               string
	}{
		{"POST", "/upstreams?route=chat", fmt.Sprintf(`{"address":%q}`, c), 409, "already has"},
		{"POST", "/upstreams", fmt.Sprintf(`{"address":%q}`, c), 400, "which route"},
		{"POST", "/upstreams?route=nope", `{"address":"127.0.0.1:9"}`, 404, "no route named"},
		{"POST", "/upstreams?route=chat", `{"address":"nohost"}`, 400, "want host:port"},
		{"DELETE", "/upstreams/127.0.0.1:9?route=chat", "", 404, "has no upstream"},
	} {
		code, body := f.call(t, tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("%s %s: %d %s, want %d saying %q", tc.method, tc.path, code, body, tc.code, tc.says)
		}
		if routesNow(t, f) != before {
			t.Fatalf("%s %s: a refused change changed the routes", tc.method, tc.path)
		}
	}
	if code, out, errOut := runCmd("upstream", "rm", "chat", c, "--admin-socket", f.socket); code != 0 {
		t.Fatalf("rm: %s %s", out, errOut)
	}
	for range 10 {
		if got := f.get(t, "/x"); got != "200 backend a saw /x" {
			t.Fatalf("after rm: %s", got)
		}
	}
}
