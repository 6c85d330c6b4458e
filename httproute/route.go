package httproute

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Route sends requests whose host and path match to its upstreams. The
// zero value is not useful; build one by hand or with ParseSpec, then
// compile it into a Table with NewTable.
type Route struct {
	// Host is the host pattern: "" (any host), an exact name or IP
	// ("llm.example.com"), a wildcard ("*.example.com", one or more
	// labels before the suffix), or a first label ("embed.*", any
	// domain). Hosts compare case-insensitively, without the port.
	Host string
	// Path is the path pattern: "=/health" (exact), "~^/v1/(chat|x)"
	// (regular expression, in config order), or a prefix such as
	// "/embed" or "/embed/", which matches "/embed" and "/embed/..." but
	// never "/embedding". "/" is the default route.
	Path string
	// Upstreams are where requests go: "host:port", "http://host:port",
	// "https://host:port", "h2c://host:port" (HTTP/2 without TLS) or
	// "unix:/path.sock", each optionally with a base path.
	Upstreams []string
	// UpstreamOptions sets weights and tags, keyed by the address as
	// written in Upstreams. Missing entries have weight 1 and no tags.
	UpstreamOptions map[string]UpstreamOptions
	// Policy picks among the route's healthy upstreams: PolicyLeastConn
	// (the default: long generations spread evenly), PolicyRoundRobin
	// (weighted), PolicyIPHash (a client sticks to one upstream), or
	// PolicyFirst (the first available, in order: failover).
	Policy string
	// Tag, if set, limits the route to upstreams carrying it: switching
	// it moves new requests to another pool (blue/green) while requests
	// in flight finish where they are.
	Tag string
	// Retries is how many other upstreams a failed request may try: only
	// requests whose body was not sent yet, and only idempotent ones
	// unless the upstream refused the connection. Zero means
	// DefaultRetries; negative means none.
	Retries int
	// Health configures active health checks; the zero value runs none.
	Health HealthCheck
	// Passive configures taking an upstream out after failures.
	Passive PassiveHealth
	// StripPrefix removes a prefix route's prefix before forwarding (as
	// Caddy's handle_path does); nil means true. Ignored for exact and
	// regex paths.
	StripPrefix *bool
	// Rewrite, if set, replaces the matched prefix (it implies
	// stripping).
	Rewrite string
	// UpstreamHost sends the upstream's host:port as Host instead of the
	// client's.
	UpstreamHost bool
	// RequestHeaders and ResponseHeaders are changed on the way through.
	RequestHeaders, ResponseHeaders HeaderOps
	// DialTimeout bounds connecting to an upstream; zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for an upstream's response
	// headers, its time to first byte (a streamed body may then take as
	// long as it takes); zero means DefaultResponseHeaderTimeout. Set it
	// longer on a route whose model loads on its first request.
	ResponseHeaderTimeout time.Duration
	// MaxResponseHeaderBytes bounds the size of an upstream's response
	// header, 1xx responses included; zero means
	// DefaultMaxResponseHeaderBytes. Past it the client gets a 502.
	MaxResponseHeaderBytes int
	// Name labels the route in logs; empty means its spec.
	Name string

	// Auth, AllowAdmin, UpstreamBearer and CORSOrigins are read by the
	// authentication handler in front of the router (through Table.Match),
	// not by the router itself. Auth "none" makes the route public when
	// keys exist ("" and "key" require one); AllowAdmin opens model
	// servers' admin endpoints; UpstreamBearer replaces the client's
	// credential upstream; CORSOrigins are the origins browsers may call
	// the route from ("*": any).
	Auth           string
	AllowAdmin     bool
	UpstreamBearer string
	CORSOrigins    []string
	// Serve, if set, answers the route's requests in place of the reverse
	// proxy, after matching: it sees the path to forward in r.URL.Path,
	// and may call Annotate. The model gateway (package
	// httproute/gateway) is one. Upstreams are still required and
	// checked, but not used by the Handler.
	Serve http.Handler
}

// UpstreamOptions are settings of one upstream of a route.
type UpstreamOptions struct {
	// Weight is its share under PolicyRoundRobin and PolicyIPHash, and
	// divides its load under PolicyLeastConn; zero means 1.
	Weight int
	// Tags name the pools it belongs to (see Route.Tag).
	Tags []string
}

// Load-balancing policies.
const (
	PolicyLeastConn  = "least_conn"
	PolicyRoundRobin = "round_robin"
	PolicyIPHash     = "ip_hash"
	PolicyFirst      = "first"
)

