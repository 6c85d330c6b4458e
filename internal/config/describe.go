package config

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Describe writes what c resolves to, as `oneport check` prints it: the
// settings that matter, then the routes in match order.
func (c *Config) Describe(w io.Writer, res *Resolved) {
	fmt.Fprintf(w, "listen         %s\n", c.Listen)
	fmt.Fprintf(w, "ssh            %s\n", c.SSH)
	fmt.Fprintf(w, "sniff_timeout  %v (then %s)\n", time.Duration(c.SniffTimeout), c.OnTimeout)
	fmt.Fprintf(w, "fallback       %s\n", c.Fallback)
	if len(c.Redirect) > 0 {
		fmt.Fprintf(w, "redirect       tcp ports %v -> listen port (crash-safe nftables table)\n", c.Redirect)
	}
	if c.Transparent {
		fmt.Fprintln(w, "transparent    sshd sees client addresses")
	}
	switch src := c.TLS.Source; src {
	case "off":
		fmt.Fprintln(w, "tls            off (TLS connections are closed)")
	default:
		if src == "" {
			src = "internal"
		}
		fmt.Fprintf(w, "tls            terminated, certificates from %s (state in %s)\n", src, c.StateDir)
	}
	for _, ce := range c.TLS.Certs {
		fmt.Fprintf(w, "tls cert       %s\n", ce.Cert)
	}
	for _, p := range c.TLS.Passthrough {
		fmt.Fprintf(w, "tls passthrough sni=%q alpn=%q -> %s\n", p.SNI, p.ALPN, p.Upstream)
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
		ups := r.Spec()[len(r.Host)+len(r.Path)+1:] // the upstreams part of HOST PATH=UPSTREAMS
		fmt.Fprintf(w, "  %-24s %-28s -> %s%s\n", host, r.Path, strings.ReplaceAll(ups, ",", ", "), extra)
	}
}
