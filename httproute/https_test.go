package httproute_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/certs"
	"github.com/oneport/oneport/internal/certstest"
	"github.com/oneport/oneport/internal/syncbuf"
	"github.com/oneport/oneport/mux"
	"github.com/oneport/oneport/sshfwd"
)

// tlsStack serves the whole oneport data path on 127.0.0.1:0: the mux,
// SNI passthrough, TLS termination, and HTTP routes.
type tlsStack struct {
	addr  string
	certs *certs.Manager
}

func startTLSStack(t *testing.T, engine string, opts certs.Options, passthrough []mux.SNIRoute, routes ...httproute.Route) *tlsStack {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st := &tlsStack{}
	log := slog.New(slog.NewTextHandler(&syncbuf.Buffer{}, nil))
	h, err := httproute.NewHandler(routes, httproute.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	lt := mux.NewListenerTarget("http", ln.Addr())
	opts.Logger, opts.StateDir = log, t.TempDir()
	if opts.IPs == nil {
		opts.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	st.certs, err = certs.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httproute.NewServer(st.certs.HTTPChallenge(h), log)
	hs.Engine = engine
	term := &mux.TLSTerminator{Config: st.certs.TLSConfig(), HTTP: lt, SSH: closeTarget{}, Logger: log}
	m := &mux.Server{HTTP: lt, SSH: closeTarget{}, TLS: &mux.SNIRouter{Routes: passthrough, Default: term}, Logger: log}
	go hs.Serve(lt)
	go m.Serve(ln)
	t.Cleanup(func() {
		m.Close()
		hs.Close()
		h.CloseIdleConnections()
		st.certs.Close()
		certstest.WaitCertmagicDone(t)
	})
	st.addr = ln.Addr().String()
	return st
}

// A client that trusts only the internal CA's root completes handshakes
// for the box's IP and for a host name, negotiates h2, and reaches the
// routes; X-Forwarded-Proto says https.
func TestInternalCAHandshakeIPAndName(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := echoBackend(t, "b")
		st := startTLSStack(t, engine, certs.Options{Hosts: []string{"llm.example.com"}}, nil, route("/="+hostOf(b)))
		pool := certstest.RootPool(t, st.certs.CA)
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
	})
}

// SNI passthrough reaches a TLS backend untouched: the client sees the
// backend's own certificate.
func TestSNIPassthrough(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "jupyter")
		}))
		defer backend.Close()
		st := startTLSStack(t, engine, certs.Options{}, []mux.SNIRoute{{
			SNI: "*.jupyter.example", Target: &sshfwd.Forwarder{Addr: hostOf(backendPlain(backend))},
		}})
		got, err := certstest.PeerCert(st.addr, "nb.jupyter.example")
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(backend.Certificate()) {
			t.Fatalf("client saw %v, not the backend's certificate", got.Subject)
		}
		// Other names are terminated by oneport.
		got, err = certstest.PeerCert(st.addr, "localhost")
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
	})
}

func backendPlain(s *httptest.Server) *httptest.Server {
	return &httptest.Server{URL: strings.Replace(s.URL, "https://", "http://", 1)}
}
