package daemon

import (
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/httproute/gateway"
	"github.com/oneport/oneport/internal/auth"
	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/discover"
)

// gateways owns the running model gateway of each gateway route, across
// reloads: a route whose gateway settings did not change keeps its
// gateway (queues, discovered models); others get a new one.
type gateways struct {
	log     *slog.Logger
	metrics *gateway.Metrics

	// ModelAllowed and KeyName, if set, are given to every gateway built
	// after they are set (set them right after newGateways): API keys
	// decide which models a caller may use and name it in metrics.
	ModelAllowed func(r *http.Request, model string) bool
	KeyName      func(r *http.Request) string

	mu         sync.Mutex
	running    map[string]*runningGateway // by route host+path
	discovered []gateway.Upstream
}

type runningGateway struct {
	cfg gateway.Config // as resolved, without hooks
	gw  *gateway.Gateway
}

func newGateways(log *slog.Logger, reg prometheus.Registerer) (*gateways, error) {
	m, err := gateway.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &gateways{log: log, metrics: m, running: map[string]*runningGateway{}}, nil
}

// prepare builds the gateways res needs and a table whose gateway routes
// they serve. Nothing runs until commit, which starts the new gateways
// and stops those no longer used; if commit is not called, nothing
// changed.
func (gs *gateways) prepare(res *config.Resolved) (*httproute.Table, func(), error) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if len(res.Gateways) == 0 && len(gs.running) == 0 {
		return res.Table, func() {}, nil
	}
	next := map[string]*runningGateway{}
	var fresh []*runningGateway
	for _, gr := range res.Gateways {
		key := gr.Host + gr.Path
		if old := gs.running[key]; old != nil && reflect.DeepEqual(old.cfg, gr.Config) {
			next[key] = old
			continue
		}
		cfg := gr.Config
		cfg.ModelAllowed, cfg.KeyName, cfg.Metrics, cfg.Log = gs.ModelAllowed, gs.KeyName, gs.metrics, gs.log
		gw, err := gateway.New(cfg)
		if err != nil {
			return nil, nil, err
		}
		if len(gs.discovered) > 0 {
			gw.SetDiscovered(gs.discovered)
		}
		rg := &runningGateway{cfg: gr.Config, gw: gw}
		next[key], fresh = rg, append(fresh, rg)
	}
	routes := make([]httproute.Route, len(res.Routes))
	for i, r := range res.Routes {
		if rg := next[r.Host+r.Path]; rg != nil {
			r.Serve = rg.gw
		}
		routes[i] = r
	}
	t, err := httproute.NewTable(routes)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway routes: %w", err)
	}
	commit := func() {
		gs.mu.Lock()
		defer gs.mu.Unlock()
		for _, rg := range fresh {
			rg.gw.Start()
		}
		for key, rg := range gs.running {
			if next[key] != rg {
				rg.gw.Close()
			}
		}
		gs.running = next
	}
	return t, commit, nil
}

// SetDiscovered gives every gateway, now and after reloads, model servers
// found running on the box besides the configured ones.
func (gs *gateways) SetDiscovered(ups []gateway.Upstream) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	gs.discovered = ups
	for key, rg := range gs.running {
		if err := rg.gw.SetDiscovered(ups); err != nil {
			gs.log.Warn("gateway: discovered upstreams refused", "route", key, "err", err)
		}
	}
}

// close stops every gateway's discovery.
func (gs *gateways) close() {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	for _, rg := range gs.running {
		rg.gw.Close()
	}
	gs.running = map[string]*runningGateway{}
}

// keyAllowsModel lets the caller of r use model unless its API key is
// scoped to other models; with no keys, or on a public route, every model
// is allowed.
func keyAllowsModel(r *http.Request, model string) bool {
	id, ok := auth.FromContext(r.Context())
	return !ok || id.AllowsModel(model)
}

// keyName names the API key r came with, for the gateway's metrics; ""
// without one.
func keyName(r *http.Request) string {
	if id, ok := auth.FromContext(r.Context()); ok {
		return id.Name
	}
	return ""
}

// discoveredUpstreams are the model servers a discovery scan found, for
// the gateways to ask for their models.
func discoveredUpstreams(snap *discover.Snapshot) []gateway.Upstream {
	var out []gateway.Upstream
	for _, sv := range snap.Servers {
		if sv.Addr != "" && sv.Kind.ModelServer() {
			out = append(out, gateway.Upstream{Address: sv.Addr})
		}
	}
	return out
}
