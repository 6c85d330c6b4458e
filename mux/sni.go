package mux

import (
	"net"
	"path"
	"slices"
	"strings"
)

// SNIRoute sends TLS connections whose ClientHello matches to Target
// without terminating them.
type SNIRoute struct {
	// SNI is a glob (path.Match syntax, case-insensitive) on the server
	// name, such as "jupyter.example.com" or "*.example.com"; empty
	// matches any name, including none.
	SNI string
	// ALPN, if set, must be one of the protocols the client offers.
	ALPN string
	// Target receives the matching connections, untouched.
	Target Target
}

// Matches reports whether a ClientHello with sni and alpn matches.
func (r SNIRoute) Matches(sni string, alpn []string) bool {
	if r.SNI != "" {
		ok, err := path.Match(strings.ToLower(r.SNI), strings.ToLower(sni))
		if err != nil || !ok {
			return false
		}
	}
	return r.ALPN == "" || slices.Contains(alpn, r.ALPN)
}

// SNIRouter is a TLS target that passes connections through by SNI and
// ALPN, like sslh's tls probe: the first matching route wins, in order,
// and the rest go to Default (which may terminate them).
type SNIRouter struct {
	Routes  []SNIRoute
	Default Target
}

// HandleConn routes c by its sniffed ClientHello.
func (r *SNIRouter) HandleConn(c net.Conn) {
	var sn Sniffed
	if mc, ok := c.(*Conn); ok {
		sn = mc.Sniffed()
	}
	for _, rt := range r.Routes {
		if rt.Matches(sn.SNI, sn.ALPN) {
			if mc, ok := c.(*Conn); ok {
				mc.target = targetName(rt.Target, sn)
			}
			rt.Target.HandleConn(c)
			return
		}
	}
	if r.Default == nil {
		c.Close()
		return
	}
	r.Default.HandleConn(c)
}
