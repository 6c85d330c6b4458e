package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// fileCerts serves certificates from PEM files and reloads them when the
// files change. A file that stops loading (half-written, mismatched key,
// expired) keeps the previous certificate in service and is logged.
type fileCerts struct {
	log   *slog.Logger
	mu    sync.RWMutex
	certs []*fileCert
	done  chan struct{}
	once  sync.Once
}

type fileCert struct {
	CertFile
	cert    *tls.Certificate
	names   []string // DNS names and IPs, lowercased
	stamp   string   // sizes and mtimes of both files
	expires time.Time
}

// loadFileCerts loads every file pair; any error names the file and what
// is wrong with it.
func loadFileCerts(files []CertFile, log *slog.Logger) (*fileCerts, error) {
	fc := &fileCerts{log: log, done: make(chan struct{})}
	for _, f := range files {
		c, err := loadFileCert(f)
		if err != nil {
			return nil, err
		}
		fc.certs = append(fc.certs, c)
	}
	if len(files) > 0 {
		go fc.watch()
	}
	return fc, nil
}

func stampOf(f CertFile) string {
	var b strings.Builder
	for _, p := range []string{f.Cert, f.Key} {
		if st, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%d/%d;", st.Size(), st.ModTime().UnixNano())
		}
	}
	return b.String()
}

func loadFileCert(f CertFile) (*fileCert, error) {
	stamp := stampOf(f)
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("tls certificate %s with key %s: %w", f.Cert, f.Key, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("tls certificate %s: %w", f.Cert, err)
	}
	if time.Now().After(leaf.NotAfter) {
		return nil, fmt.Errorf("tls certificate %s expired on %s", f.Cert, leaf.NotAfter.Format(time.DateOnly))
	}
	cert.Leaf = leaf
	fc := &fileCert{CertFile: f, cert: &cert, stamp: stamp, expires: leaf.NotAfter}
	for _, n := range leaf.DNSNames {
		fc.names = append(fc.names, strings.ToLower(n))
	}
	for _, ip := range leaf.IPAddresses {
		fc.names = append(fc.names, ip.String())
	}
	return fc, nil
}

func (fc *fileCerts) watch() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-fc.done:
			return
		case <-t.C:
			fc.reload()
		}
	}
}

// reload re-reads the files that changed.
func (fc *fileCerts) reload() {
	fc.mu.RLock()
	certs := fc.certs
	fc.mu.RUnlock()
	for i, c := range certs {
		if stampOf(c.CertFile) == c.stamp {
			continue
		}
		n, err := loadFileCert(c.CertFile)
		if err != nil {
			fc.log.Warn("certificate files changed but do not load; still serving the previous certificate", "err", err)
			continue
		}
		fc.mu.Lock()
		fc.certs[i] = n
		fc.mu.Unlock()
		fc.log.Info("certificate reloaded", "cert", c.Cert, "names", n.names, "expires", n.expires)
	}
}

func (fc *fileCerts) stop() { fc.once.Do(func() { close(fc.done) }) }

// covers reports whether a file certificate serves name.
func (fc *fileCerts) covers(name string) bool {
	fc.mu.RLock()
	defer fc.mu.RUnlock()
	for _, c := range fc.certs {
		if matchCertName(c.names, strings.ToLower(name)) {
			return true
		}
	}
	return false
}

// lookup returns the file certificate for the handshake's SNI, or without
// SNI for the local IP it arrived at.
func (fc *fileCerts) lookup(hello *tls.ClientHelloInfo) *tls.Certificate {
	name := strings.ToLower(hello.ServerName)
	if name == "" && hello.Conn != nil {
		if host, _, err := net.SplitHostPort(hello.Conn.LocalAddr().String()); err == nil {
			name = host
		}
	}
	fc.mu.RLock()
	defer fc.mu.RUnlock()
	for _, c := range fc.certs {
		if matchCertName(c.names, name) {
			return c.cert
		}
	}
	return nil
}

// matchCertName matches name against certificate names, with one-label
// wildcards.
func matchCertName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
		if suffix, ok := strings.CutPrefix(n, "*."); ok {
			if _, rest, found := strings.Cut(name, "."); found && rest == suffix {
				return true
			}
		}
	}
	return false
}
