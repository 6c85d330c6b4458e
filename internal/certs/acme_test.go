package certs_test

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libdns/libdns"
	"github.com/oneport/oneport/internal/syncbuf"

	"github.com/miekg/dns"

	"github.com/oneport/oneport/internal/certs"
)

// pebble is a running ACME test server.
type pebble struct {
	dir        string // ACME directory URL
	mgmt       string // management address, for the issuing roots
	wfeRoot    *x509.CertPool
	serverLogs *syncbuf.Buffer
	dns        *testDNS
}

func pebbleBinary(t *testing.T) string {
	if p, err := exec.LookPath("pebble"); err == nil {
		return p
	}
	out, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "pebble")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Skip("ACME test skipped: pebble not installed (go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.1)")
	return ""
}

// startPebble runs pebble with its validation pointed at port, resolving
// every name to 127.0.0.1 through a DNS server of the test's own.
//
// pebble's two listening ports are picked free and then bound by pebble,
// so another program may take one in between: pebble then exits with
// "address already in use", and it is started again on other ports. Any
// other exit fails the test.
func startPebble(t *testing.T, port int) *pebble {
	t.Helper()
	bin := pebbleBinary(t)
	dir := t.TempDir()
	certPath, keyPath, wfeCert := writeCertIP(t, dir)
	pool := x509.NewCertPool()
	pool.AddCert(wfeCert)
	p := &pebble{dns: startDNS(t), wfeRoot: pool}
	for try := 1; ; try++ {
		err := p.start(t, bin, filepath.Join(dir, fmt.Sprintf("pebble%d.json", try)), certPath, keyPath, port)
		if err == nil {
			return p
		}
		taken := errors.Is(err, errPebbleExited) && strings.Contains(p.serverLogs.String(), "address already in use")
		if !taken || try == 3 {
			t.Fatalf("pebble did not start: %v\n%s", err, p.serverLogs.String())
		}
		t.Logf("pebble could not bind its ports, starting it on other ports:\n%s", p.serverLogs.String())
	}
}

var errPebbleExited = errors.New("pebble exited")

// start runs pebble once, on newly picked ports, and waits until its
// directory answers; the process is stopped when the test ends.
func (p *pebble) start(t *testing.T, bin, cfgPath, certPath, keyPath string, port int) error {
	listen, mgmt := freeAddr(t), freeAddr(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": certPath, "privateKey": keyPath,
		"httpPort": port, "tlsPort": port,
		"retryAfter":   map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm": "ecdsa",
		"profiles": map[string]any{
			"default":    map[string]any{"description": "default", "validityPeriod": 7776000},
			"shortlived": map[string]any{"description": "short", "validityPeriod": 518400},
		},
	}}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgPath, "-dnsserver", p.dns.addr)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	p.serverLogs = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("pebble log:\n%s", logs.String())
		}
	})
	p.dir, p.mgmt = "https://"+listen+"/dir", mgmt
	// Each try is bounded: the address may be another program's, which
	// need not answer.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.wfeRoot}}}
	defer client.CloseIdleConnections()
	// pebble logs its addresses before it binds them: only an answer
	// tells that it serves. Polled, at most every 50 ms, until it
	// answers, exits, or 10 s pass.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := client.Get(p.dir)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-exited:
			return fmt.Errorf("%w: %v", errPebbleExited, cmd.ProcessState)
		case <-tick.C:
		}
	}
}

