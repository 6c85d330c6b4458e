package daemon

// All of oneport's TLS and certificate wiring: the terminator built from
// [tls], its reload, the ACME HTTP-01 and https-redirect helpers, the
// passthrough routes, and the certificate listing of `oneport certs`,
// the admin API and the metrics.

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/oneport/oneport/internal/certs"
	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/mux"
	"github.com/oneport/oneport/sshfwd"
)

// tlsTarget is the mux's TLS target after the passthrough routes: the
// terminator, which a reload may replace.
type tlsTarget struct {
	term atomic.Pointer[terminator]
}

// terminator is the certificates in use and the mux target that
// terminates TLS with them.
type terminator struct {
	*certs.Manager
	*mux.TLSTerminator
}

func (t *tlsTarget) HandleConn(c net.Conn) {
	if term := t.term.Load(); term != nil {
		term.HandleConn(c)
		return
	}
	c.Close()
}

func (t *tlsTarget) String() string { return "tls" }

// setTLS builds the TLS terminator for cfg and swaps it in. If it cannot
// be built, TLS connections are refused with an error in the log, and
// everything else keeps serving: TLS must never cost the box its SSH.
func (s *server) setTLS(ctx context.Context, cfg *config.Config) {
	t, err := newTLS(ctx, cfg, listenPort(s.addr), s.http, &s.ssh, s.log)
	if err != nil {
		s.log.Error("TLS disabled", "err", err)
	} else if t != nil && t.CA != nil {
		s.log.Info("TLS terminated with the internal CA; trust its root with `oneport ca`", "fingerprint", t.CA.Fingerprint())
	}
	if old := s.tls.term.Swap(t); old != nil {
		old.Close()
	}
}

// reloadTLS rebuilds the terminator when what it serves changed, and
// otherwise rereads the certificate files.
func (s *server) reloadTLS(old, cur *config.Config) {
	if fmt.Sprint(old.TLS, old.StateDir, routeHosts(old)) != fmt.Sprint(cur.TLS, cur.StateDir, routeHosts(cur)) {
		s.setTLS(context.Background(), cur)
	} else if t := s.tls.term.Load(); t != nil {
		t.ReloadFiles()
	}
}

func (s *server) closeTLS() {
	if t := s.tls.term.Swap(nil); t != nil {
		t.Close()
	}
}

func (s *server) tlsOn() bool { return s.tls.term.Load() != nil }

// serveTLSHelpers answers plain-HTTP requests that TLS owns: the https
// redirect of [tls] redirect_http and ACME HTTP-01 challenges. It reports
// whether it answered.
func (s *server) serveTLSHelpers(w http.ResponseWriter, r *http.Request) bool {
	if httpsRedirect(s.config(), w, r) {
		return true
	}
	if t := s.tls.term.Load(); t != nil && strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
		t.HTTPChallenge(s.handler).ServeHTTP(w, r)
		return true
	}
	return false
}

// newTLS builds the terminator the config asks for; nil when TLS is off.
func newTLS(ctx context.Context, cfg *config.Config, port int, http, ssh mux.Target, log *slog.Logger) (*terminator, error) {
	t := cfg.TLS
	if t.Source == "off" {
		return nil, nil
	}
	opts := certs.Options{
		StateDir:   cfg.StateDir,
		Source:     t.Source,
		Hosts:      append(slices.Clone(t.Hosts), routeHosts(cfg)...),
		Logger:     log,
		DefaultSNI: t.DefaultSNI, MinVersion: t.MinVersion,
		ACME: certs.ACMEOptions{
			CA: t.ACMECA, Email: t.ACMEEmail, Profile: t.ACMEProfile, IPProfile: t.ACMEIPProfile,
			HTTPPort: port, TLSPort: port,
		},
	}
	for _, s := range t.IPs {
		opts.IPs = append(opts.IPs, net.ParseIP(s))
	}
	if t.DNSServer != "" {
		opts.ACME.DNS = &certs.RFC2136{Server: t.DNSServer, KeyName: t.DNSKeyName, Key: t.DNSKey, KeyAlg: t.DNSKeyAlg}
		opts.ACME.DNSResolvers, opts.ACME.SkipDNSPropagationCheck = t.DNSResolvers, t.DNSNoWait
	}
	for _, ce := range t.Certs {
		opts.Files = append(opts.Files, certs.CertFile{Cert: ce.Cert, Key: ce.Key})
	}
	if t.ACMECARoot != "" {
		pem, err := os.ReadFile(t.ACMECARoot)
		if err != nil {
			return nil, fmt.Errorf("tls acme_ca_root: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls acme_ca_root %s: no PEM certificate", t.ACMECARoot)
		}
		opts.ACME.TrustedRoots = pool
	}
	m, err := certs.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &terminator{m, &mux.TLSTerminator{Config: m.TLSConfig(), HTTP: http, SSH: ssh,
		SniffTimeout: time.Duration(cfg.SniffTimeout), Logger: log}}, nil
}

