//go:build unix

package main

import (
	"net"
	"strings"
	"testing"

	"github.com/oneport/oneport/internal/closedport"
	"github.com/oneport/oneport/internal/oneporttest"
)

// `oneport route set NAME SPEC` replaces a route, as the help says.
func TestRouteSetReplacesRoute(t *testing.T) {
	f := startAdminFixture(t, "")
	if code, out, errOut := runCmd("route", "set", "chat", "/="+f.B, "--admin-socket", f.Socket); code != 0 {
		t.Fatalf("route set: %d %s %s", code, out, errOut)
	}
	if got := f.Get(t, "/x"); got != "200 backend b saw /x" {
		t.Fatalf("after route set: %s", got)
	}
	if code, _, errOut := runCmd("route", "add", "/=127.0.0.1:1", "--name", "chat", "--admin-socket", f.Socket); code == 0 ||
		!strings.Contains(errOut, "oneport route set") {
		t.Errorf("add of an existing name: %d %s, want a hint at route set", code, errOut)
	}
	if !strings.Contains(usage(), "set NAME SPEC") {
		t.Error("--help does not list route set")
	}
}

// A typo in ssh locks users out of SSH through oneport: check warns when
// nothing listens there, and still succeeds.
func TestCheckWarnsWhenNothingListensAtSSHTarget(t *testing.T) {
	dead := closedport.Addr(t)
	path := oneporttest.WriteConfig(t, "ssh = \""+dead+"\"\n")
	code, _, stderr := runCmd("check", "--config", path)
	if code != 0 || !strings.Contains(stderr, "warning: nothing answers at the SSH target "+dead) {
		t.Errorf("check: %d %q, want success with a warning", code, stderr)
	}
	live, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	path = oneporttest.WriteConfig(t, "ssh = \""+live.Addr().String()+"\"\n")
	if code, _, stderr := runCmd("check", "--config", path); code != 0 || strings.Contains(stderr, "warning") {
		t.Errorf("check with a listening target: %d %q", code, stderr)
	}
}

// check shows the TLS floor, the default certificate and HSTS hosts.
func TestCheckShowsTLSPolicy(t *testing.T) {
	path := oneporttest.WriteConfig(t, "[tls]\nmin_version = \"1.3\"\nhsts = [\"llm.example.com\"]\n")
	code, out, stderr := runCmd("check", "--config", path)
	if code != 0 || !strings.Contains(out, "TLS 1.3+, AEAD suites only") || !strings.Contains(out, "HSTS for llm.example.com") {
		t.Errorf("check: %d\n%s%s", code, out, stderr)
	}
	path = oneporttest.WriteConfig(t, "[tls]\nmin_version = \"1.1\"\n")
	if code, _, stderr := runCmd("check", "--config", path); code == 0 || !strings.Contains(stderr, `min_version "1.1"`) {
		t.Errorf("min_version 1.1 accepted: %d %s", code, stderr)
	}
}
