package main

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
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
	"github.com/oneport/oneport/mux"
	"github.com/oneport/oneport/sshfwd"
)

// tlsSection is the [tls] table of the config file.
type tlsSection struct {
	Source        string        `toml:"source"`
	Hosts         []string      `toml:"hosts"`
	IPs           []string      `toml:"ips"`
	ACMECA        string        `toml:"acme_ca"`
	ACMEEmail     string        `toml:"acme_email"`
	ACMEProfile   string        `toml:"acme_profile"`
	ACMEIPProfile string        `toml:"acme_ip_profile"`
	ACMECARoot    string        `toml:"acme_ca_root"`
	RedirectHTTP  []string      `toml:"redirect_http"`
	DNSServer     string        `toml:"dns_update_server"`
	DNSKeyName    string        `toml:"dns_update_key_name"`
	DNSKey        string        `toml:"dns_update_key"`
	DNSKeyAlg     string        `toml:"dns_update_key_alg"`
	DNSResolvers  []string      `toml:"dns_resolvers"`
	DNSNoWait     bool          `toml:"dns_skip_propagation_check"`
	Certs         []certEntry   `toml:"cert"`
	Passthrough   []passthrough `toml:"passthrough"`
}

type certEntry struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

type passthrough struct {
	SNI      string `toml:"sni"`
	ALPN     string `toml:"alpn"`
	Upstream string `toml:"upstream"`
}

// defaultStateDir is systemd's StateDirectory when set, /var/lib/oneport
// for root, else $XDG_DATA_HOME/oneport.
func defaultStateDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0]
	}
	if os.Geteuid() == 0 {
		return "/var/lib/oneport"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "oneport")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "oneport")
}

// validateTLS checks the [tls] table.
func (c *Config) validateTLS(bad func(key, format string, args ...any)) {
	t := c.TLS
	switch t.Source {
	case "", "internal", "acme", "off":
	default:
		bad("tls.source", "tls source %q: want internal, acme or off", t.Source)
	}
	for _, ip := range t.IPs {
		if net.ParseIP(ip) == nil {
			bad("tls.ips", "tls ips: %q is not an IP address", ip)
		}
	}
	for i, ce := range t.Certs {
		if ce.Cert == "" || ce.Key == "" {
			bad(fmt.Sprintf("tls.cert.%d", i+1), "tls cert %d: needs cert and key", i+1)
		}
	}
	for i, p := range t.Passthrough {
		key := fmt.Sprintf("tls.passthrough.%d", i+1)
		if p.SNI == "" && p.ALPN == "" {
			bad(key, "tls passthrough %d: needs sni or alpn", i+1)
		}
		if _, err := filepath.Match(p.SNI, ""); err != nil {
			bad(key, "tls passthrough %d: sni %q: %v", i+1, p.SNI, err)
		}
		if err := checkHostPort(p.Upstream, false); err != nil {
			bad(key, "tls passthrough %d: upstream %q: %v", i+1, p.Upstream, err)
		}
	}
	for _, h := range t.RedirectHTTP {
		if h == "" || strings.ContainsAny(h, ":/ ") {
			bad("tls.redirect_http", "tls redirect_http: %q is not a host name", h)
		}
	}
	if t.DNSServer != "" {
		if t.Source != "acme" {
			bad("tls.dns_update_server", "dns_update_server is set but source is not acme")
		}
		if err := checkHostPort(t.DNSServer, false); err != nil {
			bad("tls.dns_update_server", "dns_update_server %q: %v", t.DNSServer, err)
		}
		if t.DNSKeyName == "" || t.DNSKey == "" {
			bad("tls.dns_update_server", "dns_update_server needs dns_update_key_name and dns_update_key (TSIG, base64)")
		} else if _, err := base64.StdEncoding.DecodeString(t.DNSKey); err != nil {
			bad("tls.dns_update_key", "dns_update_key is not base64: %v", err)
		}
	}
	for _, h := range t.Hosts {
		if strings.HasPrefix(h, "*.") && t.Source == "acme" && t.DNSServer == "" {
			bad("tls.hosts", "tls host %q: wildcard certificates from ACME need DNS-01 (dns_update_server)", h)
		}
	}
	if t.ACMECARoot != "" && t.Source != "acme" {
		bad("tls.acme_ca_root", "acme_ca_root is set but source is not acme")
	}
}

