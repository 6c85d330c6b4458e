package config

import (
	"fmt"
	"io"
	"strings"
)

// Describe writes what c resolves to, as `oneport check` prints it: a
// line for each setting of Settings that describes itself, then the
// protocols and the routes in match order.
func (c *Config) Describe(w io.Writer, res *Resolved) {
	for i := range Settings {
		if d := Settings[i].describe; d != nil {
			if v := d(c); v != "" {
				fmt.Fprintf(w, "%-14s %s\n", Settings[i].Key, v)
			}
		}
	}
	for _, p := range res.Probes {
		fmt.Fprintf(w, "protocol       %s -> %s\n", p.Name, p.Target)
	}
	if res.Table.Len() == 0 {
		fmt.Fprintln(w, "routes         none (HTTP answers with a welcome page)")
		return
	}
	fmt.Fprintln(w, "routes, in match order:")
	for _, r := range res.Table.Routes() {
		host := r.Host
		if host == "" {
			host = "*"
		}
		extra := ""
		if r.StripPrefix != nil && !*r.StripPrefix {
			extra = "  (prefix kept)"
		}
		if r.Rewrite != "" {
			extra = "  (prefix rewritten to " + r.Rewrite + ")"
		}
		if r.Policy != "" {
			extra += "  policy " + r.Policy
		}
		if r.Tag != "" {
			extra += "  tag " + r.Tag
		}
		if r.Health.Kind != "" {
			extra += "  health " + r.Health.Kind
		}
		// The upstreams part of HOST PATH[+]=UPSTREAMS.
		ups := strings.TrimPrefix(r.Spec(), r.Host+r.Path)
		ups = ups[strings.IndexByte(ups, '=')+1:]
		fmt.Fprintf(w, "  %-24s %-28s -> %s%s\n", host, r.Path, strings.ReplaceAll(ups, ",", ", "), extra)
	}
}

// describeTLS is [tls] in check's output: the source, then a line for
// each certificate file and passthrough.
func describeTLS(c *Config) string {
	var b strings.Builder
	switch src := c.TLS.Source; src {
	case "off":
		b.WriteString("off (TLS connections are closed)")
	default:
		if src == "" {
			src = "internal"
		}
		fmt.Fprintf(&b, "terminated, certificates from %s (state in %s)", src, c.StateDir)
		describeTLSPolicy(&b, &c.TLS)
	}
	for _, ce := range c.TLS.Certs {
		fmt.Fprintf(&b, "\ntls cert       %s", ce.Cert)
	}
	for _, p := range c.TLS.Passthrough {
		fmt.Fprintf(&b, "\ntls passthrough sni=%q alpn=%q -> %s", p.SNI, p.ALPN, p.Upstream)
	}
	return b.String()
}

// describeTLSPolicy adds the protocol floor, the default certificate and
// HSTS to check's [tls] line.
func describeTLSPolicy(b *strings.Builder, t *TLS) {
	v := t.MinVersion
	if v == "" {
		v = "1.2"
	}
	def := t.DefaultSNI
	if def == "" {
		def = "the local IP's"
	}
	fmt.Fprintf(b, "\ntls policy     TLS %s+, AEAD suites only; unknown names get %s certificate", v, def)
	if len(t.HSTS) > 0 {
		fmt.Fprintf(b, "; HSTS for %s", strings.Join(t.HSTS, ", "))
	}
}