// DefaultRetries is Route.Retries' zero value.
const DefaultRetries = 2

// HealthCheck is an active health check. With Kind empty, none runs.
type HealthCheck struct {
	// Kind is "http" (GET Path, healthy on 2xx/3xx) or "tcp" (connect).
	Kind string
	// Path is requested by "http" checks; empty means "/health", which
	// vLLM, SGLang, TGI and TEI serve.
	Path string
	// Interval between checks (default 5s) and Timeout of one (default 2s).
	Interval, Timeout time.Duration
	// Healthy and Unhealthy are how many consecutive results flip the
	// state (defaults 2 and 3).
	Healthy, Unhealthy int
}

// PassiveHealth takes an upstream out for Cooldown after MaxFails failed
// requests (connection errors, not HTTP statuses) within Window.
type PassiveHealth struct {
	// MaxFails: zero means 3, negative turns passive checks off.
	MaxFails int
	// Window (default 10s) and Cooldown (default 30s).
	Window, Cooldown time.Duration
}

// HeaderOps changes headers: Delete first, then Set, then Add.
type HeaderOps struct {
	Set    map[string]string
	Add    map[string]string
	Delete []string
}

func (o HeaderOps) apply(h http.Header) {
	for _, k := range o.Delete {
		h.Del(k)
	}
	for k, v := range o.Set {
		h.Set(k, v)
	}
	for k, v := range o.Add {
		h.Add(k, v)
	}
}

func (o HeaderOps) empty() bool { return len(o.Set) == 0 && len(o.Add) == 0 && len(o.Delete) == 0 }

// Defaults for Route's zero-valued timeouts.
const (
	DefaultDialTimeout = 5 * time.Second
	// DefaultResponseHeaderTimeout is long enough for a queued request's
	// prompt to be processed on a busy model server, and short enough that
	// a server that accepted and hung shows as a 504 while the user still
	// waits; it bounds only the time to the first byte.
	DefaultResponseHeaderTimeout = 2 * time.Minute
)

// DefaultMaxResponseHeaderBytes is Route.MaxResponseHeaderBytes' zero
// value. An upstream that sends header fields forever would otherwise
// grow oneport's memory until the client gives up; real model servers
// send well under 4 KiB, and request headers are bounded alike
// (http.DefaultMaxHeaderBytes).
const DefaultMaxResponseHeaderBytes = 64 << 10

// Spec returns the route in --route syntax.
func (r *Route) Spec() string {
	ups := make([]string, len(r.Upstreams))
	for i, u := range r.Upstreams {
		ups[i] = u
		if o, ok := r.UpstreamOptions[u]; ok {
			if o.Weight > 0 {
				ups[i] += "*" + strconv.Itoa(o.Weight)
			}
			for _, t := range o.Tags {
				ups[i] += "#" + t
			}
		}
	}
	return r.Host + r.Path + r.keepMarker() + "=" + strings.Join(ups, ",")
}

// clone returns a deep copy of r: it shares no slice, map or pointer
// with r.
func (r Route) clone() Route {
	r.Upstreams = slices.Clone(r.Upstreams)
	if r.UpstreamOptions != nil {
		opts := make(map[string]UpstreamOptions, len(r.UpstreamOptions))
		for k, o := range r.UpstreamOptions {
			o.Tags = slices.Clone(o.Tags)
			opts[k] = o
		}
		r.UpstreamOptions = opts
	}
	if r.StripPrefix != nil {
		strip := *r.StripPrefix
		r.StripPrefix = &strip
	}
	r.RequestHeaders, r.ResponseHeaders = r.RequestHeaders.clone(), r.ResponseHeaders.clone()
	return r
}

func (o HeaderOps) clone() HeaderOps {
	return HeaderOps{Set: maps.Clone(o.Set), Add: maps.Clone(o.Add), Delete: slices.Clone(o.Delete)}
}

func (r *Route) name() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Host + r.Path
}

