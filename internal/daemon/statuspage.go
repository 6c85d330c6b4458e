package daemon

import (
	"github.com/oneport/oneport/internal/auth"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/discover"
	"github.com/oneport/oneport/internal/status"
)

// statusPage is the status page on the one port and the request counter
// it shows.
type statusPage struct {
	page status.Page
	reqs status.Counter

	mu     sync.Mutex // guards the cached CA fingerprint
	caDir  string
	caFP   string
	caPEM  []byte
	caErr  error
	caTime time.Time
}

// newStatusPage builds the page of s: loopback clients that no proxy
// forwarded see it, and so does a request that the key gate in front let
// through with an admin key, from anywhere.
func newStatusPage(s *server) *statusPage {
	sp := &statusPage{}
	sp.page.Allow = func(r *http.Request) bool {
		if id, ok := auth.FromContext(r.Context()); ok && id.Admin {
			return true
		}
		return status.Loopback(r)
	}
	sp.page.Facts = func(host string) status.Facts { return s.facts(host) }
	sp.page.CARoot = func() ([]byte, error) {
		pem, _, err := sp.ca(s)
		return pem, err
	}
	return sp
}

// serveStatus serves the status page's paths and counts every other
// request; it reports whether it answered r.
func (s *server) serveStatus(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path == "/.oneport" || strings.HasPrefix(r.URL.Path, status.Prefix) {
		s.page.page.ServeHTTP(w, r)
		return true
	}
	s.page.reqs.Add()
	return false
}

// ca returns the internal CA's root and fingerprint while TLS is
// terminated with it, read once per state directory.
func (sp *statusPage) ca(s *server) ([]byte, string, error) {
	cfg := s.config()
	if !s.tlsOn() || (cfg.TLS.Source != "" && cfg.TLS.Source != "internal") {
		return nil, "", errNoCA
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.caDir != cfg.StateDir || (sp.caErr != nil && time.Since(sp.caTime) > time.Minute) {
		sp.caDir, sp.caTime = cfg.StateDir, time.Now()
		sp.caPEM, sp.caFP, sp.caErr = RootCA(cfg.StateDir)
	}
	return sp.caPEM, sp.caFP, sp.caErr
}

type noCA struct{}

func (noCA) Error() string { return "TLS is not terminated with the internal CA" }

var errNoCA error = noCA{}

// facts gathers the status page's facts; host is how the client reached
// this box ("" for the admin API: the listen address then).
func (s *server) facts(host string) status.Facts {
	st := adminView{s}.Status()
	cfg := s.config()
	f := status.Facts{Time: time.Now(), Listen: st.Listen, SSH: st.SSH, Redirect: st.Redirect, CrashSafe: st.CrashSafe,
		TLS: st.TLS, Connections: s.mux.Stats().Open, Requests: s.page.reqs.Rates()}
	f.Routes = routeFacts(s.handler, false)
	if d := s.disc.Load(); d != nil {
		f.Discovering = true
		f.Routes = append(f.Routes, routeFacts(d.handler, true)...)
		if snap := d.watcher.Snapshot(); snap != nil {
			f.Servers, f.Models = snap.Servers, status.ModelsOf(snap)
		}
	}
	for _, c := range ListCerts(cfg.StateDir, cfg.TLS.Certs, nil) {
		f.Certs = append(f.Certs, status.Cert{Names: c.Names, Issuer: c.Issuer, Source: c.Source, Expires: c.Expires,
			DaysLeft: int(time.Until(c.Expires).Hours() / 24)})
	}
	if _, fp, err := s.page.ca(s); err == nil {
		if host == "" {
			host = st.Listen
		}
		f.CA = &status.CA{Fingerprint: fp, Download: status.Prefix + "ca.pem", Connect: "oneport connect https://" + host}
	}
	return f
}

// routeFacts lists h's routes with their upstreams' states.
func routeFacts(h *httproute.Handler, discovered bool) []status.Route {
	states := map[string]httproute.UpstreamStatus{}
	for _, u := range h.Upstreams() {
		states[u.Address] = u
	}
	var out []status.Route
	for _, r := range h.Table().Routes() {
		sr := status.Route{Name: r.Name, Host: r.Host, Path: r.Path, Discovered: discovered}
		if sr.Name == "" {
			sr.Name = r.Path
		}
		sr.Name = strings.TrimPrefix(sr.Name, discover.RoutePrefix)
		for _, a := range r.Upstreams {
			u := states[a]
			state := "up"
			switch {
			case u.Drained:
				state = "drained"
			case u.Ejected:
				state = "ejected"
			case u.Address != "" && !u.Healthy:
				state = "down"
			}
			sr.Upstreams = append(sr.Upstreams, status.Upstream{Address: a, State: state, Active: u.Active})
		}
		out = append(out, sr)
	}
	return out
}
