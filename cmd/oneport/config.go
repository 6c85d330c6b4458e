package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/mux"
)

// Config is everything oneport serves. The config file and the flags both
// fill it; flags win. Its zero value, after defaults(), is the built-in
// default: listen on :2222, SSH to 127.0.0.1:22, no HTTP routes.
type Config struct {
	Listen           string          `toml:"listen"`
	SSH              string          `toml:"ssh"`
	SniffTimeout     duration        `toml:"sniff_timeout"`
	OnTimeout        string          `toml:"on_timeout"`
	Fallback         string          `toml:"fallback"`
	MaxPendingSniffs int             `toml:"max_pending_sniffs"`
	MaxConns         int             `toml:"max_conns"`
	ShutdownGrace    duration        `toml:"shutdown_grace"`
	LogFormat        string          `toml:"log_format"`
	LogLevel         string          `toml:"log_level"`
	Redirect         []int           `toml:"redirect"`
	RedirectIfaces   []string        `toml:"redirect_interfaces"`
	RedirectAddrs    []string        `toml:"redirect_addresses"`
	RedirectLocal    bool            `toml:"redirect_local"`
	Transparent      bool            `toml:"transparent"`
	StateDir         string          `toml:"state_dir"`
	AdminSocket      string          `toml:"admin_socket"`
	AdminListen      string          `toml:"admin_listen"`
	AdminToken       string          `toml:"admin_token"`
	MetricsPath      string          `toml:"metrics_path"`
	TLS              tlsSection      `toml:"tls"`
	Routes           []routeConfig   `toml:"route"`
	Protocols        []protocolEntry `toml:"protocol"`

	// Set by load: where each key came from, for error messages.
	file  string
	lines map[string]int
	// routeSpecs come from --route flags and replace the file's routes.
	routeSpecs []string
}

type routeConfig struct {
	Name                  string      `toml:"name"`
	Host                  string      `toml:"host"`
	Path                  string      `toml:"path"`
	Upstream              any         `toml:"upstream"`
	StripPrefix           *bool       `toml:"strip_prefix"`
	Rewrite               string      `toml:"rewrite"`
	UpstreamHost          bool        `toml:"upstream_host"`
	DialTimeout           duration    `toml:"dial_timeout"`
	ResponseHeaderTimeout duration    `toml:"response_header_timeout"`
	RequestHeaders        headersOps  `toml:"request_headers"`
	ResponseHeaders       headersOps  `toml:"response_headers"`
	Policy                string      `toml:"policy"`
	Tag                   string      `toml:"tag"`
	Retries               int         `toml:"retries"`
	Health                healthConf  `toml:"health"`
	Passive               passiveConf `toml:"passive"`
}

type healthConf struct {
	Check     string   `toml:"check"`
	Path      string   `toml:"path"`
	Interval  duration `toml:"interval"`
	Timeout   duration `toml:"timeout"`
	Healthy   int      `toml:"healthy"`
	Unhealthy int      `toml:"unhealthy"`
}

type passiveConf struct {
	MaxFails int      `toml:"max_fails"`
	Window   duration `toml:"window"`
	Cooldown duration `toml:"cooldown"`
}

type headersOps struct {
	Set    map[string]string `toml:"set"`
	Add    map[string]string `toml:"add"`
	Delete []string          `toml:"delete"`
}

type protocolEntry struct {
	Name      string `toml:"name"`
	Prefix    string `toml:"prefix"`
	PrefixHex string `toml:"prefix_hex"`
	Regex     string `toml:"regex"`
	Target    string `toml:"target"`
}

// Built-in defaults.
const (
	defaultListen        = ":2222"
	defaultShutdownGrace = 30 * time.Second
)

// duration is a time.Duration written as "2s", "500ms", "10m".
type duration time.Duration

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as 2s or 500ms, got %q", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	*d = duration(v)
	return nil
}

func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// configError is a problem at a place in the config file or a flag.
type configError struct {
	where string // "FILE:LINE", "FILE" or "--flag"
	msg   string
}

