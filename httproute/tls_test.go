package httproute_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/syncbuf"

	"golang.org/x/crypto/ssh"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/sshtest"
	"github.com/oneport/oneport/mux"
	"github.com/oneport/oneport/sshfwd"
)

// tlsStack serves the whole oneport data path on 127.0.0.1:0: the mux,
// SNI passthrough, TLS termination, SSH, and HTTP routes.
type tlsStack struct {
	addr string
	tls  *httproute.TLS
	logs *syncbuf.Buffer
}

func startTLSStack(t *testing.T, opts httproute.TLSOptions, passthrough []mux.SNIRoute, routes ...httproute.Route) *tlsStack {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startTLSStackOn(t, ln, opts, passthrough, routes...)
}

func startTLSStackOn(t *testing.T, ln net.Listener, opts httproute.TLSOptions, passthrough []mux.SNIRoute, routes ...httproute.Route) *tlsStack {
	t.Helper()
	st := &tlsStack{logs: &syncbuf.Buffer{}}
	log := slog.New(slog.NewTextHandler(st.logs, nil))
	h, err := httproute.NewHandler(routes, httproute.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	lt := mux.NewListenerTarget("http", ln.Addr())
	if opts.SSH == nil {
		opts.SSH = closeTarget{}
	}
	opts.HTTP, opts.Logger = lt, log
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	if opts.IPs == nil {
		opts.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	st.tls, err = httproute.NewTLS(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httproute.NewServer(st.tls.HTTPChallenge(h), log)
	m := &mux.Server{HTTP: lt, SSH: opts.SSH, TLS: &mux.SNIRouter{Routes: passthrough, Default: st.tls}, Logger: log}
	go hs.Serve(lt)
	go m.Serve(ln)
	t.Cleanup(func() {
		m.Close()
		hs.Close()
		h.CloseIdleConnections()
		st.tls.Close()
		waitCertmagicDone(t)
	})
	st.addr = ln.Addr().String()
	return st
}

func rootPool(t *testing.T, ca *httproute.InternalCA) *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(ca.RootPEM()) {
		t.Fatal("root PEM does not parse")
	}
	return p
}

// A client that trusts only the internal CA's root completes handshakes
// for the box's IP and for a host name, negotiates h2, and reaches the
// routes; X-Forwarded-Proto says https.
func TestInternalCAHandshakeIPAndName(t *testing.T) {
	b := echoBackend(t, "b")
	st := startTLSStack(t, httproute.TLSOptions{Hosts: []string{"llm.example.com"}}, nil, route("/="+hostOf(b)))
	pool := rootPool(t, st.tls.CA)
	for _, name := range []string{"", "llm.example.com", "localhost"} {
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: name},
			ForceAttemptHTTP2: true,
			DialTLSContext:    nil,
		}
		host := "127.0.0.1"
		if name != "" {
			host = name
			tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, st.addr)
			}
		}
		_, port, _ := net.SplitHostPort(st.addr)
		resp, err := (&http.Client{Transport: tr}).Get("https://" + net.JoinHostPort(host, port) + "/v1/models")
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.ProtoMajor != 2 {
			t.Errorf("%q: %s, want HTTP/2", name, resp.Proto)
		}
		if !strings.Contains(body.String(), `"Xfp":"https"`) && !strings.Contains(body.String(), `"xfp":"https"`) {
			t.Errorf("%q: upstream did not see X-Forwarded-Proto https: %s", name, body.String())
		}
	}
}

func TestCARootKeyMode(t *testing.T) {
	dir := t.TempDir()
	ca, err := httproute.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "ca", "root.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("root key mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	again, err := httproute.LoadCA(dir)
	if err != nil || again.Fingerprint() != ca.Fingerprint() {
		t.Fatalf("reloaded CA differs: %v", err)
	}
}

// writeCert writes a self-signed certificate for names to dir and returns
// its paths.
func writeCert(t *testing.T, dir, prefix string, names []string, notAfter time.Time) (string, string, *x509.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), DNSNames: names,
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath := filepath.Join(dir, prefix+".crt"), filepath.Join(dir, prefix+".key")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	c, _ := x509.ParseCertificate(der)
	return certPath, keyPath, c
}

func peerCert(t *testing.T, addr, sni string) (*x509.Certificate, error) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// Certificates from files are served for their names, and replacing the
// files changes what a new handshake sees, with no restart.
func TestFileCertsReloadWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, first := writeCert(t, dir, "site", []string{"files.example.com"}, time.Now().Add(24*time.Hour))
	st := startTLSStack(t, httproute.TLSOptions{Files: []httproute.CertFile{{Cert: certPath, Key: keyPath}}}, nil)
	got, err := peerCert(t, st.addr, "files.example.com")
	if err != nil || !got.Equal(first) {
		t.Fatalf("first handshake: %v", err)
	}
	// Write the new pair elsewhere and move it in, as certbot does.
	newCert, newKey, second := writeCert(t, t.TempDir(), "site", []string{"files.example.com"}, time.Now().Add(48*time.Hour))
	os.Rename(newCert, certPath)
	os.Rename(newKey, keyPath)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err = peerCert(t, st.addr, "files.example.com")
		if err == nil && got.Equal(second) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("new certificate not served after the files changed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A half-written replacement keeps the good certificate in service.
	os.WriteFile(certPath, []byte("-----BEGIN CERTIFICATE-----\ngarbage"), 0o644)
	st.tls.ReloadFiles()
	if got, err = peerCert(t, st.addr, "files.example.com"); err != nil || !got.Equal(second) {
		t.Fatalf("after a bad write: %v", err)
	}
	if !strings.Contains(st.logs.String(), "do not load; still serving the previous certificate") {
		t.Errorf("bad file not logged:\n%s", st.logs.String())
	}
}

