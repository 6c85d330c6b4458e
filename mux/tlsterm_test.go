package mux

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/oneport/oneport/internal/sshtest"
	"github.com/oneport/oneport/internal/syncbuf"
)

// connTarget hands every connection it receives to a channel; the test
// closes them.
type connTarget chan net.Conn

func (t connTarget) HandleConn(c net.Conn) { t <- c }

// dialTarget copies each connection to and from addr, as sshfwd does.
type dialTarget struct{ addr string }

func (d dialTarget) HandleConn(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", d.addr)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(up, c)
		up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(c, up)
	<-done
}

// startTerminator serves term behind a Server on 127.0.0.1:0, as oneport
// does, and returns the address.
func startTerminator(t *testing.T, term *TLSTerminator) string {
	t.Helper()
	if term.Config == nil {
		term.Config = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)},
			NextProtos: []string{"h2", "http/1.1", "acme-tls/1"}}
	}
	return startServer(t, &Server{SSH: newEcho("ssh"), TLS: term, Logger: term.Logger})
}

// The terminator sends what it finds inside TLS where it belongs: HTTP by
// ALPN as the *tls.Conn, HTTP and h2c without ALPN as a sniffed *Conn over
// the *tls.Conn, SSH and silent clients to SSH; an ACME TLS-ALPN-01
// handshake and unknown bytes are closed.
func TestTLSTerminatorDispatches(t *testing.T) {
	for _, tc := range []struct {
		name   string
		alpn   []string
		send   string
		target string // "http", "ssh" or "" (closed)
		proto  Protocol
	}{
		{"alpn h2", []string{"h2"}, "", "http", 0},
		{"alpn http/1.1", []string{"http/1.1"}, "", "http", 0},
		{"http inside", nil, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "http", ProtoHTTP},
		{"h2c inside", nil, h2cPreface, "http", ProtoH2C},
		{"ssh inside", nil, "SSH-2.0-client\r\n", "ssh", ProtoSSH},
		{"silent inside", nil, "", "ssh", ProtoSilent},
		{"acme-tls/1", []string{"acme-tls/1"}, "", "", 0},
		{"unknown inside", nil, "\x00\x01garbage\r\n", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			httpc, sshc := make(connTarget, 1), make(connTarget, 1)
			addr := startTerminator(t, &TLSTerminator{HTTP: httpc, SSH: sshc, SniffTimeout: 100 * time.Millisecond})
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: tc.alpn})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc.send != "" {
				io.WriteString(c, tc.send)
			}
			var got net.Conn
			var where string
			select {
			case got = <-httpc:
				where = "http"
			case got = <-sshc:
				where = "ssh"
			case <-readClosed(c):
			case <-time.After(5 * time.Second):
				t.Fatal("the connection went nowhere")
			}
			if where != tc.target {
				t.Fatalf("went to %q, want %q", where, tc.target)
			}
			if got == nil {
				return
			}
			defer got.Close()
			if tc.proto == 0 {
				if _, ok := got.(*tls.Conn); !ok {
					t.Fatalf("target got %T, want *tls.Conn", got)
				}
				return
			}
			mc, ok := got.(*Conn)
			if !ok {
				t.Fatalf("target got %T, want *mux.Conn", got)
			}
			if mc.Sniffed().Proto != tc.proto {
				t.Errorf("sniffed %v, want %v", mc.Sniffed().Proto, tc.proto)
			}
			if _, ok := mc.NetConn().(*tls.Conn); !ok {
				t.Errorf("NetConn is %T, want *tls.Conn", mc.NetConn())
			}
			if tc.send != "" {
				b := make([]byte, len(tc.send))
				if _, err := io.ReadFull(mc, b); err != nil || string(b) != tc.send {
					t.Errorf("target read %q, %v; want the client's bytes replayed", b, err)
				}
			}
		})
	}
}

// readClosed returns a channel closed once c's peer has closed it.
func readClosed(c net.Conn) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c)
		close(done)
	}()
	return done
}

// SSH over TLS: an SSH client over a TLS connection without ALPN, as
// `ssh -o ProxyCommand='openssl s_client ...'` makes, logs in.
func TestSSHOverTLS(t *testing.T) {
	srv := sshtest.StartInProcess(t)
	addr := startTerminator(t, &TLSTerminator{HTTP: connTarget(make(chan net.Conn)), SSH: dialTarget{srv.Addr}})
	tc, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	c, chans, reqs, err := ssh.NewClientConn(tc, addr, srv.Client)
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

// A failed handshake is closed with a log line naming the client and the
// SNI, and the server keeps serving.
func TestTLSTerminatorHandshakeFailure(t *testing.T) {
	logs := &syncbuf.Buffer{}
	httpc := make(connTarget, 1)
	cfg := &tls.Config{NextProtos: []string{"http/1.1"}, GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if h.ServerName == "unknown.example" {
			return nil, io.ErrUnexpectedEOF
		}
		c := selfSigned(t)
		return &c, nil
	}}
	addr := startTerminator(t, &TLSTerminator{Config: cfg, HTTP: httpc,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := tls.Client(raw, &tls.Config{ServerName: "unknown.example", InsecureSkipVerify: true}).Handshake(); err == nil {
		t.Fatal("handshake without a certificate succeeded")
	}
	// The terminator logs, then closes: once the close arrives, the line
	// is there.
	<-readClosed(raw)
	if l := logs.String(); !strings.Contains(l, "tls handshake failed") || !strings.Contains(l, "sni=unknown.example") {
		t.Errorf("handshake failure not logged:\n%s", l)
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("after a failed handshake: %v", err)
	}
	c.Close()
	(<-httpc).Close()
}