func (e *configError) Error() string { return e.where + ": " + e.msg }

// configErrors collects every problem found, one per line.
type configErrors []error

func (es configErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// loadFile reads a TOML config file. Unknown keys are errors.
func loadFile(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg := &Config{file: path, lines: keyLines(src)}
	dec := toml.NewDecoder(bytes.NewReader(src)).DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, tomlError(path, err)
	}
	return cfg, nil
}

func tomlError(path string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var es configErrors
		for _, e := range strict.Errors {
			row, _ := e.Position()
			es = append(es, &configError{fmt.Sprintf("%s:%d", path, row), fmt.Sprintf("unknown key %q", strings.Join(e.Key(), "."))})
		}
		return es
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if k := de.Key(); len(k) > 0 {
			msg = strings.Join(k, ".") + ": " + msg
		}
		return &configError{fmt.Sprintf("%s:%d", path, row), msg}
	}
	return &configError{path, err.Error()}
}

// at names where key came from: a line of the config file, or the file.
func (c *Config) at(key string) string {
	if c.file == "" {
		// No file: the value came from a flag or a default.
		return "--" + strings.ReplaceAll(strings.SplitN(key, ".", 2)[0], "_", "-")
	}
	if l, ok := c.lines[key]; ok {
		return fmt.Sprintf("%s:%d", c.file, l)
	}
	return c.file
}

// defaults fills unset fields with the built-in defaults.
func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	if c.SSH == "" {
		c.SSH = "127.0.0.1:22"
	}
	if c.SniffTimeout == 0 {
		c.SniffTimeout = duration(mux.DefaultSniffTimeout)
	}
	if c.MaxPendingSniffs == 0 {
		c.MaxPendingSniffs = mux.DefaultMaxPendingSniffs
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = duration(defaultShutdownGrace)
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.OnTimeout == "" {
		c.OnTimeout = "ssh"
	}
	if c.Fallback == "" {
		c.Fallback = "ssh"
	}
	if c.StateDir == "" {
		c.StateDir = defaultStateDir()
	}
	if c.AdminSocket == "" {
		c.AdminSocket = defaultAdminSocket()
	}
}

// resolved is a validated Config turned into what the packages take.
type resolved struct {
	routes []httproute.Route
	table  *httproute.Table
	probes []probeSpec
}

type probeSpec struct {
	name   string
	prefix []byte
	re     *regexp.Regexp
	target string
}

