package tunnel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/daemon"
	"github.com/oneport/oneport/internal/tunnel"
)

func client(t testing.TB, rawURL string) *tunnel.Client {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return &tunnel.Client{URL: u, Proxy: "direct", Trust: tunnel.Trust{KnownHosts: filepath.Join(t.TempDir(), "known_hosts")}}
}

// roundTrip sends msg through c's tunnel and wants it back (an echo
// target).
func roundTrip(t testing.TB, c *tunnel.Client, msg string) {
	t.Helper()
	conn, err := c.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("got %q back, want %q", got, msg)
	}
}

func TestTunnelToSSHTargetOverHTTPAndHTTPS(t *testing.T) {
	echo := echoServer(t)
	b := startBox(t, "127.0.0.1:0", t.TempDir(), "--ssh", echo)
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			c := client(t, scheme+"://"+b.Addr)
			roundTrip(t, c, "SSH-2.0-test\r\nhello through the tunnel")
		})
	}
	// One line per ended session: target, bytes each way, duration.
	if !b.Log.WaitFor("tunnel session ended", 5*time.Second, nil) {
		t.Fatal("no access log line for the session")
	}
	line := lineWith(b.Log.String(), "tunnel session ended")
	if !contains(line, "target=ssh", "rx_bytes=38", "tx_bytes=38", "duration=") {
		t.Errorf("access log line lacks target, bytes or duration: %s", line)
	}
}

