package certs_test

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/certs"
	"github.com/oneport/oneport/internal/certstest"
)

// A client naming a host oneport holds no certificate for (openssl
// s_client -servername anything, as the README's SSH-over-TLS example
// does) gets the box's IP certificate instead of a handshake failure, and
// the name is logged once.
func TestUnknownSNIGetsDefaultCertificate(t *testing.T) {
	st := startTLSStack(t, certs.Options{}, nil)
	for range 3 {
		got, err := certstest.PeerCert(st.addr, "made-up.example")
		if err != nil {
			t.Fatalf("handshake with an unknown name failed: %v\n%s", err, st.logs.String())
		}
		if len(got.IPAddresses) == 0 || !got.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
			t.Fatalf("served %v %v, want the 127.0.0.1 certificate", got.DNSNames, got.IPAddresses)
		}
	}
	if n := strings.Count(st.logs.String(), "sni=made-up.example"); n != 1 {
		t.Fatalf("unknown name logged %d times, want once:\n%s", n, st.logs.String())
	}
	// A verifying client still refuses it: no name is impersonated.
	if c, err := tls.Dial("tcp", st.addr, &tls.Config{ServerName: "made-up.example", RootCAs: certstest.RootPool(t, st.certs.CA)}); err == nil {
		c.Close()
		t.Fatal("a verifying client accepted the default certificate for another name")
	}
}

// tls.default_sni picks which certificate unknown names get, and is held
// without being listed in hosts.
func TestUnknownSNIGetsNamedDefault(t *testing.T) {
	st := startTLSStack(t, certs.Options{DefaultSNI: "box.example"}, nil)
	got, err := certstest.PeerCert(st.addr, "made-up.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.DNSNames) == 0 || got.DNSNames[0] != "box.example" {
		t.Fatalf("served %v, want box.example's certificate", got.DNSNames)
	}
}

// The default configuration refuses TLS 1.0 and 1.1 and every CBC suite,
// as Caddy does; min_version 1.3 refuses TLS 1.2 too.
func TestTLSRefusesOldVersionsAndCBC(t *testing.T) {
	st := startTLSStack(t, certs.Options{}, nil)
	dial := func(cfg *tls.Config) error {
		cfg.InsecureSkipVerify = true
		c, err := tls.Dial("tcp", st.addr, cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	for _, s := range []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256} {
		if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{s}}); err == nil {
			t.Errorf("suite %s accepted", tls.CipherSuiteName(s))
		}
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12}); err != nil {
		t.Errorf("TLS 1.2 with AEAD suites refused: %v", err)
	}
}

// min_version 1.3 refuses TLS 1.2; 1.1 is no choice.
func TestTLSMinVersion13(t *testing.T) {
	st13 := startTLSStack(t, certs.Options{MinVersion: "1.3"}, nil)
	c, err := tls.Dial("tcp", st13.addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err == nil {
		c.Close()
		t.Error("min_version 1.3 accepted TLS 1.2")
	}
	if _, err := certs.New(t.Context(), certs.Options{StateDir: t.TempDir(), MinVersion: "1.1"}); err == nil {
		t.Error("min_version 1.1 accepted")
	}
}

// testssl.sh, the tool people audit a TLS endpoint with, finds no CBC
// suite (its "AVERAGE" category) and no TLS 1.0 or 1.1 on the default
// configuration. Only the protocol and cipher-category checks run; they
// still take a minute or more on a small machine (hundreds of openssl
// runs), so the test runs in parallel with the others.
func TestTestsslFindsNoCBCNorOldTLS(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("testssl")
	if err != nil {
		if bin, err = exec.LookPath("testssl.sh"); err != nil {
			t.Skip("testssl.sh not installed (Debian package testssl.sh)")
		}
	}
	st := startTLSStack(t, certs.Options{}, nil)
	out := filepath.Join(t.TempDir(), "testssl.json")
	cmd := exec.CommandContext(t.Context(), bin, "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none",
		"--protocols", "--std", "--jsonfile", out, st.addr)
	cmd.Env = append(os.Environ(), "TERM=dumb")
	start := time.Now()
	b, err := cmd.CombinedOutput()
	b2, rerr := os.ReadFile(out)
	if rerr != nil {
		t.Fatalf("testssl.sh wrote no JSON (%v): %v\n%s", rerr, err, b)
	}
	var findings []struct{ ID, Severity, Finding string }
	if err := json.Unmarshal(b2, &findings); err != nil {
		t.Fatalf("testssl.sh JSON: %v", err)
	}
	byID := map[string]string{}
	for _, f := range findings {
		byID[f.ID] = f.Finding
	}
	t.Logf("testssl.sh took %v", time.Since(start).Round(time.Second))
	for _, id := range []string{"SSLv2", "SSLv3", "TLS1", "TLS1_1"} {
		if f, ok := byID[id]; !ok || !strings.HasPrefix(f, "not offered") {
			t.Errorf("%s: %q, want not offered", id, f)
		}
	}
	if f := byID["TLS1_2"]; !strings.HasPrefix(f, "offered") {
		t.Errorf("TLS1_2: %q, want offered", f)
	}
	for _, id := range []string{"cipherlist_AVERAGE", "cipherlist_3DES_IDEA", "cipherlist_LOW", "cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT"} {
		if f, ok := byID[id]; !ok || !strings.HasPrefix(f, "not offered") {
			t.Errorf("%s: %q, want not offered", id, f)
		}
	}
	if t.Failed() {
		t.Logf("testssl.sh output:\n%s", b)
	}
}