// validate checks every field and returns all problems, each with its
// place.
func (c *Config) validate() (*resolved, error) {
	var es configErrors
	bad := func(key, format string, args ...any) {
		es = append(es, &configError{c.at(key), fmt.Sprintf(format, args...)})
	}
	if err := checkHostPort(c.Listen, true); err != nil {
		bad("listen", "listen %q: %v", c.Listen, err)
	}
	if err := checkHostPort(c.SSH, false); err != nil {
		bad("ssh", "ssh %q: %v", c.SSH, err)
	}
	for _, k := range []struct{ key, v string }{{"on_timeout", c.OnTimeout}, {"fallback", c.Fallback}} {
		if k.v != "ssh" && k.v != "close" {
			if err := checkHostPort(k.v, false); err != nil {
				bad(k.key, "%s %q: want ssh, close or host:port: %v", k.key, k.v, err)
			}
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "log_format %q: want text or json", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		bad("log_level", "%v", err)
	}
	c.validateRedirect(bad)
	c.validateTLS(bad)
	if c.AdminListen != "" {
		if err := checkHostPort(c.AdminListen, true); err != nil {
			bad("admin_listen", "admin_listen %q: %v", c.AdminListen, err)
		}
		if len(c.AdminToken) < 16 {
			bad("admin_token", "admin_listen needs admin_token of 16 or more characters: any local user can reach TCP")
		}
	}
	if c.MetricsPath != "" && !strings.HasPrefix(c.MetricsPath, "/") {
		bad("metrics_path", "metrics_path %q must start with /", c.MetricsPath)
	}
	r := &resolved{}
	r.routes = c.routes(bad, func(err error) { es = append(es, err) })
	for i, p := range c.Protocols {
		key := fmt.Sprintf("protocol.%d", i+1)
		ps, err := p.resolve()
		if err != nil {
			bad(key, "protocol %d (%s): %v", i+1, p.Name, err)
			continue
		}
		r.probes = append(r.probes, ps)
	}
	if len(es) == 0 {
		t, err := httproute.NewTable(r.routes)
		if err != nil {
			bad("route", "%v", err)
		}
		r.table = t
	}
	if len(es) > 0 {
		return nil, es
	}
	return r, nil
}

// routes converts --route specs, or else the file's [[route]] tables.
func (c *Config) routes(bad func(key, format string, args ...any), add func(error)) []httproute.Route {
	var out []httproute.Route
	if len(c.routeSpecs) > 0 {
		for _, s := range c.routeSpecs {
			r, err := httproute.ParseSpec(s)
			if err != nil {
				add(&configError{"--route", err.Error()})
				continue
			}
			out = append(out, r)
		}
		return out
	}
	for i, rc := range c.Routes {
		key := fmt.Sprintf("route.%d", i+1)
		r, err := rc.route()
		if err == nil {
			_, err = httproute.NewTable([]httproute.Route{r})
		}
		if err != nil {
			bad(key, "route %d: %v", i+1, err)
			continue
		}
		out = append(out, r)
	}
	return out
}

func (rc routeConfig) route() (httproute.Route, error) {
	r := httproute.Route{
		Name:    rc.Name,
		Policy:  rc.Policy,
		Tag:     rc.Tag,
		Retries: rc.Retries,
		Health: httproute.HealthCheck{Kind: rc.Health.Check, Path: rc.Health.Path, Interval: time.Duration(rc.Health.Interval),
			Timeout: time.Duration(rc.Health.Timeout), Healthy: rc.Health.Healthy, Unhealthy: rc.Health.Unhealthy},
		Passive: httproute.PassiveHealth{MaxFails: rc.Passive.MaxFails, Window: time.Duration(rc.Passive.Window),
			Cooldown: time.Duration(rc.Passive.Cooldown)},
		Host:                  rc.Host,
		Path:                  rc.Path,
		StripPrefix:           rc.StripPrefix,
		Rewrite:               rc.Rewrite,
		UpstreamHost:          rc.UpstreamHost,
		DialTimeout:           time.Duration(rc.DialTimeout),
		ResponseHeaderTimeout: time.Duration(rc.ResponseHeaderTimeout),
		RequestHeaders:        httproute.HeaderOps(rc.RequestHeaders),
		ResponseHeaders:       httproute.HeaderOps(rc.ResponseHeaders),
	}
	if r.Path == "" {
		r.Path = "/"
	}
	switch u := rc.Upstream.(type) {
	case string:
		r.Upstreams = []string{u}
	case []any:
		for _, v := range u {
			switch v := v.(type) {
			case string:
				r.Upstreams = append(r.Upstreams, v)
			case map[string]any:
				addr, opts, err := upstreamTable(v)
				if err != nil {
					return r, err
				}
				r.Upstreams = append(r.Upstreams, addr)
				if r.UpstreamOptions == nil {
					r.UpstreamOptions = map[string]httproute.UpstreamOptions{}
				}
				r.UpstreamOptions[addr] = opts
			default:
				return r, fmt.Errorf("upstream: want a string, or a table with address, weight and tags, got %v", v)
			}
		}
	case nil:
		return r, errors.New("upstream is missing")
	default:
		return r, fmt.Errorf("upstream: want a string or a list of strings, got %v", u)
	}
	return r, nil
}

// upstreamTable reads {address = "...", weight = 2, tags = ["blue"]}.
func upstreamTable(m map[string]any) (string, httproute.UpstreamOptions, error) {
	var o httproute.UpstreamOptions
	addr, _ := m["address"].(string)
	if addr == "" {
		return "", o, errors.New("upstream table: address is missing")
	}
	for k, v := range m {
		switch k {
		case "address":
		case "weight":
			w, ok := v.(int64)
			if !ok || w < 1 {
				return "", o, fmt.Errorf("upstream %s: weight must be a positive whole number", addr)
			}
			o.Weight = int(w)
		case "tags":
			list, ok := v.([]any)
			if !ok {
				return "", o, fmt.Errorf("upstream %s: tags must be a list of strings", addr)
			}
			for _, t := range list {
				ts, ok := t.(string)
				if !ok {
					return "", o, fmt.Errorf("upstream %s: tags must be a list of strings", addr)
				}
				o.Tags = append(o.Tags, ts)
			}
		default:
			return "", o, fmt.Errorf("upstream %s: unknown key %q (address, weight, tags)", addr, k)
		}
	}
	return addr, o, nil
}

func (p protocolEntry) resolve() (probeSpec, error) {
	ps := probeSpec{name: p.Name, prefix: []byte(p.Prefix), target: p.Target}
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
		ps.prefix = b
	}
	if p.Regex != "" {
		re, err := regexp.Compile(p.Regex)
		if err != nil {
			return ps, fmt.Errorf("regex: %v", err)
		}
		ps.re = re
	}
	if len(ps.prefix) == 0 && ps.re == nil {
		return ps, errors.New("needs prefix, prefix_hex or regex")
	}
	if err := checkHostPort(p.Target, false); err != nil {
		return ps, fmt.Errorf("target %q: %v", p.Target, err)
	}
	return ps, nil
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

// validateRedirect checks redirect ports and that redirected connections
// can reach the listener: REDIRECT delivers them to the address of the
// interface they arrived on, never to a loopback-only listener.
func (c *Config) validateRedirect(bad func(key, format string, args ...any)) {
	for _, a := range c.RedirectAddrs {
		if net.ParseIP(a) == nil {
			bad("redirect_addresses", "redirect_addresses: %q is not an IP address", a)
		}
	}
	if len(c.Redirect) == 0 {
		if len(c.RedirectIfaces) > 0 || len(c.RedirectAddrs) > 0 || c.RedirectLocal {
			bad("redirect", "redirect_interfaces, redirect_addresses and redirect_local need redirect ports")
		}
		return
	}
	_, lport, _ := net.SplitHostPort(c.Listen)
	for _, p := range c.Redirect {
		if p < 1 || p > 65535 {
			bad("redirect", "redirect port %d out of range", p)
		} else if strconv.Itoa(p) == lport {
			bad("redirect", "redirect port %d is the listen port", p)
		}
	}
	host, _, _ := net.SplitHostPort(c.Listen)
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		bad("listen", "redirect needs listen on all addresses (such as :%s), not %s: redirected connections arrive at the interface's own address", lport, host)
	}
}