func lineWith(s, sub string) string {
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func TestTunnelRefusals(t *testing.T) {
	echo := echoServer(t)
	down := "127.0.0.1:1" // nothing listens on port 1
	b := startBox(t, "127.0.0.1:0", t.TempDir(), "--ssh", down, "--tunnel-target", echo)

	t.Run("plain request gets 426 and a hint", func(t *testing.T) {
		resp, err := http.Get("http://" + b.Addr + tunnel.DefaultPath)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired || !strings.Contains(string(body), "oneport connect") ||
			resp.Header.Get("Upgrade") != "websocket" {
			t.Errorf("got %s %q (Upgrade %q), want 426 with a hint", resp.Status, body, resp.Header.Get("Upgrade"))
		}
	})
	t.Run("target not allowed gets 403", func(t *testing.T) {
		c := client(t, "http://"+b.Addr)
		c.Target = "127.0.0.1:9"
		_, err := c.Dial(context.Background())
		wantHop(t, err, "target", "403")
	})
	t.Run("allowed target works", func(t *testing.T) {
		c := client(t, "http://"+b.Addr)
		c.Target = echo
		roundTrip(t, c, "allowed")
	})
	t.Run("ssh target down gets 502 with a reason", func(t *testing.T) {
		c := client(t, "http://"+b.Addr)
		_, err := c.Dial(context.Background())
		wantHop(t, err, "target", "502", "connection refused")
		if !b.Log.WaitFor("tunnel target unreachable", 5*time.Second, nil) {
			t.Error("an unreachable SSH target was not logged")
		}
	})
	t.Run("no tunnel at path", func(t *testing.T) {
		c := client(t, "http://"+b.Addr+"/elsewhere")
		_, err := c.Dial(context.Background())
		wantHop(t, err, "oneport", "no tunnel")
	})
	t.Run("nothing listens", func(t *testing.T) {
		c := client(t, "http://"+down)
		_, err := c.Dial(context.Background())
		wantHop(t, err, "connect", "refused")
	})
}

func wantHop(t *testing.T, err error, hop string, subs ...string) {
	t.Helper()
	var he *tunnel.HopError
	if !errors.As(err, &he) || he.Hop != hop || !contains(err.Error(), subs...) {
		t.Fatalf("got %v, want a %q hop error with %q", err, hop, subs)
	}
}

func TestTunnelPathOffAndReload(t *testing.T) {
	echo := echoServer(t)
	b := startBox(t, "127.0.0.1:0", t.TempDir(), "--ssh", echo, "--tunnel-path", "/custom/ssh")
	roundTrip(t, client(t, "http://"+b.Addr+"/custom/ssh"), "custom path")
	c := client(t, "http://"+b.Addr)
	_, err := c.Dial(context.Background())
	wantHop(t, err, "oneport", "no tunnel")

	off := startBox(t, "127.0.0.1:0", t.TempDir(), "--ssh", echo, "--tunnel-path", "off")
	_, err = client(t, "http://"+off.Addr).Dial(context.Background())
	wantHop(t, err, "oneport", "no tunnel")
}

// TestPinOnFirstUseThenRefuseAnotherCA serves two oneports with two
// internal CAs (two state dirs) on the same port, one after the other.
func TestPinOnFirstUseThenRefuseAnotherCA(t *testing.T) {
	echo := echoServer(t)
	known := filepath.Join(t.TempDir(), "known_hosts")
	first := startBox(t, "127.0.0.1:0", t.TempDir(), "--ssh", echo)
	addr := first.Addr
	var notice bytes.Buffer
	c := client(t, "https://"+addr)
	c.Trust = tunnel.Trust{KnownHosts: known, Notice: &notice}
	roundTrip(t, c, "first use")
	_, fp1, err := daemon.RootCA(first.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(notice.String(), "first use", fp1) {
		t.Fatalf("first use did not show the CA's fingerprint %s: %q", fp1, notice.String())
	}
	notice.Reset()
	roundTrip(t, c, "second use, same CA")
	if notice.Len() != 0 {
		t.Errorf("a known CA was announced again: %q", notice.String())
	}
	first.stop()

	second := startBox(t, addr, t.TempDir(), "--ssh", echo)
	_, fp2, err := daemon.RootCA(second.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Dial(context.Background())
	wantHop(t, err, "tls", "MISMATCH", fp1, fp2, known)

	// A root given with --ca is trusted instead of the pin.
	pem, _, _ := daemon.RootCA(second.StateDir)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, caFile, pem)
	c.Trust = tunnel.Trust{CAFile: caFile}
	roundTrip(t, c, "trusted by --ca")
	c.Trust = tunnel.Trust{} // system roots only: refused
	_, err = c.Dial(context.Background())
	wantHop(t, err, "tls", "unknown authority")
}

func TestTunnelMetrics(t *testing.T) {
	echo := echoServer(t)
	conf := filepath.Join(t.TempDir(), "oneport.toml")
	writeFile(t, conf, []byte("metrics_path = \"/metrics\"\n"))
	b := startBox(t, "127.0.0.1:0", t.TempDir(), "--config", conf, "--ssh", echo)
	c := client(t, "http://"+b.Addr)
	conn, err := c.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	scrape := func() string {
		resp, err := http.Get("http://" + b.Addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if m := scrape(); !contains(m, `oneport_tunnel_sessions_total{target="ssh"} 1`, "oneport_tunnel_sessions_open 1") {
		t.Errorf("open session not in metrics:\n%s", grep(m, "oneport_tunnel"))
	}
	conn.Write([]byte("12345"))
	io.ReadFull(conn, make([]byte, 5))
	conn.Close()
	if !b.Log.WaitFor("tunnel session ended", 5*time.Second, nil) {
		t.Fatal("session did not end")
	}
	if m := scrape(); !contains(m, "oneport_tunnel_sessions_open 0", `oneport_tunnel_bytes_total{direction="rx"} 5`) {
		t.Errorf("ended session not in metrics:\n%s", grep(m, "oneport_tunnel"))
	}
}

func grep(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func TestTunnelSettingsReload(t *testing.T) {
	echo := echoServer(t)
	conf := filepath.Join(t.TempDir(), "oneport.toml")
	writeFile(t, conf, []byte("tunnel_path = \"/a\"\n"))
	b := startBox(t, "127.0.0.1:0", t.TempDir(), "--config", conf, "--ssh", echo)
	roundTrip(t, client(t, "http://"+b.Addr+"/a"), "before reload")
	c := client(t, "http://"+b.Addr+"/a")
	c.Target = echo
	_, err := c.Dial(context.Background())
	wantHop(t, err, "target", "403")

	writeFile(t, conf, fmt.Appendf(nil, "tunnel_path = \"/b\"\ntunnel_targets = [%q]\n", echo))
	b.Reload()
	_, err = client(t, "http://"+b.Addr+"/a").Dial(context.Background())
	wantHop(t, err, "oneport", "no tunnel")
	roundTrip(t, client(t, "http://"+b.Addr+"/b"), "after reload")
	c = client(t, "http://"+b.Addr+"/b")
	c.Target = echo
	roundTrip(t, c, "allowed after reload")
}

func TestTunnelRedirectedToHTTPS(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "oneport.toml")
	writeFile(t, conf, []byte("[tls]\nredirect_http = [\"localhost\"]\n"))
	b := startBox(t, "127.0.0.1:0", t.TempDir(), "--config", conf, "--ssh", echoServer(t))
	_, port, _ := strings.Cut(b.Addr, ":")
	_, err := client(t, "http://localhost:"+port).Dial(context.Background())
	wantHop(t, err, "oneport", "redirects the tunnel to https://localhost")
	roundTrip(t, client(t, "https://localhost:"+port), "over https")
}
