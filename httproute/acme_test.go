package httproute_test

import (
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/syncbuf"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/oneport/oneport/httproute"
)

// pebble is a running ACME test server.
type pebble struct {
	dir        string // ACME directory URL
	mgmt       string // management address, for the issuing roots
	wfeRoot    *x509.CertPool
	serverLogs *syncbuf.Buffer
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
func startPebble(t *testing.T, port int) *pebble {
	t.Helper()
	bin := pebbleBinary(t)
	dir := t.TempDir()
	certPath, keyPath, wfeCert := writeCertIP(t, dir)
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
	cfgPath := filepath.Join(dir, "pebble.json")
	os.WriteFile(cfgPath, b, 0o600)
	dns := startDNS(t)
	cmd := exec.Command(bin, "-config", cfgPath, "-dnsserver", dns)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble log:\n%s", logs.String())
		}
	})
	pool := x509.NewCertPool()
	pool.AddCert(wfeCert)
	p := &pebble{dir: "https://" + listen + "/dir", mgmt: mgmt, wfeRoot: pool, serverLogs: logs}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := client.Get(p.dir)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not start: %v\n%s", err, logs.String())
		}
	}
	return p
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

// startDNS answers A queries with 127.0.0.1 and everything else with an
// empty answer, over UDP and TCP on one port.
func startDNS(t *testing.T) string {
	t.Helper()
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
	t.Cleanup(func() { udp.Close(); tcp.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply := dnsAnswer(buf[:n]); reply != nil {
				udp.WriteTo(reply, from)
			}
		}
	}()
	go func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				q := make([]byte, int(l[0])<<8|int(l[1]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				if reply := dnsAnswer(q); reply != nil {
					c.Write(append([]byte{byte(len(reply) >> 8), byte(len(reply))}, reply...))
				}
			}()
		}
	}()
	return udp.LocalAddr().String()
}

func dnsAnswer(q []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) == 0 {
		return nil
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
	b.EnableCompression()
	b.StartQuestions()
	b.Question(qs[0])
	b.StartAnswers()
	if qs[0].Type == dnsmessage.TypeA {
		b.AResource(dnsmessage.ResourceHeader{Name: qs[0].Name, Class: dnsmessage.ClassINET, TTL: 60},
			dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
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
			st := startTLSStackOn(t, ln, httproute.TLSOptions{
				Source: httproute.SourceACME,
				Hosts:  []string{"acme.test"},
				IPs:    []net.IP{net.IPv4(127, 0, 0, 1)},
				ACME: httproute.ACMEOptions{
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
