package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/oneport/oneport/internal/loadtest"
)

// tlsFigures measures full TLS handshakes and keep-alive HTTPS requests
// through oneport (terminating with its internal CA, then proxying to the
// plain HTTP backend) against a Go TLS server serving the same backend
// directly, in the same run.
func tlsFigures(bin string, o options) ([]row, error) {
	b, err := startBackends()
	if err != nil {
		return nil, err
	}
	defer b.stop()
	backend, direct := b.http, b.https
	d, err := startOneport(bin, "--route", "/="+backend)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	ps := []path{{col: colDirect, addr: direct}, {col: colOneport, addr: d.addr}}
	var hs, rps samples
	for run := range o.runs {
		for _, p := range rotated(ps, run) {
			r, err := handshakeRate(p.addr, o.rateDur)
			if err != nil {
				return nil, err
			}
			hs.add(p.col, r)
			if r, _, err = httpLoadScheme("https", p.addr, request{path: "/v1/models"}, 16, true, o.rateDur); err != nil {
				return nil, err
			}
			rps.add(p.col, r)
		}
	}
	return []row{
		{name: "tls full handshakes", unit: "hs/s", v: hs.medians(), higherIsBetter: true},
		{name: "https keep-alive small JSON", unit: "req/s", v: rps.medians(), higherIsBetter: true},
	}, nil
}

// handshakeRate runs 4 clients making full handshakes (no resumption)
// for dur and returns handshakes per second.
func handshakeRate(addr string, dur time.Duration) (float64, error) {
	rate, _, err := runWorkers(4, dur, func() error {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			return err
		}
		return c.Close()
	})
	return rate, err
}

// serveTLSBackend serves the model-server API over TLS on addr, with an
// ECDSA P-256 certificate like the internal CA's.
func serveTLSBackend(addr string) (func(), error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &http.Server{Handler: loadtest.ModelServer(), ErrorLog: log.New(io.Discard, "", 0), TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}
	go s.ServeTLS(ln, "", "")
	return func() { s.Close() }, nil
}