// issuingRoot fetches the root pebble signs certificates with.
func (p *pebble) issuingRoot(t *testing.T) *x509.CertPool {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.wfeRoot}}}
	resp, err := client.Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble root: %s", b)
	}
	return pool
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeCertIP(t *testing.T, dir string) (string, string, *x509.Certificate) {
	certPath, keyPath, c := writeCert(t, dir, "wfe", []string{"localhost"}, time.Now().Add(time.Hour))
	// pebble is dialled at 127.0.0.1: add the IP to the certificate.
	key, _ := tls.LoadX509KeyPair(certPath, keyPath)
	tmpl := *c
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	der, err := x509.CreateCertificate(randReader{}, &tmpl, &tmpl, c.PublicKey, key.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	parsed, _ := x509.ParseCertificate(der)
	return certPath, keyPath, parsed
}

// testDNS is the DNS server pebble validates through: every name has
// the A record 127.0.0.1, "test." is a zone with an SOA, and TXT records
// come and go by RFC 2136 updates signed with the TSIG key dnsKeyName.
type testDNS struct {
	addr string
	mu   sync.Mutex
	txt  map[string][]string
}

const dnsKeyName = "oneport-test."

var dnsKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// startDNS serves on one port over UDP and TCP.
func startDNS(t *testing.T) *testDNS {
	t.Helper()
	d := &testDNS{txt: map[string][]string{}}
	// UDP and TCP on one port number: the TCP one may be taken by another
	// socket, so try a few.
	var udp net.PacketConn
	var tcp net.Listener
	for try := 0; ; try++ {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", u.LocalAddr().String())
		if err == nil {
			udp, tcp = u, l
			break
		}
		u.Close()
		if try == 50 {
			t.Fatalf("no port free for both UDP and TCP: %v", err)
		}
	}
	secret := map[string]string{dnsKeyName: dnsKey}
	accept := func(h dns.Header) dns.MsgAcceptAction {
		if int(h.Bits>>11)&0xF == dns.OpcodeUpdate {
			return dns.MsgAccept // the default refuses dynamic updates
		}
		return dns.DefaultMsgAcceptFunc(h)
	}
	su := &dns.Server{PacketConn: udp, Handler: d, TsigSecret: secret, MsgAcceptFunc: accept}
	st := &dns.Server{Listener: tcp, Handler: d, TsigSecret: secret, MsgAcceptFunc: accept}
	go su.ActivateAndServe()
	go st.ActivateAndServe()
	t.Cleanup(func() { su.Shutdown(); st.Shutdown() })
	d.addr = udp.LocalAddr().String()
	return d
}

func (d *testDNS) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if r.Opcode == dns.OpcodeUpdate {
		if r.IsTsig() == nil || w.TsigStatus() != nil {
			m.SetRcode(r, dns.RcodeNotAuth)
			w.WriteMsg(m)
			return
		}
		d.mu.Lock()
		for _, rr := range r.Ns {
			txt, ok := rr.(*dns.TXT)
			if !ok {
				continue
			}
			name, val := strings.ToLower(txt.Hdr.Name), strings.Join(txt.Txt, "")
			if txt.Hdr.Class == dns.ClassINET {
				d.txt[name] = append(d.txt[name], val)
			} else {
				d.txt[name] = slices.DeleteFunc(d.txt[name], func(v string) bool { return v == val })
			}
		}
		d.mu.Unlock()
		m.SetTsig(dnsKeyName, dns.HmacSHA256, 300, time.Now().Unix())
		w.WriteMsg(m)
		return
	}
	if len(r.Question) == 1 {
		q := r.Question[0]
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 1}
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1)})
		case dns.TypeTXT:
			d.mu.Lock()
			for _, v := range d.txt[strings.ToLower(q.Name)] {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{v}})
			}
			d.mu.Unlock()
		case dns.TypeSOA:
			if strings.EqualFold(q.Name, "test.") {
				m.Answer = append(m.Answer, &dns.SOA{Hdr: hdr, Ns: "ns.test.", Mbox: "root.test.", Serial: 1,
					Refresh: 60, Retry: 60, Expire: 600, Minttl: 1})
			}
		}
	}
	w.WriteMsg(m)
}

type randReader struct{}

func (randReader) Read(p []byte) (int, error) { return cryptoRand(p) }

