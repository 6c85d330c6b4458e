package httproute

import (
	"cmp"
	"net"
	"path"
	"slices"
	"strings"
)

// Table is an immutable, compiled set of routes: nothing changes it once
// NewTable has returned, and a changed set of routes is a new Table. Build
// it with NewTable; a Handler swaps whole tables, so a reload is atomic.
// A Table may be given to any number of Handlers, each of which serves
// its own copy wired to its upstream connections and health state.
type Table struct {
	routes []*compiled // in match order
}

// NewTable validates and compiles routes, which it copies: changing them
// afterwards does not change the Table. The error names the first bad
// route and what is wrong with it.
func NewTable(routes []Route) (*Table, error) {
	t := &Table{}
	for i := range routes {
		c, err := compile(routes[i])
		if err != nil {
			return nil, err
		}
		t.routes = append(t.routes, c)
	}
	// Host routes before host-less ones, more specific hosts first; then
	// exact paths, regular expressions (in config order), and the longest
	// prefix.
	slices.SortStableFunc(t.routes, func(a, b *compiled) int {
		return cmp.Or(
			cmp.Compare(a.hostKind, b.hostKind),
			-cmp.Compare(len(a.host), len(b.host)),
			cmp.Compare(a.pathKind, b.pathKind),
			-cmp.Compare(len(a.prefix)*boolInt(a.pathKind == pathPrefix), len(b.prefix)*boolInt(b.pathKind == pathPrefix)),
		)
	})
	return t, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Routes returns copies of the table's routes in match order; the caller
// may change them freely.
func (t *Table) Routes() []Route {
	out := make([]Route, len(t.routes))
	for i, c := range t.routes {
		out[i] = c.Route.clone()
	}
	return out
}

// Len returns the number of routes.
func (t *Table) Len() int { return len(t.routes) }

// Match finds the route for a request's Host header and path. The path is
// cleaned first (dot segments resolved, repeated slashes folded), and the
// returned path, which is what the upstream receives, derives from the
// cleaned one: the upstream reads exactly the path that was matched. The
// returned Route belongs to the table and must not be changed.
func (t *Table) Match(hostport, reqPath string) (r *Route, fwdPath string, ok bool) {
	c, p := t.match(normalizeHost(hostport), CleanPath(reqPath))
	if c == nil {
		return nil, "", false
	}
	return c.Route, p, true
}

func (t *Table) match(host, clean string) (*compiled, string) {
	for _, c := range t.routes {
		if !c.matchHost(host) {
			continue
		}
		if p, ok := c.matchPath(clean); ok {
			return c, p
		}
	}
	return nil, ""
}

// normalizeHost lowercases a Host header and drops its port and IPv6
// brackets.
func normalizeHost(hostport string) string {
	h := hostport
	if strings.IndexByte(h, ':') < 0 {
		// No port: spares SplitHostPort's error, an allocation.
	} else if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// CleanPath resolves "." and ".." segments of a decoded URL path and folds
// repeated slashes, keeping a trailing slash. It is what routes match
// against and what upstreams receive, so "/embed/../admin" and
// "/embed/%2e%2e/admin" are routed, and forwarded, as "/admin".
func CleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// validHostPort reports whether a Host value's port, if it has one, is a
// port number (RFC 3986 3.2.3): "name:abc" and "name:99999" are not, nor
// is a bare IPv6 address. An empty port is allowed.
func validHostPort(host string) bool {
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return true
	}
	if host[0] == '[' {
		j := strings.LastIndexByte(host, ']')
		switch {
		case j == len(host)-1:
			return true
		case j < 0 || j+1 != i:
			return false
		}
	} else if strings.IndexByte(host, ':') != i {
		return false
	}
	port := host[i+1:]
	if len(port) > 5 {
		return false
	}
	n := 0
	for k := 0; k < len(port); k++ {
		if port[k] < '0' || port[k] > '9' {
			return false
		}
		n = n*10 + int(port[k]-'0')
	}
	return n <= 65535
}
