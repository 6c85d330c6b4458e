//go:build unix

package daemon

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"

	"github.com/oneport/oneport/internal/auth"
	"github.com/oneport/oneport/internal/conntest"
	"github.com/oneport/oneport/internal/oneporttest"
)

// holdingTarget accepts connections and keeps them open until the test
// ends, standing in for sshd behind the tunnel.
func holdingTarget(t *testing.T) string {
	return conntest.Serve(t, func(c net.Conn) { io.Copy(io.Discard, c); c.Close() })
}

// A key's concurrency limit counts a tunnel session as one request for
// its whole life, over HTTP/1.1 as over HTTP/2, as it counts a proxied
// WebSocket; the slot is free again once the session ends.
func TestTunnelSessionHoldsAConcurrencySlot(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "keys")
	keys, secret, err := auth.Add(nil, auth.Spec{Name: "one", Concurrency: 1}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := (auth.Store{Path: keyFile}).Save(keys); err != nil {
		t.Fatal(err)
	}
	addr := startOneport(t, io.Discard, "--admin-socket", "off", "--key-file", keyFile, "--ssh", holdingTarget(t),
		"--route", "/="+oneporttest.Backend(t, "web"))
	hdr := http.Header{"Authorization": {"Bearer " + secret}}
	get := func() int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/x", nil)
		req.Header = hdr.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// freed waits for the slot to be given back once a session ended:
	// the relay ends a moment after the client closes.
	freed := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for get() != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("the key's slot stayed taken after the %s session ended", what)
			}
		}
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("no session open: %d", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws://"+addr+"/.oneport/ssh", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("HTTP/1.1 tunnel: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("HTTP/1.1 tunnel: %d", resp.StatusCode)
	}
	if code := get(); code != http.StatusTooManyRequests {
		t.Errorf("with an HTTP/1.1 tunnel session open: %d, want 429", code)
	}
	ws.CloseNow()
	freed("HTTP/1.1")

	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, "http://"+addr+"/.oneport/ssh", pr)
	req.Header = hdr.Clone()
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("HTTP/2 tunnel: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP/2 tunnel: %d", resp.StatusCode)
	}
	if code := get(); code != http.StatusTooManyRequests {
		t.Errorf("with an HTTP/2 tunnel session open: %d, want 429", code)
	}
	pw.Close()
	resp.Body.Close()
	freed("HTTP/2")
}
