package status

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"time"
)

// Prefix is where the page lives on the one port.
const Prefix = "/.oneport/"

//go:embed assets
var assets embed.FS

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"join":  func(s []string) string { return strings.Join(s, ", ") },
	"bar":   barHeight,
	"since": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"nonzero": func(m map[string]int64) bool {
		for _, n := range m {
			if n != 0 {
				return true
			}
		}
		return false
	},
}).ParseFS(assets, "assets/page.html"))

// Page serves the status page, its JSON, its assets and the CA root under
// Prefix.
type Page struct {
	// Facts gathers what the page shows; host is how the client reached
	// this box (the request's Host), for the connect line.
	Facts func(host string) Facts
	// CARoot returns the internal CA's root certificate (PEM); nil, or an
	// error, answers /.oneport/ca.pem with 404.
	CARoot func() ([]byte, error)
	// Allow decides who may see the page; nil means Loopback. Requests it
	// refuses get the same 404 as a path that does not exist.
	Allow func(*http.Request) bool
}

// Loopback allows requests from a loopback address that carry no header a
// proxy adds: a proxy on the box (cloudflared, an SSH tunnel's web
// front, a provider's agent) connects from 127.0.0.1 on behalf of the
// internet, and says so in these headers.
func Loopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return false
	}
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip", "Cf-Connecting-Ip", "True-Client-Ip"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	return true
}

func (p *Page) allowed(r *http.Request) bool {
	if p.Allow != nil {
		return p.Allow(r)
	}
	return Loopback(r)
}

// ServeHTTP serves Prefix (the page), Prefix+"status.json",
// Prefix+"ca.pem" and the page's script and style, to allowed clients
// only; anything else is a 404.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.allowed(r) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusFound)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	switch strings.TrimPrefix(r.URL.Path, Prefix) {
	case "":
		p.serveHTML(w, r)
	case "status.json":
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(p.Facts(r.Host))
	case "ca.pem":
		p.serveCA(w, r)
	case "page.js":
		serveAsset(w, "assets/page.js", "text/javascript; charset=utf-8")
	case "style.css":
		serveAsset(w, "assets/style.css", "text/css; charset=utf-8")
	default:
		http.NotFound(w, r)
	}
}

func (p *Page) serveHTML(w http.ResponseWriter, r *http.Request) {
	f := p.Facts(r.Host)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.Execute(w, f); err != nil {
		// Headers are gone; the page is cut short, which the reader sees.
		fmt.Fprintf(w, "\n<p>status page error: %s</p>", template.HTMLEscapeString(err.Error()))
	}
}

func (p *Page) serveCA(w http.ResponseWriter, r *http.Request) {
	if p.CARoot == nil {
		http.NotFound(w, r)
		return
	}
	pem, err := p.CARoot()
	if err != nil || len(pem) == 0 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="oneport-root.pem"`)
	w.Write(pem)
}

func serveAsset(w http.ResponseWriter, name, ctype string) {
	b, err := assets.ReadFile(name)
	if err != nil {
		http.Error(w, "missing asset", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Write(b)
}

// barHeight is a rate bar's height in percent of the busiest bucket.
func barHeight(n int64, all []int64) int {
	var max int64
	for _, v := range all {
		max = maxInt(max, v)
	}
	if max == 0 || n == 0 {
		return 0
	}
	return int(2 + 98*n/max)
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
