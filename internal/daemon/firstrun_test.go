//go:build unix

package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/closedport"
	"github.com/oneport/oneport/internal/discover/standin"
	"github.com/oneport/oneport/internal/logtest"
	"github.com/oneport/oneport/internal/oneporttest"
	"github.com/oneport/oneport/internal/sshtest"
	"github.com/oneport/oneport/internal/syncbuf"
)

// The README's SSH-over-TLS example, with a server name oneport holds no
// certificate for: OpenSSH through `openssl s_client -servername
// made-up.example` logs in to a real sshd.
func TestOpenSSHOverTLSWithUnknownSNI(t *testing.T) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("skipped: ssh not installed (apt-get install openssh-client)")
	}
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("skipped: openssl not installed (apt-get install openssl)")
	}
	srv := sshtest.StartSSHD(t)
	addr := startOneport(t, io.Discard, "--ssh", srv.Addr, "--admin-socket", "off")
	proxy := fmt.Sprintf("%s s_client -quiet -connect %s -servername made-up.example", openssl, addr)
	cmd := exec.CommandContext(t.Context(), sshBin, "-F", "none", "-i", srv.KeyFile,
		"-o", "ProxyCommand="+proxy,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes",
		srv.User+"@box", "echo", "ssh", "inside", "tls")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ssh inside tls") {
		t.Fatalf("ssh over s_client: %v\n%s", err, out)
	}
}

// [tls] hsts sends Strict-Transport-Security for its hosts over TLS only.
func TestHSTSOnlyOverTLSForListedHosts(t *testing.T) {
	up := oneporttest.EchoBackend(t)
	path := oneporttest.WriteConfig(t, fmt.Sprintf("listen = \"127.0.0.1:0\"\n[tls]\nhsts = [\"llm.example.com\"]\n[[route]]\npath = \"/\"\nupstream = %q\n", up))
	addr := startOneport(t, io.Discard, "--config", path, "--admin-socket", "off")
	get := func(scheme, host string) string {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: host}}
		tr.Dial = func(string, string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", scheme+"://"+host+"/", nil)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Strict-Transport-Security")
	}
	if h := get("https", "llm.example.com"); h != "max-age=31536000" {
		t.Errorf("https listed host: HSTS %q", h)
	}
	if h := get("http", "llm.example.com"); h != "" {
		t.Errorf("plain http: HSTS %q", h)
	}
	if h := get("https", "other.example.com"); h != "" {
		t.Errorf("https other host: HSTS %q", h)
	}
}

// startReloadable is startOneport with a reload trigger; reloaded waits
// for the reload's log line.
func startReloadable(t *testing.T, logs *syncbuf.Buffer, args ...string) (addr string, reload func()) {
	t.Helper()
	load := loader(append([]string{"--listen", "127.0.0.1:0"}, args...)...)
	cfg, res := mustLoad(t, load)
	logged := make(chan string, 64)
	log := slog.New(logtest.Notify{Handler: slog.NewTextHandler(logs, nil), Logged: logged})
	trigger := make(chan struct{})
	addr = oneporttest.Start(t, func(ctx context.Context, ready func(net.Addr)) error {
		return Serve(ctx, cfg, res, log, Options{Load: load, Reload: trigger, OnReady: ready, DiscoverSkip: standin.Foreign})
	})
	return addr, func() {
		trigger <- struct{}{}
		for {
			select {
			case m := <-logged:
				if m == "reloaded" {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no reload logged:\n%s", logs.String())
			}
		}
	}
}

// Routes added with `oneport route add` to a oneport started without
// --config survive a reload (SIGHUP), and the log says they were kept.
func TestRuntimeRoutesSurviveReloadWithoutConfig(t *testing.T) {
	a, b := oneporttest.Backend(t, "a"), oneporttest.Backend(t, "b")
	socket := filepath.Join(t.TempDir(), "admin.sock")
	var logs syncbuf.Buffer
	addr, reload := startReloadable(t, &logs, "--route", "/="+a, "--admin-socket", socket)
	f := &oneporttest.Admin{Addr: addr, Socket: socket}
	if code, body := f.Call(t, "POST", "/routes", fmt.Sprintf(`{"name":"embed","spec":"/embed/=%s"}`, b)); code != 201 {
		t.Fatalf("add: %d %s", code, body)
	}
	reload()
	if got := f.Get(t, "/embed/v1/models"); got != "200 backend b saw /v1/models" {
		t.Fatalf("after reload the runtime route is gone: %s\n%s", got, logs.String())
	}
	if l := logs.String(); !strings.Contains(l, "routes kept as they are") || !strings.Contains(l, "changed_at_runtime=[embed]") {
		t.Errorf("the log does not say the runtime routes were kept:\n%s", l)
	}
}

// With a config file, a reload reads the routes from it, and warns about
// runtime changes that were not persisted, naming them.
func TestReloadWarnsOfUnpersistedRouteChanges(t *testing.T) {
	a, b := oneporttest.Backend(t, "a"), oneporttest.Backend(t, "b")
	socket := filepath.Join(t.TempDir(), "admin.sock")
	path := oneporttest.WriteConfig(t, fmt.Sprintf("[[route]]\nname = \"chat\"\npath = \"/\"\nupstream = %q\n", a))
	var logs syncbuf.Buffer
	addr, reload := startReloadable(t, &logs, "--config", path, "--admin-socket", socket)
	f := &oneporttest.Admin{Addr: addr, Socket: socket}
	if code, body := f.Call(t, "POST", "/routes", fmt.Sprintf(`{"name":"embed","spec":"/embed/=%s"}`, b)); code != 201 {
		t.Fatalf("add: %d %s", code, body)
	}
	reload()
	if l := logs.String(); !strings.Contains(l, "without --persist were replaced") || !strings.Contains(l, "dropped_changes=[embed]") {
		t.Errorf("no warning naming the dropped route:\n%s", l)
	}
}

// oneport starts, with a warning, when nothing listens at the SSH target.
func TestStartWarnsWhenNothingListensAtSSHTarget(t *testing.T) {
	dead := closedport.Addr(t)
	var logs syncbuf.Buffer
	startOneport(t, &logs, "--ssh", dead, "--admin-socket", "off")
	if l := logs.String(); !strings.Contains(l, "level=WARN msg=\"ssh target not listening\" ssh="+dead) {
		t.Errorf("no warning at start:\n%s", l)
	}
}
