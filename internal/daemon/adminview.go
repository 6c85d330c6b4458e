package daemon

import (
	"net/http"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/admin"
	"github.com/oneport/oneport/netfilter"
)

// adminView is the daemon as the admin API sees it.
type adminView struct{ s *server }

func (v adminView) Status() admin.Status {
	s, cfg := v.s, v.s.config()
	st := admin.Status{Listen: s.addr.String(), SSH: cfg.SSH, TLS: "off", Tunnel: s.tunnelStatus()}
	if r := s.redirect(); r != nil && len(r.Config().Ports) > 0 {
		for _, p := range r.Config().Ports {
			st.Redirect = append(st.Redirect, int(p))
		}
		st.CrashSafe = r.Owned()
	}
	if s.tlsOn() {
		st.TLS = cfg.TLS.Source
		if st.TLS == "" {
			st.TLS = "internal"
		}
	}
	return st
}

func (v adminView) Connections() any                  { return v.s.mux.Stats() }
func (v adminView) OpenConnections() map[string]int64 { return v.s.mux.Stats().Open }
func (v adminView) Metrics() http.Handler             { return v.s.metrics.handler() }

func (v adminView) Certs() any {
	cfg := v.s.config()
	return ListCerts(cfg.StateDir, cfg.TLS.Certs, nil)
}

// PersistRoutes runs with the daemon's lock held (admin.Server.Mu).
func (v adminView) PersistRoutes(routes []httproute.Route) error {
	return v.s.cfg.PersistRoutes(routes)
}

// redirect is the redirect in force, which a reload may replace or
// remove; readers outside the reload take it here, under the lock.
func (s *server) redirect() *netfilter.Redirect {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kernel.redirect
}