var headerRe = regexp.MustCompile(`^\s*\[\[?\s*([A-Za-z0-9_.]+)\s*\]\]?`)

// keyLines maps each key of a TOML file to its line: "listen",
// "route.2.path", and "route.2" for a table's header. It reads lines, not
// full TOML (multi-line values are not followed), which is enough to point
// at a problem.
func keyLines(src []byte) map[string]int {
	lines := map[string]int{}
	counts := map[string]int{}
	table := ""
	for i, line := range strings.Split(string(src), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		if m := headerRe.FindStringSubmatch(t); m != nil {
			name := m[1]
			if strings.HasPrefix(t, "[[") {
				counts[name]++
				table = fmt.Sprintf("%s.%d", name, counts[name])
			} else if first, rest, ok := strings.Cut(name, "."); ok && counts[first] > 0 {
				table = fmt.Sprintf("%s.%d.%s", first, counts[first], rest)
			} else {
				table = name
			}
			lines[table] = i + 1
			continue
		}
		if k, _, ok := strings.Cut(t, "="); ok {
			key := strings.Trim(strings.TrimSpace(k), `"'`)
			if table != "" {
				key = table + "." + key
			}
			if _, seen := lines[key]; !seen {
				lines[key] = i + 1
			}
		}
	}
	return lines
}