// Certificates from a real ACME server, validated through oneport's one
// port: HTTP-01 and TLS-ALPN-01 each, for a DNS name and for 127.0.0.1.
func TestACMEThroughOnePort(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := ln.Addr().(*net.TCPAddr).Port
			pb := startPebble(t, port)
			st := startTLSStackOn(t, ln, certs.Options{
				Source: certs.SourceACME,
				Hosts:  []string{"acme.test"},
				IPs:    []net.IP{net.IPv4(127, 0, 0, 1)},
				ACME: certs.ACMEOptions{
					CA: pb.dir, TrustedRoots: pb.wfeRoot, Profile: "default",
					HTTPPort: port, TLSPort: port,
					DisableHTTPChallenge:    challenge != "http-01",
					DisableTLSALPNChallenge: challenge != "tls-alpn-01",
				},
			}, nil)
			roots := pb.issuingRoot(t)
			for _, name := range []string{"acme.test", ""} {
				deadline := time.Now().Add(30 * time.Second)
				for {
					c, err := tls.Dial("tcp", st.addr, &tls.Config{ServerName: name, RootCAs: roots,
						NextProtos: []string{"h2"}, InsecureSkipVerify: name == "",
						VerifyConnection: func(cs tls.ConnectionState) error {
							if name != "" {
								return nil
							}
							inter := x509.NewCertPool()
							for _, c := range cs.PeerCertificates[1:] {
								inter.AddCert(c)
							}
							_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "127.0.0.1"})
							return err
						}})
					if err == nil {
						c.Close()
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%q: no certificate from pebble after 30s: %v\n%s", name, err, st.logs.String())
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
			if !strings.Contains(st.logs.String(), "certificate obtained") {
				t.Errorf("issuance not logged:\n%s", st.logs.String())
			}
		})
	}
}

func cryptoRand(p []byte) (int, error) { return cryptorand.Read(p) }

// DNS-01 through RFC 2136 updates: a wildcard certificate, which only
// DNS-01 can get, validated by pebble through the test's DNS server.
func TestACMEDNS01Wildcard(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pb := startPebble(t, 1) // no HTTP-01 or TLS-ALPN-01 can succeed: port 1
	st := startTLSStackOn(t, ln, certs.Options{
		Source: certs.SourceACME,
		Hosts:  []string{"*.wild.test"},
		IPs:    []net.IP{},
		ACME: certs.ACMEOptions{
			CA: pb.dir, TrustedRoots: pb.wfeRoot, Profile: "default",
			DNS:                     &certs.RFC2136{Server: pb.dns.addr, KeyName: dnsKeyName, Key: dnsKey},
			DNSResolvers:            []string{pb.dns.addr},
			SkipDNSPropagationCheck: true,
		},
	}, nil)
	roots := pb.issuingRoot(t)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		c, err := tls.Dial("tcp", st.addr, &tls.Config{ServerName: "any.wild.test", RootCAs: roots})
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no wildcard certificate after 30s: %v\n%s", err, st.logs.String())
		}
	}
	pb.dns.mu.Lock()
	left := len(pb.dns.txt["_acme-challenge.wild.test."])
	pb.dns.mu.Unlock()
	if left != 0 {
		t.Errorf("%d challenge records left behind", left)
	}
}

// Updates with the wrong TSIG key are refused, and the error says so.
func TestRFC2136WrongKey(t *testing.T) {
	d := startDNS(t)
	p := &certs.RFC2136{Server: d.addr, KeyName: dnsKeyName, Key: base64.StdEncoding.EncodeToString([]byte("wrong key wrong key wrong key!!!"))}
	_, err := p.AppendRecords(context.Background(), "test.", []libdns.Record{libdns.TXT{Name: "_acme-challenge.x", Text: "v"}})
	if err == nil {
		t.Fatal("update with the wrong key succeeded")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.txt) != 0 {
		t.Errorf("records changed: %v", d.txt)
	}
}
