package certs

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// maxUnknownNames bounds how many distinct unknown server names are
// remembered so that each is logged once: a scanner sending random names
// costs at most this many map entries.
const maxUnknownNames = 1024

// unknownNames logs each server name oneport holds no certificate for
// once, up to maxUnknownNames names.
type unknownNames struct {
	mu   sync.Mutex
	seen map[string]struct{}
	full bool
}

// note logs name the first time it is seen.
func (u *unknownNames) note(log *slog.Logger, name, served string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.seen[name]; ok || u.full {
		return
	}
	if len(u.seen) >= maxUnknownNames {
		u.full = true
		log.Info("more unknown TLS server names than are logged; further ones are served the default certificate silently",
			"limit", maxUnknownNames)
		return
	}
	if u.seen == nil {
		u.seen = map[string]struct{}{}
	}
	u.seen[name] = struct{}{}
	log.Info("no certificate for this TLS server name; serving the default certificate (logged once per name)",
		"sni", name, "default", served)
}

// defaultCertificate answers a handshake whose server name oneport holds
// no certificate for, as Caddy and nginx do: with the certificate of
// Options.DefaultSNI if set, else the one of the local IP address the
// connection arrived at. A client that checks names (a browser, curl)
// still refuses it; one that does not (openssl s_client, an SSH
// ProxyCommand) gets its session instead of a handshake failure.
func (t *Manager) defaultCertificate(hello *tls.ClientHelloInfo, cause error) (*tls.Certificate, error) {
	if slices.Contains(hello.SupportedProtos, "acme-tls/1") {
		return nil, cause // a TLS-ALPN-01 challenge must get its own certificate or none
	}
	def := *hello
	def.ServerName = t.opts.DefaultSNI
	served := t.opts.DefaultSNI
	if served == "" {
		served = "the local IP address's"
	}
	var c *tls.Certificate
	var err error
	switch {
	case def.ServerName != "" && t.files.covers(def.ServerName):
		c = t.files.lookup(&def)
	case def.ServerName == "", isIP(def.ServerName):
		c, err = t.ips.GetCertificate(&def)
	default:
		c, err = t.names.GetCertificate(&def)
	}
	if err != nil || c == nil {
		return nil, fmt.Errorf("tls: no certificate for %q and no default certificate (%s): %w", hello.ServerName, served, cause)
	}
	t.unknown.note(t.log, strings.ToLower(hello.ServerName), served)
	return c, nil
}

// TLS versions Options.MinVersion accepts.
const (
	MinVersion12 = "1.2"
	MinVersion13 = "1.3"
)

// CheckMinVersion accepts "", "1.2" and "1.3".
func CheckMinVersion(v string) error {
	switch v {
	case "", MinVersion12, MinVersion13:
		return nil
	}
	return fmt.Errorf("tls min_version %q: want 1.2 or 1.3 (TLS 1.0 and 1.1 are broken and never offered)", v)
}

// serverTLSConfig is the terminator's configuration: TLS 1.2 or newer
// (1.3 with minVersion "1.3") and for TLS 1.2 only AEAD suites with
// forward secrecy, as Caddy offers: no CBC, no RSA key exchange, no 3DES.
// TLS 1.3's suites are all AEAD and not configurable in crypto/tls.
func serverTLSConfig(minVersion string, get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	v := uint16(tls.VersionTLS12)
	if minVersion == MinVersion13 {
		v = tls.VersionTLS13
	}
	return &tls.Config{
		MinVersion:     v,
		CipherSuites:   AEADSuites(),
		NextProtos:     []string{"h2", "http/1.1", "acme-tls/1"},
		GetCertificate: get,
	}
}

// AEADSuites are the TLS 1.2 cipher suites oneport offers.
func AEADSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}
