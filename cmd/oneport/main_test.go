//go:build unix

package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/daemon"
	"github.com/oneport/oneport/internal/discover/standin"
	"github.com/oneport/oneport/internal/oneporttest"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestCheckReportsLineNumberedErrors(t *testing.T) {
	path := oneporttest.WriteConfig(t, `listen = ":2222"
ssh = "127.0.0.1"
colour = "blue"

[[route]]
path = "/ok"
upstream = "127.0.0.1:30001"

[[route]]
path = "/embed"
upstream = "ftp://127.0.0.1:30000"
`)
	code, _, stderr := runCmd("check", "--config", path)
	if code == 0 {
		t.Fatal("check accepted an unknown key")
	}
	if !strings.Contains(stderr, path+`:3: unknown key "colour"`) {
		t.Errorf("unknown key not reported with its line:\n%s", stderr)
	}
	// Unknown keys stop decoding; fix it and see the value errors.
	os.WriteFile(path, bytes.Replace(mustRead(t, path), []byte("colour = \"blue\"\n"), nil, 1), 0o600)
	code, _, stderr = runCmd("check", "--config", path)
	for _, want := range []string{path + `:2: ssh "127.0.0.1": want host:port`, path + `:8: route 2:`, `scheme "ftp" not supported`} {
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("missing %q in:\n%s", want, stderr)
		}
	}
}

func TestCheckBadDurationNamesKeyAndLine(t *testing.T) {
	path := oneporttest.WriteConfig(t, "listen = \":1\"\nsniff_timeout = \"2 seconds\"\n")
	code, _, stderr := runCmd("check", "--config", path)
	if code == 0 || !strings.Contains(stderr, path+":2: sniff_timeout:") {
		t.Fatalf("code %d:\n%s", code, stderr)
	}
}

func TestCheckPrintsResolvedRoutes(t *testing.T) {
	path := oneporttest.WriteConfig(t, `
[[route]]
path = "/"
upstream = "127.0.0.1:30000"

[[route]]
path = "/embedding-model/"
upstream = ["127.0.0.1:30001", "127.0.0.1:30002"]

[[route]]
host = "llm.example.com"
path = "=/health"
upstream = "http://127.0.0.1:8000"

[[protocol]]
name = "openvpn"
prefix_hex = "000e38"
target = "127.0.0.1:1194"
`)
	code, stdout, stderr := runCmd("check", "--config", path)
	if code != 0 {
		t.Fatalf("check failed: %s", stderr)
	}
	host := strings.Index(stdout, "llm.example.com")
	embed := strings.Index(stdout, "/embedding-model/")
	root := strings.Index(stdout, "127.0.0.1:30000")
	if host < 0 || embed < 0 || root < 0 || !(host < embed && embed < root) {
		t.Errorf("routes not listed in match order:\n%s", stdout)
	}
	if !strings.Contains(stdout, "openvpn -> 127.0.0.1:1194") {
		t.Errorf("protocol missing:\n%s", stdout)
	}
}

func TestBadFlagsExitNonZero(t *testing.T) {
	for _, args := range [][]string{
		{"--listen", "nope"},
		{"--route", "/x"},
		{"--sniff-timeout", "-1s"},
		{"--log-format", "xml"},
		{"--fallback", "somewhere"},
		{"stray"},
	} {
		code, _, stderr := runCmd(args...)
		if code == 0 || stderr == "" {
			t.Errorf("%v: code %d, stderr %q", args, code, stderr)
		}
	}
}

// userFlags are the flags users have: none may go missing.
var userFlags = []string{"--config", "--listen", "--ssh", "--route", "--sniff-timeout", "--on-timeout", "--redirect", "--redirect-interface", "--redirect-address", "--redirect-local", "--transparent", "--state-dir", "--admin-socket",
	"--fallback", "--max-pending-sniffs", "--max-conns", "--shutdown-grace", "--log-format", "--log-level"}

