package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// Certificate sources.
const (
	SourceInternal = "internal" // oneport's own CA
	SourceACME     = "acme"     // an ACME CA such as Let's Encrypt
)

// Options configures the certificates a Manager holds. The zero value
// with StateDir set holds internal-CA certificates for the box's IPs and
// localhost.
type Options struct {
	// StateDir holds the CA, certificates and ACME accounts.
	StateDir string
	// Source is where certificates for Hosts and IPs come from:
	// SourceInternal (the default) or SourceACME.
	Source string
	// Hosts are DNS names to hold certificates for; the internal CA also
	// covers localhost.
	Hosts []string
	// IPs to hold certificates for; nil means the box's addresses (for
	// ACME, its public ones).
	IPs []net.IP
	// ACME configures SourceACME.
	ACME ACMEOptions
	// Files are certificates read from PEM files; they take precedence
	// for their names and are reloaded when the files change.
	Files []CertFile
	// DefaultSNI names the certificate served to a client asking for a
	// name oneport holds none for (a name is added to Hosts); empty means
	// the certificate of the local IP address the connection arrived at.
	DefaultSNI string
	// MinVersion is the oldest TLS version accepted: "1.2" (the zero
	// value) or "1.3".
	MinVersion string
	// Logger receives certificate events.
	Logger *slog.Logger
}

// ACMEOptions configures certificates from an ACME CA.
type ACMEOptions struct {
	// CA is the directory URL; empty means Let's Encrypt.
	CA string
	// Email is the account's contact, optional.
	Email string
	// Profile is the ACME profile for DNS names; empty is the CA's
	// default. IP addresses always use "shortlived" (Let's Encrypt
	// issues IP certificates only under it) unless IPProfile is set.
	Profile, IPProfile string
	// TrustedRoots verify the CA's own TLS certificate (tests, private
	// CAs); nil means the system roots.
	TrustedRoots *x509.CertPool
	// Port is where the CA's validation reaches oneport, when not 80 and
	// 443 (the redirect makes 80/443 arrive on oneport's port too).
	HTTPPort, TLSPort int
	// DisableHTTPChallenge and DisableTLSALPNChallenge turn a challenge
	// type off.
	DisableHTTPChallenge, DisableTLSALPNChallenge bool
	// DNS, if set, answers DNS-01 challenges by writing TXT records
	// through it (for example RFC2136); the other challenge types are then
	// not used. Needed for wildcard names and boxes the CA cannot reach.
	DNS certmagic.DNSProvider
	// DNSResolvers look up the zone of a name (host:port); empty means
	// the system's resolvers.
	DNSResolvers []string
	// SkipDNSPropagationCheck does not wait for the TXT record to show on
	// the zone's authoritative servers before asking the CA to validate.
	SkipDNSPropagationCheck bool
}

// CertFile is a certificate and key in PEM files.
type CertFile struct {
	Cert, Key string
}

// Manager holds the certificates TLS is terminated with and chooses one
// per handshake (TLSConfig); the mux's TLSTerminator does the
// terminating. Create it with New; Close stops certificate maintenance.
type Manager struct {
	opts   Options
	log    *slog.Logger
	CA     *InternalCA // nil unless the internal CA is in use
	cache  *certmagic.Cache
	names  *certmagic.Config // DNS names
	ips    *certmagic.Config // IP addresses
	acme   []*certmagic.ACMEIssuer
	files  *fileCerts
	config *tls.Config
	// unknown remembers which unknown server names were logged.
	unknown unknownNames
	cancel  context.CancelFunc // ends background obtains and renewals
}

