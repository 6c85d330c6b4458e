package certs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/syncbuf"

	"github.com/oneport/oneport/internal/certs"
	"github.com/oneport/oneport/internal/certstest"
	"github.com/oneport/oneport/internal/logtest"
	"github.com/oneport/oneport/mux"
)

// tlsStack serves the TLS part of oneport's data path on 127.0.0.1:0: the
// mux, SNI passthrough, and TLS termination with the Manager's
// certificates, in front of an HTTP server.
type tlsStack struct {
	addr   string
	certs  *certs.Manager
	logs   *syncbuf.Buffer
	logged chan string // each log record's message
}

// waitLog waits for a log record whose message is msg.
func (st *tlsStack) waitLog(t *testing.T, msg string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-st.logged:
			if m == msg {
				return
			}
		case <-timeout:
			t.Fatalf("no %q logged:\n%s", msg, st.logs.String())
		}
	}
}

func startTLSStack(t *testing.T, opts certs.Options, passthrough []mux.SNIRoute) *tlsStack {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startTLSStackOn(t, ln, opts, passthrough)
}

// startTLSStackOn serves on ln; its HTTP server answers "plain" or "tls"
// by how the request arrived, and ACME HTTP-01 challenges.
func startTLSStackOn(t *testing.T, ln net.Listener, opts certs.Options, passthrough []mux.SNIRoute) *tlsStack {
	t.Helper()
	st := &tlsStack{logs: &syncbuf.Buffer{}, logged: make(chan string, 256)}
	log := slog.New(logtest.Notify{Handler: slog.NewTextHandler(st.logs, nil), Logged: st.logged})
	lt := mux.NewListenerTarget("http", ln.Addr())
	opts.Logger = log
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	if opts.IPs == nil {
		opts.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	var err error
	st.certs, err = certs.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	answer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			io.WriteString(w, "tls")
			return
		}
		io.WriteString(w, "plain")
	})
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	hs := &http.Server{Handler: st.certs.HTTPChallenge(answer), Protocols: &protos,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	term := &mux.TLSTerminator{Config: st.certs.TLSConfig(), HTTP: lt, SSH: closeTarget{}, Logger: log}
	m := &mux.Server{HTTP: lt, SSH: closeTarget{}, TLS: &mux.SNIRouter{Routes: passthrough, Default: term}, Logger: log}
	go hs.Serve(lt)
	go m.Serve(ln)
	t.Cleanup(func() {
		m.Close()
		hs.Close()
		st.certs.Close()
		certstest.WaitCertmagicDone(t)
	})
	st.addr = ln.Addr().String()
	return st
}

type closeTarget struct{}

func (closeTarget) HandleConn(c net.Conn) { c.Close() }
func TestCARootKeyMode(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "ca", "root.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("root key mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	again, err := certs.LoadCA(dir)
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

// Certificates from files are served for their names, and replacing the
// files changes what a new handshake sees, with no restart.
func TestFileCertsReloadWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, first := writeCert(t, dir, "site", []string{"files.example.com"}, time.Now().Add(24*time.Hour))
	st := startTLSStack(t, certs.Options{Files: []certs.CertFile{{Cert: certPath, Key: keyPath}}}, nil)
	got, err := certstest.PeerCert(st.addr, "files.example.com")
	if err != nil || !got.Equal(first) {
		t.Fatalf("first handshake: %v", err)
	}
	// Write the new pair elsewhere and move it in, as certbot does.
	newCert, newKey, second := writeCert(t, t.TempDir(), "site", []string{"files.example.com"}, time.Now().Add(48*time.Hour))
	os.Rename(newCert, certPath)
	os.Rename(newKey, keyPath)
	st.waitLog(t, "certificate reloaded") // by the files' watcher
	if got, err = certstest.PeerCert(st.addr, "files.example.com"); err != nil || !got.Equal(second) {
		t.Fatalf("new certificate not served after the files changed: %v", err)
	}
	// A half-written replacement keeps the good certificate in service.
	os.WriteFile(certPath, []byte("-----BEGIN CERTIFICATE-----\ngarbage"), 0o644)
	st.certs.ReloadFiles()
	if got, err = certstest.PeerCert(st.addr, "files.example.com"); err != nil || !got.Equal(second) {
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
		f    certs.CertFile
		want string
	}{
		{certs.CertFile{Cert: goodCert, Key: filepath.Join(dir, "missing.key")}, "missing.key"},
		{certs.CertFile{Cert: goodCert, Key: otherKey}, "private key does not match public key"},
		{certs.CertFile{Cert: oldCert, Key: oldKey}, "expired"},
	} {
		_, err := certs.New(context.Background(), certs.Options{StateDir: t.TempDir(), Files: []certs.CertFile{tc.f}, IPs: []net.IP{}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want it to say %q", tc.f, err, tc.want)
		}
	}
	good, err := certs.New(context.Background(), certs.Options{StateDir: t.TempDir(),
		Files: []certs.CertFile{{Cert: goodCert, Key: goodKey}}, IPs: []net.IP{}})
	if err != nil {
		t.Fatalf("good pair refused: %v", err)
	}
	good.Close()
	certstest.WaitCertmagicDone(t)
}

// A truncated ClientHello fails the handshake with a log line; the
// server keeps serving. (An unknown name gets the default certificate:
// TestUnknownSNIGetsDefaultCertificate.)
func TestTLSBadInput(t *testing.T) {
	st := startTLSStack(t, certs.Options{}, nil)
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
	st.waitLog(t, "tls handshake failed")
}
