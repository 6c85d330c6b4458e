// Package certstest holds what tests of TLS serving share: trusting the
// internal CA, reading the certificate a server presents, and waiting for
// certmagic's background work to end before a state directory goes.
package certstest

import (
	"crypto/tls"
	"crypto/x509"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/certs"
)

// RootPool returns a pool trusting only ca's root.
func RootPool(t testing.TB, ca *certs.InternalCA) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(ca.RootPEM()) {
		t.Fatal("root PEM does not parse")
	}
	return p
}

// PeerCert handshakes with addr asking for sni, without verifying, and
// returns the leaf certificate the server presented.
func PeerCert(addr, sni string) (*x509.Certificate, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// WaitCertmagicDone waits until no certmagic goroutine that can write
// files is left. Close cancels background obtains and renewals but cannot
// wait for them, and one still winding down could write into the state
// directory after the test has removed it. (Goroutines that keep lock
// files fresh only touch files that exist and end on their own; the
// per-CA rate limiters live for the process and touch no files.) After 30
// seconds it reports the goroutines left as a test error.
func WaitCertmagicDone(t testing.TB) {
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