// ParseSpec parses a --route value: [HOST]PATH=UPSTREAM[,UPSTREAM...],
// where PATH is "/prefix", "=/exact" or "~regexp". A regular expression
// ends at the last "=", other paths at the first. A prefix followed by
// KeepMarker ("/jupyter/+=...") is kept when forwarding (StripPrefix
// false), for apps told their base URL.
func ParseSpec(spec string) (Route, error) {
	i := strings.IndexAny(spec, "/=~")
	if i < 0 {
		return Route{}, fmt.Errorf("route %q: want [HOST]/PATH=UPSTREAM", spec)
	}
	r := Route{Host: spec[:i]}
	rest := spec[i:]
	var j int
	switch rest[0] {
	case '~':
		j = strings.LastIndexByte(rest, '=')
	case '=':
		j = strings.IndexByte(rest[1:], '=') + 1
	default:
		j = strings.IndexByte(rest, '=')
	}
	if j <= 0 {
		return Route{}, fmt.Errorf("route %q: missing =UPSTREAM", spec)
	}
	r.Path = rest[:j]
	if p, ok := strings.CutSuffix(r.Path, KeepMarker); ok && strings.HasPrefix(p, "/") {
		keep := false
		r.Path, r.StripPrefix = p, &keep
	}
	for u := range strings.SplitSeq(rest[j+1:], ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		addr, opts, err := parseUpstreamOptions(u)
		if err != nil {
			return Route{}, fmt.Errorf("route %q: %w", spec, err)
		}
		r.Upstreams = append(r.Upstreams, addr)
		if opts.Weight != 0 || len(opts.Tags) > 0 {
			if r.UpstreamOptions == nil {
				r.UpstreamOptions = map[string]UpstreamOptions{}
			}
			r.UpstreamOptions[addr] = opts
		}
	}
	if _, err := compile(r); err != nil {
		return Route{}, err
	}
	return r, nil
}

// parseUpstreamOptions splits "ADDR[*WEIGHT][#TAG...]".
func parseUpstreamOptions(s string) (string, UpstreamOptions, error) {
	var o UpstreamOptions
	addr, tags, _ := strings.Cut(s, "#")
	if tags != "" {
		o.Tags = strings.Split(tags, "#")
	}
	if a, w, ok := strings.Cut(addr, "*"); ok {
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 {
			return "", o, fmt.Errorf("upstream %q: weight %q is not a positive number", s, w)
		}
		addr, o.Weight = a, n
	}
	return addr, o, nil
}

// pathKind orders path matches: lower kinds win.
type pathKind uint8

const (
	pathExact pathKind = iota
	pathRegexp
	pathPrefix
)

// hostKind orders host matches: lower kinds win.
type hostKind uint8

const (
	hostExact hostKind = iota
	hostWildcard
	hostFirstLabel
	hostAny
)

// compiled is a validated Route ready to match.
type compiled struct {
	*Route
	hostKind  hostKind
	host      string // lowercased; for wildcards the suffix with its dot, for first labels the label
	pathKind  pathKind
	prefix    string // exact path, or prefix without trailing slash ("" for "/")
	re        *regexp.Regexp
	strip     bool
	upstreams []*upstream
	next      *atomic.Uint64 // round-robin position
	proxy     *httputil.ReverseProxy
}

func compile(r Route) (*compiled, error) {
	r = r.clone()
	c := &compiled{Route: &r}
	if err := c.compileHost(); err != nil {
		return nil, fmt.Errorf("route %q: host %q: %w", r.Spec(), r.Host, err)
	}
	if err := c.compilePath(); err != nil {
		return nil, fmt.Errorf("route %q: path %q: %w", r.Spec(), r.Path, err)
	}
	if len(r.Upstreams) == 0 {
		return nil, fmt.Errorf("route %q: no upstream", r.Spec())
	}
	switch r.Policy {
	case "", PolicyLeastConn, PolicyRoundRobin, PolicyIPHash, PolicyFirst:
	default:
		return nil, fmt.Errorf("route %q: policy %q: want least_conn, round_robin, ip_hash or first", r.Spec(), r.Policy)
	}
	switch r.Health.Kind {
	case "", "http", "tcp":
	default:
		return nil, fmt.Errorf("route %q: health check %q: want http or tcp", r.Spec(), r.Health.Kind)
	}
	if r.Health.Path != "" && !strings.HasPrefix(r.Health.Path, "/") {
		return nil, fmt.Errorf("route %q: health path %q must start with /", r.Spec(), r.Health.Path)
	}
	for addr := range r.UpstreamOptions {
		if !slices.Contains(r.Upstreams, addr) {
			return nil, fmt.Errorf("route %q: options for %q, which is not one of its upstreams", r.Spec(), addr)
		}
	}
	for _, s := range r.Upstreams {
		u, err := parseUpstream(s)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.Spec(), err)
		}
		o := r.UpstreamOptions[s]
		if o.Weight < 0 {
			return nil, fmt.Errorf("route %q: upstream %q: negative weight", r.Spec(), s)
		}
		u.weight, u.tags = max(o.Weight, 1), o.Tags
		c.upstreams = append(c.upstreams, u)
	}
	c.next = new(atomic.Uint64)
	return c, nil
}

