package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/oneport/oneport/httproute"
)

// Resolved is a validated Config turned into what the serving packages
// take.
type Resolved struct {
	// Routes are the routes in config order; Table holds them in match
	// order.
	Routes []httproute.Route
	Table  *httproute.Table
	// Probes are the [[protocol]] tables.
	Probes []Probe
	// Gateways are the routes with gateway = true.
	Gateways []GatewayRoute
}

// Probe is a [[protocol]] table, resolved.
type Probe struct {
	Name   string
	Prefix []byte
	Regexp *regexp.Regexp
	Target string
}

// Validate checks every setting and returns all problems, each with its
// place in the file (or its flag).
func (c *Config) Validate() (*Resolved, error) {
	var es Errors
	bad := func(key, format string, args ...any) {
		es = append(es, &Error{Where: c.at(key), Msg: fmt.Sprintf(format, args...)})
	}
	checkAll(Settings, c, "", bad)
	if c.AdminListen != "" && len(c.AdminToken) < 16 {
		bad("admin_token", "admin_listen needs admin_token of 16 or more characters: any local user can reach TCP")
	}
	c.validateRedirect(bad)
	c.validateTLS(bad)
	r := &Resolved{}
	r.Routes = c.routes(bad, func(err error) { es = append(es, err) })
	r.Gateways = c.gateways(bad)
	for i, p := range c.Protocols {
		ps, err := p.resolve()
		if err != nil {
			bad(fmt.Sprintf("protocol.%d", i+1), "protocol %d (%s): %v", i+1, p.Name, err)
			continue
		}
		r.Probes = append(r.Probes, ps)
	}
	if len(es) == 0 {
		t, err := httproute.NewTable(r.Routes)
		if err != nil {
			bad("route", "%v", err)
		}
		r.Table = t
	}
	if len(es) > 0 {
		return nil, es
	}
	return r, nil
}

// checkAll runs the checks of settings on the table struct t.
func checkAll(settings []Setting, t any, path string, bad func(key, format string, args ...any)) {
	for i := range settings {
		s := &settings[i]
		key := join(path, s.Key)
		if s.check != nil {
			if err := s.check(s.field.get(t)); err != nil {
				bad(key, "%v", err)
			}
		}
		if s.Sub != nil && !s.Array {
			checkAll(s.Sub, s.field.get(t), key, bad)
		}
	}
}

// routes converts --route specs, or else the file's [[route]] tables.
func (c *Config) routes(bad func(key, format string, args ...any), add func(error)) []httproute.Route {
	var out []httproute.Route
	var names, places []string // of each route in out
	if len(c.RouteSpecs) > 0 {
		for _, s := range c.RouteSpecs {
			r, err := httproute.ParseSpec(s)
			if err == nil {
				err = checkUpstreamPorts(r)
			}
			if err != nil {
				add(&Error{Where: "--route", Msg: err.Error()})
				continue
			}
			out = append(out, r)
			names, places = append(names, fmt.Sprintf("--route %q", s)), append(places, "--route")
		}
	} else {
		for i, rc := range c.Routes {
			key := fmt.Sprintf("route.%d", i+1)
			r, err := rc.route()
			if err == nil {
				err = checkUpstreamPorts(r)
			}
			if err == nil {
				_, err = httproute.NewTable([]httproute.Route{r})
			}
			if err != nil {
				bad(key, "route %d: %v", i+1, err)
				continue
			}
			out = append(out, r)
			names, places = append(names, fmt.Sprintf("route %d", i+1)), append(places, c.at(key))
		}
	}
	for i, j := range duplicates(out) {
		if j >= 0 {
			add(&Error{Where: places[i], Msg: fmt.Sprintf("%s has the host and path of %s (%s): it would never match", names[i], names[j], places[j])})
		}
	}
	return out
}

// duplicates returns, for each route, the index of an earlier route with
// the same host and path (the router would never reach it), or -1.
func duplicates(routes []httproute.Route) []int {
	out := make([]int, len(routes))
	first := map[string]int{}
	for i, r := range routes {
		k := strings.ToLower(r.Host) + " " + r.Path
		out[i] = -1
		if j, ok := first[k]; ok {
			out[i] = j
			continue
		}
		first[k] = i
	}
	return out
}

// checkUpstreamPorts refuses an upstream port above 65535, which the
// router would only find out when dialing.
func checkUpstreamPorts(r httproute.Route) error {
	for _, u := range r.Upstreams {
		if strings.HasPrefix(u, "unix:") {
			continue
		}
		hp := u
		if _, rest, ok := strings.Cut(u, "://"); ok {
			hp = rest
		}
		hp, _, _ = strings.Cut(hp, "/")
		_, port, err := net.SplitHostPort(hp)
		if err != nil || port == "" {
			continue // no port: the scheme's, or the router says what is wrong
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("upstream %q: bad port %q", u, port)
		}
	}
	return nil
}

// checkHostPort accepts host:port; listen addresses may leave the host
// empty (all addresses).
func checkHostPort(s string, listen bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port")
	}
	if host == "" && !listen {
		return errors.New("host is missing")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || (!listen && n == 0) {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// validateRedirect checks that redirect's companions have ports to act on
// and that redirected connections can reach the listener: REDIRECT
// delivers them to the address of the interface they arrived on, never to
// a loopback-only listener.
func (c *Config) validateRedirect(bad func(key, format string, args ...any)) {
	if len(c.Redirect) == 0 {
		if len(c.RedirectIfaces) > 0 || len(c.RedirectAddrs) > 0 || c.RedirectLocal {
			bad("redirect", "redirect_interfaces, redirect_addresses and redirect_local need redirect ports")
		}
		return
	}
	_, lport, _ := net.SplitHostPort(c.Listen)
	for _, p := range c.Redirect {
		if strconv.Itoa(p) == lport {
			bad("redirect", "redirect port %d is the listen port", p)
		}
	}
	host, _, _ := net.SplitHostPort(c.Listen)
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		bad("listen", "redirect needs listen on all addresses (such as :%s), not %s: redirected connections arrive at the interface's own address", lport, host)
	}
}

// validateTLS checks what the [tls] keys require of each other.
func (c *Config) validateTLS(bad func(key, format string, args ...any)) {
	t := c.TLS
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

func (p Protocol) resolve() (Probe, error) {
	ps := Probe{Name: p.Name, Prefix: []byte(p.Prefix), Target: p.Target}
	if p.Name == "" {
		return ps, errors.New("name is missing")
	}
	if p.PrefixHex != "" {
		if p.Prefix != "" {
			return ps, errors.New("set prefix or prefix_hex, not both")
		}
		b, err := hex.DecodeString(p.PrefixHex)
		if err != nil {
			return ps, fmt.Errorf("prefix_hex: %v", err)
		}
		ps.Prefix = b
	}
	if p.Regex != "" {
		re, err := regexp.Compile(p.Regex)
		if err != nil {
			return ps, fmt.Errorf("regex: %v", err)
		}
		ps.Regexp = re
	}
	if len(ps.Prefix) == 0 && ps.Regexp == nil {
		return ps, errors.New("needs prefix, prefix_hex or regex")
	}
	if err := checkHostPort(p.Target, false); err != nil {
		return ps, fmt.Errorf("target %q: %v", p.Target, err)
	}
	return ps, nil
}
