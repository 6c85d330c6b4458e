package daemon

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/httproute/gateway"
	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/discover"
)

// discovery is the layer of discovered routes: a Handler of its own,
// consulted after the configured routes, whose table is rebuilt from each
// scan. Configured routes (and the admin API's changes to them) never see
// it, so nothing discovered is persisted or overrides a route the user
// wrote.
type discovery struct {
	handler  *httproute.Handler
	watcher  *discover.Watcher
	interval time.Duration
	stop     context.CancelFunc
	done     chan struct{}
	routes   []httproute.Route // last applied; owned by the watcher's goroutine
	// gw answers /v1/ for every model server found, when no configured
	// route is a gateway: one base URL with nothing configured. Nil
	// otherwise.
	gw *gateway.Gateway
}

// startDiscovery runs discovery when cfg turns it on (by default: when no
// routes are configured), replacing one already running with another
// interval. It is called at start and on reload, with s.mu held or before
// serving.
func (s *server) startDiscovery(ctx context.Context, cfg *config.Config, res *config.Resolved) {
	old := s.disc.Load()
	on := cfg.DiscoverOn(res.Table.Len())
	iv := time.Duration(cfg.DiscoverInterval)
	// A reload that adds or removes a configured gateway route starts
	// discovery anew, so that /v1/ is discovery's only while no configured
	// route is a gateway.
	if old != nil && on && old.interval == iv && (old.gw == nil) == (len(res.Gateways) > 0) {
		return
	}
	if old != nil {
		s.disc.Store(nil)
		old.close()
	}
	if !on {
		return
	}
	h, err := httproute.NewHandler(nil, httproute.WithLogger(s.log), httproute.WithObserver(s.metrics.observe))
	if err != nil {
		s.log.Error("discovery disabled", "err", err)
		return
	}
	d := &discovery{handler: h, interval: iv, done: make(chan struct{})}
	if len(res.Gateways) == 0 {
		d.gw, err = gateway.New(gateway.Config{Name: discover.RoutePrefix + "gateway", ModelAllowed: keyAllowsModel,
			KeyName: keyName, Metrics: s.gw.metrics, Log: s.log})
		if err != nil {
			s.log.Error("discovery's model gateway disabled", "err", err)
		}
	}
	d.watcher = &discover.Watcher{
		Scanner:  &discover.Scanner{Skip: s.opts.DiscoverSkip, Log: s.log},
		Interval: iv,
		Log:      s.log,
		OnScan:   func(snap *discover.Snapshot) { s.applyDiscovered(d, snap) },
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.stop = cancel
	go func() {
		defer close(d.done)
		d.watcher.Run(wctx)
	}()
	s.disc.Store(d)
	s.log.Info("discovering local model servers and apps", "interval", iv)
}

// applyDiscovered swaps in the routes of a new scan when they differ from
// the last ones, and tells Options.OnDiscover.
func (s *server) applyDiscovered(d *discovery, snap *discover.Snapshot) {
	routes := discover.Routes(snap)
	ups := discoveredUpstreams(snap)
	if d.gw != nil && len(ups) > 0 {
		if err := d.gw.SetDiscovered(ups); err != nil {
			s.log.Error("discovery's model gateway refused the servers found", "err", err)
		}
		d.gw.Refresh(context.Background())
		routes = append(routes, gatewayRoute(d.gw, ups))
	}
	if !discover.SameRoutes(routes, d.routes) {
		t, err := httproute.NewTable(routes)
		if err != nil {
			s.log.Error("discovered routes refused", "err", err)
		} else {
			d.handler.SetTable(t)
			d.routes = routes
			s.log.Info("discovered routes", "routes", len(routes), "servers", len(snap.Servers))
		}
	}
	s.gw.SetDiscovered(ups)
	if s.opts.OnDiscover != nil {
		s.opts.OnDiscover(snap)
	}
}

// gatewayRoute is the discovered layer's /v1/ route: the prefix kept,
// every request answered by gw, which routes it by its model to the
// servers found (ups, listed so that the route is valid and changes when
// they do).
func gatewayRoute(gw *gateway.Gateway, ups []gateway.Upstream) httproute.Route {
	keep := false
	r := httproute.Route{Name: discover.RoutePrefix + "gateway", Path: "/v1/", StripPrefix: &keep, Serve: gw}
	for _, u := range ups {
		r.Upstreams = append(r.Upstreams, u.Address)
	}
	slices.Sort(r.Upstreams)
	return r
}

// close stops the watcher, waits for it, and releases the layer's
// upstream connections.
func (d *discovery) close() {
	d.stop()
	<-d.done
	d.handler.CloseIdleConnections()
}

// stopDiscovery ends discovery at shutdown.
func (s *server) stopDiscovery() {
	if d := s.disc.Swap(nil); d != nil {
		d.close()
	}
}

// Discovered returns the latest discovery scan, nil when discovery is off
// or has not finished a scan yet.
func (s *server) discovered() *discover.Snapshot {
	if d := s.disc.Load(); d != nil {
		return d.watcher.Snapshot()
	}
	return nil
}

// resolve finds the route r goes to, the path its upstream receives and
// the handler that serves it: the configured routes first, then the
// discovered ones when no configured route but the catch-all "/" matches.
// Routing (routeHTTP) and the key gate (setupKeys) both ask it, so the
// deny list and key scopes are checked against the very route that
// serves r. With no route, h is the configured handler (its 404).
func (s *server) resolve(r *http.Request) (h *httproute.Handler, rt *httproute.Route, upPath string, ok bool) {
	rt, upPath, ok = s.handler.Table().Match(r.Host, r.URL.Path)
	if d := s.disc.Load(); d != nil && (!ok || rt.Host == "" && rt.Path == "/") {
		if drt, dup, dok := d.handler.Table().Match(r.Host, r.URL.Path); dok {
			return d.handler, drt, dup, true
		}
	}
	return s.handler, rt, upPath, ok
}

// routeHTTP serves r by the route resolve finds.
func (s *server) routeHTTP(w http.ResponseWriter, r *http.Request) {
	h, _, _, _ := s.resolve(r)
	h.ServeHTTP(w, r)
}