func (c *compiled) compileHost() error {
	h := strings.ToLower(c.Route.Host)
	switch {
	case h == "":
		c.hostKind = hostAny
		return nil
	case strings.HasPrefix(h, "*."):
		c.hostKind, c.host = hostWildcard, h[1:]
		return checkLabels(h[2:])
	case strings.HasSuffix(h, ".*"):
		c.hostKind, c.host = hostFirstLabel, h[:len(h)-2]
		return checkLabels(c.host)
	}
	c.hostKind, c.host = hostExact, h
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if net.ParseIP(h[1:len(h)-1]) == nil {
			return errors.New("not an IPv6 address")
		}
		c.host = h[1 : len(h)-1]
		return nil
	}
	if net.ParseIP(h) != nil {
		return nil
	}
	return checkLabels(h)
}

// checkLabels accepts dot-separated DNS labels of letters, digits, '-' and
// '_'.
func checkLabels(s string) error {
	if s == "" {
		return errors.New("empty name")
	}
	for l := range strings.SplitSeq(s, ".") {
		if l == "" {
			return errors.New("empty label")
		}
		for _, ch := range l {
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
				if ch == ':' {
					return errors.New("a port does not belong in a host pattern (hosts match without the port)")
				}
				return fmt.Errorf("character %q not allowed (use *.suffix or label.* for wildcards)", ch)
			}
		}
	}
	return nil
}

func (c *compiled) compilePath() error {
	p := c.Route.Path
	switch {
	case p == "":
		return errors.New("empty path (use / for every path)")
	case p[0] == '=':
		if len(p) < 2 || p[1] != '/' {
			return errors.New("an exact path starts with =/")
		}
		c.pathKind, c.prefix = pathExact, p[1:]
	case p[0] == '~':
		re, err := regexp.Compile(p[1:])
		if err != nil {
			return fmt.Errorf("bad regular expression: %w", err)
		}
		c.pathKind, c.re = pathRegexp, re
	case p[0] == '/':
		if strings.Contains(p, "//") || strings.Contains(p+"/", "/../") || strings.Contains(p+"/", "/./") {
			return errors.New("a prefix must be a clean path (no //, . or .. segments)")
		}
		if strings.HasSuffix(p, KeepMarker) {
			return fmt.Errorf("a prefix ends in %q only as the keep marker of a --route spec", KeepMarker)
		}
		c.pathKind, c.prefix = pathPrefix, strings.TrimRight(p, "/")
		c.strip = c.Route.StripPrefix == nil || *c.Route.StripPrefix || c.Route.Rewrite != ""
		if c.Route.Rewrite != "" && c.Route.Rewrite[0] != '/' {
			return fmt.Errorf("rewrite %q must start with /", c.Route.Rewrite)
		}
	default:
		return errors.New("a path starts with /, =/ or ~")
	}
	return nil
}

// matchHost reports whether host (lowercased, without port) matches.
func (c *compiled) matchHost(host string) bool {
	switch c.hostKind {
	case hostAny:
		return true
	case hostExact:
		return host == c.host
	case hostWildcard:
		return len(host) > len(c.host) && strings.HasSuffix(host, c.host)
	default:
		label, rest, ok := strings.Cut(host, ".")
		return ok && rest != "" && label == c.host
	}
}

// matchPath reports whether the clean path p matches and returns the path
// to forward.
func (c *compiled) matchPath(p string) (string, bool) {
	switch c.pathKind {
	case pathExact:
		return p, p == c.prefix
	case pathRegexp:
		return p, c.re.MatchString(p)
	}
	if !hasSegmentPrefix(p, c.prefix) {
		return "", false
	}
	if !c.strip {
		return p, true
	}
	rest := p[len(c.prefix):]
	if c.Route.Rewrite != "" {
		return joinPath(c.Route.Rewrite, rest), true
	}
	if rest == "" {
		rest = "/"
	}
	return rest, true
}

// hasSegmentPrefix reports whether prefix (no trailing slash, "" for the
// root) is a whole-segment prefix of p.
func hasSegmentPrefix(p, prefix string) bool {
	return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/')
}

// joinPath joins a and b with exactly one slash between them.
func joinPath(a, b string) string {
	switch {
	case b == "":
		return a
	case strings.HasSuffix(a, "/") && strings.HasPrefix(b, "/"):
		return a + b[1:]
	case !strings.HasSuffix(a, "/") && !strings.HasPrefix(b, "/"):
		return a + "/" + b
	}
	return a + b
}
