package tunnel

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Trust decides which server certificates a Client accepts. Its zero
// value trusts the system roots and nothing else.
//
// With KnownHosts set, a chain the system roots do not know (and only
// for that reason) is accepted by its root, pinned on first use per
// host:port as SSH pins host keys: the first time its fingerprint is
// written to Notice and stored; later, a different root is refused with
// both fingerprints. oneport's internal CA is such a root; its
// fingerprint is what `oneport ca` prints on the box.
type Trust struct {
	// CAFile, if set, is a PEM file of the only roots to trust (the
	// system roots and pins are not used).
	CAFile string
	// KnownHosts is the pin file; empty turns pinning off.
	KnownHosts string
	// Notice receives the first-use message; nil discards it.
	Notice io.Writer
}

// DefaultKnownHosts is the pin file under the user's config directory:
// os.UserConfigDir()/oneport/known_hosts.
func DefaultKnownHosts() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("known hosts: %w", err)
	}
	return filepath.Join(dir, "oneport", "known_hosts"), nil
}

// Fingerprint is a certificate's SHA-256 fingerprint, upper-case hex
// pairs joined by colons, as `oneport ca` prints it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// tlsConfig verifies the server by c.Trust; the standard verification is
// replaced, not skipped (VerifyConnection runs for every handshake).
func (c *Client) tlsConfig() *tls.Config {
	name := c.SNI
	if name == "" {
		name = c.URL.Hostname()
	}
	key := serverAddr(c.URL)
	return &tls.Config{
		ServerName:         name,
		NextProtos:         []string{"http/1.1"},
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return c.Trust.verify(cs, name, key)
		},
	}
}

func (t Trust) verify(cs tls.ConnectionState, name, key string) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return hopErr("tls", "%s sent no certificate", key)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{DNSName: name, Intermediates: inter}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return hopErr("tls", "--ca: %w", err)
		}
		opts.Roots = x509.NewCertPool()
		if !opts.Roots.AppendCertsFromPEM(pem) {
			return hopErr("tls", "--ca %s: no PEM certificate in it", t.CAFile)
		}
		if _, err := certs[0].Verify(opts); err != nil {
			return hopErr("tls", "%s: certificate not signed by --ca %s: %w", key, t.CAFile, err)
		}
		return nil
	}
	_, err := certs[0].Verify(opts)
	var unknown x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknown) || t.KnownHosts == "" {
		if err != nil {
			return hopErr("tls", "%s: %w", key, err)
		}
		return nil
	}
	return t.pin(certs, key)
}

// pin accepts a chain the system does not know by its top certificate
// (the root oneport's internal CA sends along), pinned per key.
func (t Trust) pin(certs []*x509.Certificate, key string) error {
	root := certs[len(certs)-1]
	pool := x509.NewCertPool()
	pool.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	// The pin is the trust: the chain must lead to the pinned root, for
	// whatever name (a fronted or forwarded name is seldom in it).
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter}); err != nil {
		return hopErr("tls", "%s: the certificate does not chain to the root it came with: %w", key, err)
	}
	fp := Fingerprint(root.Raw)
	have, err := lookupPin(t.KnownHosts, key)
	if err != nil {
		return hopErr("tls", "%w", err)
	}
	switch {
	case have == fp:
		return nil
	case have != "":
		return hopErr("tls", "PIN MISMATCH for %s: pinned CA %s, offered CA %s. Someone may be intercepting the "+
			"connection, or the box's CA was replaced; if you know it was, delete the line for %s in %s",
			key, have, fp, key, t.KnownHosts)
	}
	if err := addPin(t.KnownHosts, key, fp); err != nil {
		return hopErr("tls", "%w", err)
	}
	if t.Notice != nil {
		fmt.Fprintf(t.Notice, "oneport connect: trusting %s on first use: CA %q, SHA-256 fingerprint %s "+
			"(compare with `oneport ca` on the box); pinned in %s\n", key, root.Subject.CommonName, fp, t.KnownHosts)
	}
	return nil
}

// lookupPin returns key's fingerprint in the file at path, or "".
func lookupPin(path, key string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("known hosts: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == key {
			return f[1], nil
		}
	}
	return "", nil
}

// addPin appends "key fingerprint" to the file at path.
func addPin(path, key, fp string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("known hosts: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("known hosts: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s %s\n", key, fp)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("known hosts: %w", err)
	}
	return nil
}
