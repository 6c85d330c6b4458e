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
	"github.com/oneport/oneport/internal/oneporttest"
)

// startAdminFixture is oneporttest.StartAdmin with oneport started as the
// command line starts it.
func startAdminFixture(t *testing.T, extra string) *oneporttest.Admin {
	t.Helper()
	return oneporttest.StartAdmin(t, extra, func(t *testing.T, args ...string) string {
		return startOneport(t, io.Discard, args...)
	})
}

// Tag switch and drain, through the CLI.
func TestAdminTagAndDrainCLI(t *testing.T) {
	f := startAdminFixture(t, "")
	if code, out, errOut := runCmd("route", "tag", "chat", "green", "--admin-socket", f.Socket); code != 0 || !strings.Contains(out, "green") {
		t.Fatalf("route tag: %d %s %s", code, out, errOut)
	}
	if got := f.Get(t, "/x"); got != "200 backend b saw /x" {
		t.Fatalf("after the tag switch: %s", got)
	}
	runCmd("route", "tag", "chat", "", "--admin-socket", f.Socket)
	if code, _, errOut := runCmd("upstream", "drain", f.B, "--admin-socket", f.Socket); code != 0 {
		t.Fatalf("drain: %s", errOut)
	}
	for range 10 {
		if got := f.Get(t, "/x"); got != "200 backend a saw /x" {
			t.Fatalf("drained upstream served: %s", got)
		}
	}
	code, out, _ := runCmd("status", "--admin-socket", f.Socket)
	if code != 0 || !strings.Contains(out, f.B+"  drained") || !strings.Contains(out, "chat") ||
		!strings.Contains(out, "/.oneport/ssh, 0 open, targets ssh") {
		t.Errorf("status:\n%s", out)
	}
	if code, _, _ := runCmd("upstream", "enable", f.B, "--admin-socket", f.Socket); code != 0 {
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
	if err := os.Chmod(f.Config, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd("route", "add", "/embed/="+f.B+"*2#green", "--name", "embed", "--persist", "--admin-socket", f.Socket); code != 0 {
		t.Fatalf("%s %s", out, errOut)
	}
	for _, p := range []string{f.Config, f.Config + ".bak"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600 like the file before", p, fi.Mode().Perm())
		}
	}
	_, res, err := config.LoadFlags([]string{"--config", f.Config})
	if err != nil {
		t.Fatalf("persisted file does not load: %v\n%s", err, mustRead(t, f.Config))
	}
	var spec string
	for _, r := range res.Table.Routes() {
		if r.Name == "embed" {
			spec = r.Spec()
		}
	}
	if spec != "/embed/="+f.B+"*2#green" {
		t.Fatalf("persisted route %q", spec)
	}
	addr := startOneport(t, io.Discard, "--config", f.Config, "--admin-socket", filepath.Join(t.TempDir(), "s"))
	if _, b := oneporttest.Get(t, "http://"+addr+"/embed/v1"); b != "backend b saw /v1" {
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
	path := oneporttest.WriteConfig(t, "admin_listen = \"127.0.0.1:9\"\n")
	if code, _, errOut := runCmd("check", "--config", path); code == 0 || !strings.Contains(errOut, "admin_token") {
		t.Errorf("TCP admin without a token accepted: %s", errOut)
	}
}

// Upstreams are added to and removed from a route's pool; refusals
// change nothing.
func TestAdminUpstreamAddRemove(t *testing.T) {
	f := startAdminFixture(t, "")
	c := oneporttest.Backend(t, "c")
	if code, out, errOut := runCmd("upstream", "add", "chat", c, "--tag", "blue", "--weight", "5", "--admin-socket", f.Socket); code != 0 {
		t.Fatalf("add: %s %s", out, errOut)
	}
	seenC := false
	for range 30 {
		if f.Get(t, "/x") == "200 backend c saw /x" {
			seenC = true
		}
	}
	if !seenC {
		t.Fatal("the added upstream got no request")
	}
	if code, out, errOut := runCmd("upstream", "rm", "chat", c, "--admin-socket", f.Socket); code != 0 {
		t.Fatalf("rm: %s %s", out, errOut)
	}
	for range 10 {
		if got := f.Get(t, "/x"); got != "200 backend a saw /x" {
			t.Fatalf("after rm: %s", got)
		}
	}
}