// tlsTarget is the mux's TLS target: passthrough routes by SNI, then the
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

// newTLS builds the terminator the config asks for; nil when TLS is off.
func newTLS(ctx context.Context, cfg *Config, port int, http, ssh mux.Target, log *slog.Logger) (*terminator, error) {
	t := cfg.TLS
	if t.Source == "off" {
		return nil, nil
	}
	opts := certs.Options{
		StateDir: cfg.StateDir,
		Source:   t.Source,
		Hosts:    append(slicesClone(t.Hosts), routeHosts(cfg)...),
		Logger:   log,
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

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// httpsRedirect answers plain-HTTP requests for hosts listed in [tls]
// redirect_http with a permanent redirect to the same URL over https, on
// the same host and port (TLS arrives on the one port too). It reports
// whether it answered.
func httpsRedirect(cfg *Config, w http.ResponseWriter, r *http.Request) bool {
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
func routeHosts(cfg *Config) []string {
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
	for _, s := range cfg.routeSpecs {
		if i := strings.IndexAny(s, "/=~"); i > 0 {
			add(s[:i])
		}
	}
	return out
}

// passthroughRoutes turns [[tls.passthrough]] into SNI routes.
func passthroughRoutes(cfg *Config, log *slog.Logger) []mux.SNIRoute {
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

// runCA prints the internal CA's root certificate (PEM, stdout) and its
// SHA-256 fingerprint (stderr), creating the CA on first use.
func runCA(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("oneport ca", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	dir := fl.String("state-dir", defaultStateDir(), "")
	if err := fl.Parse(args); err != nil || fl.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: oneport ca [--state-dir DIR]")
		return 2
	}
	ca, err := certs.LoadCA(*dir)
	if err != nil {
		fmt.Fprintln(stderr, "oneport ca:", err)
		return 1
	}
	stdout.Write(ca.RootPEM())
	fmt.Fprintf(stderr, "SHA-256 fingerprint: %s\n", ca.Fingerprint())
	return 0
}

// runCerts lists the certificates in the state directory and the files
// the config names.
func runCerts(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("oneport certs", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	dir := fl.String("state-dir", defaultStateDir(), "")
	cfgPath := fl.String("config", "", "")
	if err := fl.Parse(args); err != nil || fl.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: oneport certs [--state-dir DIR] [--config FILE]")
		return 2
	}
	var files []certEntry
	if *cfgPath != "" {
		cfg, err := loadFile(*cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, "oneport certs:", err)
			return 1
		}
		files = cfg.TLS.Certs
	}
	certs := listCerts(*dir, files, func(path string, err error) {
		fmt.Fprintf(stderr, "oneport certs: %s: %v\n", path, err)
	})
	if len(certs) == 0 {
		fmt.Fprintf(stdout, "no certificates in %s\n", *dir)
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAMES\tISSUER\tSOURCE\tEXPIRES")
	for _, c := range certs {
		exp := c.Expires.Format(time.RFC3339)
		if time.Now().After(c.Expires) {
			exp += " (EXPIRED)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Names, c.Issuer, c.Source, exp)
	}
	w.Flush()
	return 0
}

// listCerts lists the certificates certmagic keeps in stateDir and the
// certificate files given, sorted by names. Unreadable files are passed to
// onErr when it is set, and skipped.
func listCerts(stateDir string, files []certEntry, onErr func(string, error)) []certInfo {
	var out []certInfo
	add := func(path, source string) {
		c, err := readCert(path)
		if err != nil {
			if onErr != nil {
				onErr(path, err)
			}
			return
		}
		names := append(slicesClone(c.DNSNames), ipStrings(c.IPAddresses)...)
		out = append(out, certInfo{Names: strings.Join(names, ","), Issuer: c.Issuer.CommonName, Source: source, Expires: c.NotAfter})
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

func ipStrings(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}
