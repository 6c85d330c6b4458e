package httproute

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
)

// KeepMarker after a prefix in a --route spec keeps the prefix when
// forwarding: "/jupyter/+=127.0.0.1:8888" sends /jupyter/tree as
// /jupyter/tree, for apps that know their base URL (Jupyter's base_url,
// Gradio's root_path, TensorBoard's --path_prefix).
const KeepMarker = "+"

func (r *Route) keepMarker() string {
	if r.StripPrefix != nil && !*r.StripPrefix && r.Rewrite == "" && strings.HasPrefix(r.Path, "/") {
		return KeepMarker
	}
	return ""
}

// stripped returns the prefix the route removes before forwarding
// ("/app"), and the path that replaces it upstream ("" when stripped,
// Rewrite otherwise); prefix is "" when the route forwards paths as
// they came.
func (c *compiled) stripped() (prefix, base string) {
	if c.pathKind != pathPrefix || !c.strip || c.prefix == "" {
		return "", ""
	}
	return c.prefix, strings.TrimRight(c.Route.Rewrite, "/")
}

// forwardPrefix tells the upstream the prefix it is served under, in
// X-Forwarded-Prefix (as Traefik and Spring, Flask's ProxyFix and
// ASP.NET read it), and drops any the client sent.
func forwardPrefix(pr *httputil.ProxyRequest, c *compiled) {
	pr.Out.Header.Del("X-Forwarded-Prefix")
	if prefix, _ := c.stripped(); prefix != "" {
		pr.Out.Header.Set("X-Forwarded-Prefix", prefix)
	}
}

// dropH2CUpgrade removes an "Upgrade: h2c" request (RFC 7540 3.2, which
// curl --http2 sends on plain http): it is a hop-by-hop offer to this
// server, which answers it in HTTP/1.1; passed on, it makes uvicorn and
// other servers refuse the request. Other upgrades (WebSocket) pass.
func dropH2CUpgrade(h http.Header) {
	for _, v := range h.Values("Upgrade") {
		for p := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "h2c") {
				h.Del("Upgrade")
				h.Del("Connection")
				h.Del("HTTP2-Settings")
				return
			}
		}
	}
}

// modifyResponse is the route's response hook: for a route that strips
// its prefix, Location and Set-Cookie paths are put back under the prefix
// (so an app behind /app/ redirecting to /login sends the client to
// /app/login); then the route's response header operations. Nil when
// there is nothing to do.
func modifyResponse(c *compiled) func(*http.Response) error {
	prefix, base := c.stripped()
	ops := c.Route.ResponseHeaders
	if prefix == "" && ops.empty() {
		return nil
	}
	return func(resp *http.Response) error {
		if prefix != "" {
			rewriteLocation(resp, prefix, base)
			rewriteCookiePaths(resp.Header, prefix, base)
		}
		if !ops.empty() {
			ops.apply(resp.Header)
		}
		return nil
	}
}

// underPrefix maps an upstream path under base back under prefix; ok is
// false for a path outside base, or already under prefix (an app that
// read X-Forwarded-Prefix).
func underPrefix(p, prefix, base string) (string, bool) {
	if hasSegmentPrefix(p, prefix) {
		return "", false
	}
	if base != "" {
		if !hasSegmentPrefix(p, base) {
			return "", false
		}
		p = p[len(base):]
	}
	if p == "" || p == "/" {
		return prefix + "/", true
	}
	return prefix + p, true
}

// rewriteLocation puts a redirect's path back under the prefix: a
// path-absolute Location ("/login"), or an absolute URL naming the host
// the upstream was asked for (the client's, or the upstream's own
// address). Relative references resolve correctly as they are.
func rewriteLocation(resp *http.Response, prefix, base string) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return
	}
	u, err := url.Parse(loc)
	if err != nil || u.Opaque != "" {
		return
	}
	switch out := resp.Request; {
	case u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/"):
	case u.Host == "" || out == nil:
		return
	case strings.EqualFold(u.Host, clientHost(out)):
	case strings.EqualFold(u.Host, out.Host) || strings.EqualFold(u.Host, out.URL.Host):
		// The upstream named itself: send the client back to oneport.
		u.Host, u.Scheme = clientHost(out), "http"
		if out.Header.Get("X-Forwarded-Proto") == "https" {
			u.Scheme = "https"
		}
	default:
		return
	}
	p, ok := underPrefix(u.Path, prefix, base)
	if !ok {
		return
	}
	u.Path, u.RawPath = p, ""
	resp.Header.Set("Location", u.String())
}

// clientHost is the host the client asked for, from the request sent
// upstream: X-Forwarded-Host, which oneport sets, also when
// upstream_host replaced Host.
func clientHost(out *http.Request) string {
	if h := out.Header.Get("X-Forwarded-Host"); h != "" {
		return h
	}
	return out.Host
}

// rewriteCookiePaths puts each Set-Cookie's Path attribute back under the
// prefix, leaving the rest of the line as the upstream wrote it. "Path=/"
// becomes "Path=/app", which RFC 6265 5.1.4 matches for /app and /app/...
// but not /apple.
func rewriteCookiePaths(h http.Header, prefix, base string) {
	lines := h["Set-Cookie"]
	for i, line := range lines {
		attrs := strings.Split(line, ";")
		changed := false
		for j, a := range attrs[1:] {
			k, v, ok := strings.Cut(strings.TrimSpace(a), "=")
			if !ok || !strings.EqualFold(k, "path") || !strings.HasPrefix(v, "/") {
				continue
			}
			p, ok := underPrefix(v, prefix, base)
			if !ok {
				continue
			}
			if v == "/" || (base != "" && v == base) {
				p = prefix
			}
			attrs[j+1] = " " + k + "=" + p
			changed = true
		}
		if changed {
			lines[i] = strings.Join(attrs, ";")
		}
	}
}