func TestVersionAndHelp(t *testing.T) {
	if code, out, _ := runCmd("version"); code != 0 || !strings.HasPrefix(out, "oneport ") {
		t.Errorf("version: %d %q", code, out)
	}
	code, out, _ := runCmd("--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	// Every flag the parser knows is documented in --help, and every
	// flag there is is one of the settings table's.
	for _, f := range userFlags {
		if !strings.Contains(out, f+" ") {
			t.Errorf("--help does not document %s", f)
		}
	}
	flags := map[string]bool{"--config": true}
	for _, st := range config.Settings {
		if st.Flag != "" {
			flags["--"+st.Flag] = true
		}
	}
	for _, f := range userFlags {
		if !flags[f] {
			t.Errorf("%s is no longer a flag", f)
		}
	}
}

// startOneport runs the daemon in-process on a loopback port and stops it
// when the test ends.
func startOneport(t *testing.T, logs io.Writer, args ...string) string {
	t.Helper()
	args = append([]string{"--listen", "127.0.0.1:0"}, args...)
	cfg, res, err := config.LoadFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	log, _ := daemon.NewLogger(cfg, logs)
	opts := daemon.Options{Load: func() (*config.Config, *config.Resolved, error) { return config.LoadFlags(args) },
		DiscoverSkip: standin.Foreign} // other processes' listeners are not ours to probe
	return oneporttest.Start(t, func(ctx context.Context, ready func(net.Addr)) error {
		opts.OnReady = ready
		return daemon.Serve(ctx, cfg, res, log, opts)
	})
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The config the package ships is valid and asks for the crash-safe
// redirect of port 22.
func TestPackagedConfigIsValid(t *testing.T) {
	code, out, errOut := runCmd("check", "--config", "../../packaging/oneport.toml")
	if code != 0 || !strings.Contains(out, "redirect       tcp ports [22]") {
		t.Fatalf("code %d\n%s%s", code, out, errOut)
	}
}

// oneport install --write lays out what the .deb installs, pointing the
// unit at this binary, and never overwrites the user's configuration.
func TestInstallWrite(t *testing.T) {
	root := t.TempDir()
	code, out, errOut := runCmd("install", "--write", "--root", root)
	if code != 0 {
		t.Fatalf("code %d\n%s%s", code, out, errOut)
	}
	unit := string(mustRead(t, filepath.Join(root, "etc/systemd/system/oneport.service")))
	self, _ := os.Executable()
	self, _ = filepath.EvalSymlinks(self)
	if !strings.Contains(unit, "ExecStart="+self+" --config") || strings.Contains(unit, "/usr/bin/oneport") {
		t.Errorf("unit does not run this binary:\n%s", unit)
	}
	for _, f := range []string{"etc/systemd/system/oneport.socket", "etc/oneport/oneport.toml", "etc/default/oneport"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Error(err)
		}
	}
	cfg := filepath.Join(root, "etc/oneport/oneport.toml")
	os.WriteFile(cfg, []byte("# mine\n"), 0o644)
	if code, out, _ := runCmd("install", "--write", "--root", root); code != 0 || !strings.Contains(out, "kept") {
		t.Fatalf("second install: %d %s", code, out)
	}
	if string(mustRead(t, cfg)) != "# mine\n" {
		t.Error("install overwrote the user's config")
	}
	if code, out, _ := runCmd("install"); code != 0 || !strings.Contains(out, "# ==> /etc/systemd/system/oneport.service <==") {
		t.Errorf("install without --write: %d\n%s", code, out)
	}
}

// oneport ca prints the root as PEM on stdout and its fingerprint on
// stderr, the same root every time.
func TestCACommand(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCmd("ca", "--state-dir", dir)
	if code != 0 || !strings.HasPrefix(out, "-----BEGIN CERTIFICATE-----") || !strings.Contains(errOut, "SHA-256 fingerprint: ") {
		t.Fatalf("code %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	if _, again, _ := runCmd("ca", "--state-dir", dir); again != out {
		t.Error("a second call printed another root")
	}
	if code, out, _ := runCmd("certs", "--state-dir", dir); code != 0 || !strings.Contains(out, "no certificates") {
		t.Errorf("certs on an empty state dir: %d %q", code, out)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	path := oneporttest.WriteConfig(t, `[tls]
source = "letsencrypt"
ips = ["not-an-ip"]
[[tls.passthrough]]
sni = "[bad"
upstream = "127.0.0.1:8888"
[[tls.cert]]
cert = "/x.pem"
`)
	code, _, stderr := runCmd("check", "--config", path)
	for _, want := range []string{path + `:2: tls source "letsencrypt"`, `"not-an-ip" is not an IP`, "syntax error in pattern", "tls cert 1: needs cert and key"} {
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("missing %q in:\n%s", want, stderr)
		}
	}
}

func TestDNS01ConfigErrors(t *testing.T) {
	path := oneporttest.WriteConfig(t, `[tls]
source = "acme"
hosts = ["*.a.example"]
`)
	if code, _, errOut := runCmd("check", "--config", path); code == 0 || !strings.Contains(errOut, "need DNS-01") {
		t.Errorf("wildcard without DNS-01 accepted: %s", errOut)
	}
	path = oneporttest.WriteConfig(t, `[tls]
source = "acme"
dns_update_server = "ns1.example:53"
dns_update_key_name = "k."
dns_update_key = "not base64!"
`)
	if code, _, errOut := runCmd("check", "--config", path); code == 0 || !strings.Contains(errOut, "not base64") {
		t.Errorf("bad key accepted: %s", errOut)
	}
}