// Bad certificate files are clear errors that name the file.
func TestFileCertsBadInput(t *testing.T) {
	dir := t.TempDir()
	goodCert, goodKey, _ := writeCert(t, dir, "good", []string{"a.example"}, time.Now().Add(time.Hour))
	_, otherKey, _ := writeCert(t, dir, "other", []string{"b.example"}, time.Now().Add(time.Hour))
	oldCert, oldKey, _ := writeCert(t, dir, "old", []string{"c.example"}, time.Now().Add(-time.Hour))
	for _, tc := range []struct {
		f    httproute.CertFile
		want string
	}{
		{httproute.CertFile{Cert: goodCert, Key: filepath.Join(dir, "missing.key")}, "missing.key"},
		{httproute.CertFile{Cert: goodCert, Key: otherKey}, "private key does not match public key"},
		{httproute.CertFile{Cert: oldCert, Key: oldKey}, "expired"},
	} {
		_, err := httproute.NewTLS(context.Background(), httproute.TLSOptions{StateDir: t.TempDir(), Files: []httproute.CertFile{tc.f}, IPs: []net.IP{}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want it to say %q", tc.f, err, tc.want)
		}
	}
	good, err := httproute.NewTLS(context.Background(), httproute.TLSOptions{StateDir: t.TempDir(),
		Files: []httproute.CertFile{{Cert: goodCert, Key: goodKey}}, IPs: []net.IP{}})
	if err != nil {
		t.Fatalf("good pair refused: %v", err)
	}
	good.Close()
	waitCertmagicDone(t)
}

// SNI passthrough reaches a TLS backend untouched: the client sees the
// backend's own certificate.
func TestSNIPassthrough(t *testing.T) {
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "jupyter")
	}))
	defer backend.Close()
	st := startTLSStack(t, httproute.TLSOptions{}, []mux.SNIRoute{{
		SNI: "*.jupyter.example", Target: &sshfwd.Forwarder{Addr: hostOf(backendPlain(backend))},
	}})
	got, err := peerCert(t, st.addr, "nb.jupyter.example")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(backend.Certificate()) {
		t.Fatalf("client saw %v, not the backend's certificate", got.Subject)
	}
	// Other names are terminated by oneport.
	got, err = peerCert(t, st.addr, "localhost")
	if err != nil || got.Equal(backend.Certificate()) {
		t.Fatalf("localhost: %v", err)
	}
	// Plain HTTP for a passthrough name is HTTP: oneport's router answers
	// (with no routes, the welcome page), it is never spliced to the TLS
	// backend.
	req, _ := http.NewRequest("GET", "http://"+st.addr+"/", nil)
	req.Host = "nb.jupyter.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "oneport is running") || strings.Contains(string(body), "jupyter") {
		t.Errorf("plain HTTP to a TLS route: %d %q", resp.StatusCode, body)
	}
}

func backendPlain(s *httptest.Server) *httptest.Server {
	return &httptest.Server{URL: strings.Replace(s.URL, "https://", "http://", 1)}
}

// SSH over TLS: an SSH client over a TLS connection without ALPN, as
// `ssh -o ProxyCommand='openssl s_client ...'` makes, logs in.
func TestSSHOverTLS(t *testing.T) {
	srv := sshtest.StartInProcess(t)
	st := startTLSStack(t, httproute.TLSOptions{Hosts: []string{"ssh.example"}, SSH: &sshfwd.Forwarder{Addr: srv.Addr}}, nil)
	tc, err := tls.Dial("tcp", st.addr, &tls.Config{ServerName: "ssh.example", RootCAs: rootPool(t, st.tls.CA)})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	c, chans, reqs, err := ssh.NewClientConn(tc, st.addr, srv.Client)
	if err != nil {
		t.Fatal(err)
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output("echo inside tls")
	if err != nil || string(out) != "inside tls\n" {
		t.Fatalf("%q %v", out, err)
	}
}

// Unknown SNI and truncated ClientHellos fail the handshake with a log
// line; the server keeps serving.
func TestTLSBadInput(t *testing.T) {
	b := echoBackend(t, "b")
	st := startTLSStack(t, httproute.TLSOptions{}, nil, route("/="+hostOf(b)))
	if _, err := peerCert(t, st.addr, "unknown.example"); err == nil {
		t.Error("handshake for an unknown name succeeded")
	}
	c, err := net.Dial("tcp", st.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00})
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.ReadAll(c)
	c.Close()
	// Plain HTTP on the same port still works.
	resp, err := http.Get("http://" + st.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("plain HTTP after bad TLS: %d", resp.StatusCode)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l := st.logs.String()
		if strings.Contains(l, "no certificate available for 'unknown.example'") && strings.Count(l, "tls handshake failed") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("handshake failures not logged:\n%s", l)
		}
	}
}

// waitCertmagicDone waits until no certmagic goroutine that can write
// files is left. Close cancels background obtains and renewals but cannot
// wait for them, and one still winding down could write into the state
// directory after the test has removed it. (Goroutines that keep lock
// files fresh only touch files that exist and end on their own; the
// per-CA rate limiters live for the process and touch no files.)
func waitCertmagicDone(t *testing.T) {
	t.Helper()
	buf := make([]byte, 4<<20)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var busy []string
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "github.com/caddyserver/certmagic.") && !strings.Contains(g, "certmagic.keepLockfileFresh") &&
				!strings.Contains(g, "certmagic.(*RingBufferRateLimiter).loop") {
				busy = append(busy, g)
			}
		}
		if len(busy) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("certmagic goroutines still running 30s after Close:\n%s", strings.Join(busy, "\n\n"))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