// httpsRedirect answers plain-HTTP requests for hosts listed in [tls]
// redirect_http with a permanent redirect to the same URL over https, on
// the same host and port (TLS arrives on the one port too). It reports
// whether it answered.
func httpsRedirect(cfg *config.Config, w http.ResponseWriter, r *http.Request) bool {
	if len(cfg.TLS.RedirectHTTP) == 0 || r.TLS != nil || cfg.TLS.Source == "off" {
		return false
	}
	if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if !slices.ContainsFunc(cfg.TLS.RedirectHTTP, func(h string) bool { return strings.EqualFold(h, host) }) {
		return false
	}
	u := *r.URL
	u.Scheme, u.Host = "https", r.Host
	http.Redirect(w, r, u.String(), http.StatusPermanentRedirect)
	return true
}

// routeHosts are the exact host names of routes: each gets a certificate.
func routeHosts(cfg *config.Config) []string {
	var out []string
	seen := map[string]bool{}
	add := func(h string) {
		h = strings.ToLower(h)
		if h == "" || strings.Contains(h, "*") || net.ParseIP(strings.Trim(h, "[]")) != nil || seen[h] {
			return
		}
		seen[h] = true
		out = append(out, h)
	}
	for _, r := range cfg.Routes {
		add(r.Host)
	}
	for _, s := range cfg.RouteSpecs {
		if i := strings.IndexAny(s, "/=~"); i > 0 {
			add(s[:i])
		}
	}
	return out
}

// passthroughRoutes turns [[tls.passthrough]] into SNI routes.
func passthroughRoutes(cfg *config.Config, log *slog.Logger) []mux.SNIRoute {
	var out []mux.SNIRoute
	for _, p := range cfg.TLS.Passthrough {
		out = append(out, mux.SNIRoute{SNI: p.SNI, ALPN: p.ALPN,
			Target: &sshfwd.Forwarder{Addr: p.Upstream, Name: "tls passthrough " + p.Upstream, Logger: log}})
	}
	return out
}

func listenPort(a net.Addr) int {
	_, p, _ := net.SplitHostPort(a.String())
	n, _ := strconv.Atoi(p)
	return n
}

// RootCA returns the internal CA's root certificate (PEM) and its SHA-256
// fingerprint, creating the CA in stateDir on first use.
func RootCA(stateDir string) (pem []byte, fingerprint string, err error) {
	ca, err := certs.LoadCA(stateDir)
	if err != nil {
		return nil, "", err
	}
	return ca.RootPEM(), ca.Fingerprint(), nil
}

// CertInfo describes one certificate for `oneport certs` and the admin
// API.
type CertInfo struct {
	Names   string    `json:"names"`
	Issuer  string    `json:"issuer"`
	Source  string    `json:"source"`
	Expires time.Time `json:"expires"`
}

// ListCerts lists the certificates certmagic keeps in stateDir and the
// certificate files given, sorted by names. Unreadable files are passed to
// onErr when it is set, and skipped.
func ListCerts(stateDir string, files []config.CertFile, onErr func(string, error)) []CertInfo {
	var out []CertInfo
	add := func(path, source string) {
		c, err := readCert(path)
		if err != nil {
			if onErr != nil {
				onErr(path, err)
			}
			return
		}
		names := slices.Clone(c.DNSNames)
		for _, ip := range c.IPAddresses {
			names = append(names, ip.String())
		}
		out = append(out, CertInfo{Names: strings.Join(names, ","), Issuer: c.Issuer.CommonName, Source: source, Expires: c.NotAfter})
	}
	root := filepath.Join(stateDir, "certmagic", "certificates")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".crt") {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		source := "acme " + strings.SplitN(rel, string(filepath.Separator), 2)[0]
		if strings.HasPrefix(rel, "oneport-internal") {
			source = "internal"
		}
		add(p, source)
		return nil
	})
	for _, ce := range files {
		add(ce.Cert, "files")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Names < out[j].Names })
	return out
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for len(b) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
	return nil, errors.New("no certificate in file")
}

// WriteCerts writes certs as the table `oneport certs` prints, marking
// those expired at now.
func WriteCerts(w io.Writer, certs []CertInfo, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMES\tISSUER\tSOURCE\tEXPIRES")
	for _, c := range certs {
		exp := c.Expires.Format(time.RFC3339)
		if now.After(c.Expires) {
			exp += " (EXPIRED)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Names, c.Issuer, c.Source, exp)
	}
	tw.Flush()
}
