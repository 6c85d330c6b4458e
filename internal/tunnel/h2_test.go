package tunnel_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/auth"
	"github.com/oneport/oneport/internal/tunnel"
	"github.com/oneport/oneport/internal/xconnect"
)

// The tunnel serves WebSockets over HTTP/2 (RFC 8441): over TLS with ALPN
// h2 and over h2c, and the session line says which protocol it came on.
// The client's extended CONNECT fails unless the server's SETTINGS enable
// it, so this also fails if extended CONNECT is ever off.
func TestTunnelOverHTTP2(t *testing.T) {
	if !xconnect.Enabled() {
		t.Fatalf("GODEBUG=%q: extended CONNECT is off in this test binary", os.Getenv("GODEBUG"))
	}
	echo := echoServer(t)
	b := startBox(t, "127.0.0.1:0", t.TempDir(), "--ssh", echo, "--tunnel-target", echo)
	for _, scheme := range []string{"https", "http"} {
		t.Run(scheme, func(t *testing.T) {
			c := client(t, scheme+"://"+b.Addr)
			c.HTTP2 = true
			roundTrip(t, c, "SSH-2.0-test\r\nhello over "+scheme+" h2")
			c.Target = echo
			roundTrip(t, c, "to an allowed target")
		})
	}
	for range 4 {
		if !b.Log.WaitFor("tunnel session ended", 5*time.Second, nil) {
			t.Fatal("no session line")
		}
		if strings.Count(b.Log.String(), "tunnel session ended") >= 4 {
			break
		}
	}
	if line := lineWith(b.Log.String(), "tunnel session ended"); !contains(line, "proto=HTTP/2", "rx_bytes=", "target=ssh") {
		t.Errorf("session line does not say HTTP/2: %s", line)
	}
}

// Refusals keep their statuses over HTTP/2, and the client names the hop.
func TestTunnelRefusalsOverHTTP2(t *testing.T) {
	echo := echoServer(t)
	b := startBox(t, "127.0.0.1:0", t.TempDir(), "--ssh", "127.0.0.1:1", "--tunnel-target", echo)
	h2 := func(path string) *tunnel.Client {
		c := client(t, "https://"+b.Addr+path)
		c.HTTP2 = true
		return c
	}
	t.Run("403", func(t *testing.T) {
		c := h2("")
		c.Target = "127.0.0.1:9"
		_, err := c.Dial(context.Background())
		wantHop(t, err, "target", "403")
	})
	t.Run("502", func(t *testing.T) {
		_, err := h2("").Dial(context.Background())
		wantHop(t, err, "target", "502", "connection refused")
	})
	t.Run("no tunnel", func(t *testing.T) {
		_, err := h2("/elsewhere").Dial(context.Background())
		wantHop(t, err, "oneport", "no tunnel")
	})
	t.Run("401", func(t *testing.T) {
		keyFile := filepath.Join(t.TempDir(), "keys")
		keys, key, err := auth.Add(nil, auth.Spec{Name: "tunnel"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, keyFile, auth.FormatStore(keys))
		keyed := startBox(t, "127.0.0.1:0", t.TempDir(), "--ssh", echo, "--key-file", keyFile)
		c := client(t, "https://"+keyed.Addr)
		c.HTTP2 = true
		_, err = c.Dial(context.Background())
		wantHop(t, err, "oneport", "401")
		c.Key = key
		roundTrip(t, c, "with the key")
	})
}