// New sets up certificates: it loads or creates the internal CA,
// obtains what is missing (synchronously for the internal CA, in the
// background for ACME) and starts watching certificate files. Background
// work ends when ctx is done or Close is called.
func New(ctx context.Context, opts Options) (*Manager, error) {
	if opts.StateDir == "" {
		return nil, errors.New("tls: no state directory")
	}
	if opts.Source == "" {
		opts.Source = SourceInternal
	}
	if err := CheckMinVersion(opts.MinVersion); err != nil {
		return nil, err
	}
	if d := strings.ToLower(opts.DefaultSNI); d != "" && !isIP(d) && !slices.Contains(opts.Hosts, d) {
		opts.Hosts = append(slices.Clone(opts.Hosts), d) // the default must be held to be served
	}
	ctx, cancel := context.WithCancel(ctx)
	t := &Manager{opts: opts, log: opts.Logger, cancel: cancel}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	files, err := loadFileCerts(opts.Files, t.log)
	if err != nil {
		cancel()
		return nil, err
	}
	t.files = files
	t.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(c certmagic.Certificate) (*certmagic.Config, error) {
			if len(c.Names) > 0 && net.ParseIP(c.Names[0]) != nil {
				return t.ips, nil
			}
			return t.names, nil
		},
		Logger: zap.NewNop(),
	})
	storage := &certmagic.FileStorage{Path: filepath.Join(opts.StateDir, "certmagic")}
	newConfig := func() *certmagic.Config {
		return certmagic.New(t.cache, certmagic.Config{Storage: storage, Logger: zap.NewNop(), OnEvent: t.onEvent})
	}
	t.names, t.ips = newConfig(), newConfig()
	ips := opts.IPs
	switch opts.Source {
	case SourceInternal:
		if t.CA, err = LoadCA(opts.StateDir); err != nil {
			t.Close()
			return nil, err
		}
		t.names.Issuers = []certmagic.Issuer{t.CA}
		t.ips.Issuers = []certmagic.Issuer{t.CA}
		if ips == nil {
			ips = boxIPs(false)
		}
		if !slices.Contains(opts.Hosts, "localhost") {
			opts.Hosts = append(opts.Hosts, "localhost")
		}
	case SourceACME:
		t.names.Issuers = []certmagic.Issuer{t.acmeIssuer(t.names, opts.ACME.Profile)}
		ipProfile := opts.ACME.IPProfile
		if ipProfile == "" {
			ipProfile = "shortlived"
		}
		t.ips.Issuers = []certmagic.Issuer{t.acmeIssuer(t.ips, ipProfile)}
		if ips == nil {
			ips = boxIPs(true)
		}
	default:
		t.Close()
		return nil, fmt.Errorf("tls: source %q: want internal or acme", opts.Source)
	}
	hosts := slices.DeleteFunc(slices.Clone(opts.Hosts), t.files.covers)
	var ipNames []string
	for _, ip := range ips {
		if !t.files.covers(ip.String()) {
			ipNames = append(ipNames, ip.String())
		}
	}
	// The internal CA issues at once; an ACME CA may take a while, so
	// oneport serves meanwhile.
	manage := (*certmagic.Config).ManageSync
	if opts.Source == SourceACME {
		manage = (*certmagic.Config).ManageAsync
	}
	if len(hosts) > 0 {
		if err := manage(t.names, ctx, hosts); err != nil {
			t.Close()
			return nil, fmt.Errorf("tls: certificates for %v: %w", hosts, err)
		}
	}
	if len(ipNames) > 0 {
		if err := manage(t.ips, ctx, ipNames); err != nil {
			t.Close()
			return nil, fmt.Errorf("tls: certificates for %v: %w", ipNames, err)
		}
	}
	t.config = serverTLSConfig(opts.MinVersion, t.getCertificate)
	return t, nil
}

func (t *Manager) acmeIssuer(cfg *certmagic.Config, profile string) *certmagic.ACMEIssuer {
	a := t.opts.ACME
	iss := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA:                      a.CA,
		Email:                   a.Email,
		Agreed:                  true,
		Profile:                 profile,
		TrustedRoots:            a.TrustedRoots,
		AltHTTPPort:             a.HTTPPort,
		AltTLSALPNPort:          a.TLSPort,
		DisableHTTPChallenge:    a.DisableHTTPChallenge,
		DisableTLSALPNChallenge: a.DisableTLSALPNChallenge,
		Logger:                  zap.NewNop(),
	})
	if a.DNS != nil {
		solver := &certmagic.DNS01Solver{}
		solver.DNSProvider, solver.Resolvers, solver.Logger = a.DNS, a.DNSResolvers, zap.NewNop()
		if a.SkipDNSPropagationCheck {
			solver.PropagationTimeout = -1
		}
		iss.DNS01Solver = solver
	}
	if a.CA == "" {
		iss.CA = certmagic.LetsEncryptProductionCA
	}
	t.acme = append(t.acme, iss)
	return iss
}

func (t *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtained", "cert_renewed":
		t.log.Info("certificate obtained", "event", event, "identifier", data["identifier"], "issuer", data["issuer"])
	case "cert_failed":
		t.log.Warn("certificate not obtained", "identifier", data["identifier"], "err", data["error"], "renewal", data["renewal"])
	}
	return nil
}

// getCertificate serves file certificates for their names, then
// certmagic's: by SNI for names, by the local IP without SNI; a name it
// holds nothing for gets the default certificate.
func (t *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := t.files.lookup(hello); c != nil {
		return c, nil
	}
	var c *tls.Certificate
	var err error
	if hello.ServerName == "" || isIP(hello.ServerName) {
		c, err = t.ips.GetCertificate(hello)
	} else {
		c, err = t.names.GetCertificate(hello)
	}
	if err != nil || c == nil {
		return t.defaultCertificate(hello, err)
	}
	return c, nil
}

func isIP(s string) bool { return net.ParseIP(s) != nil }

// TLSConfig returns the server-side configuration: TLS 1.2+ (or 1.3+)
// with AEAD suites only, ALPN h2 and http/1.1 (and acme-tls/1 for
// TLS-ALPN-01 challenges).
func (t *Manager) TLSConfig() *tls.Config { return t.config }

// HTTPChallenge wraps next so that ACME HTTP-01 challenges are answered
// on oneport's own port.
func (t *Manager) HTTPChallenge(next http.Handler) http.Handler {
	if len(t.acme) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			for _, iss := range t.acme {
				if iss.HandleHTTPChallenge(w, r) {
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ReloadFiles re-reads the certificate files now (they are also watched).
func (t *Manager) ReloadFiles() { t.files.reload() }

// Close stops certificate maintenance and cancels obtains and renewals
// still running in the background.
func (t *Manager) Close() {
	t.cancel()
	t.files.stop()
	t.cache.Stop()
}

// boxIPs returns the box's interface addresses, without link-local ones;
// with public, only addresses an ACME CA can validate.
func boxIPs(public bool) []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []net.IP
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLinkLocalUnicast() || n.IP.IsLinkLocalMulticast() {
			continue
		}
		if public && (n.IP.IsLoopback() || n.IP.IsPrivate() || n.IP.IsUnspecified()) {
			continue
		}
		out = append(out, n.IP)
	}
	return out
}
