//go:build unix

package daemon

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/sshtest"
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
	up := newBackend(t)
	path := writeConfig(t, fmt.Sprintf("listen = \"127.0.0.1:0\"\n[tls]\nhsts = [\"llm.example.com\"]\n[[route]]\npath = \"/\"\nupstream = %q\n", up))
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
