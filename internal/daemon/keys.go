package daemon

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/auth"
	"github.com/oneport/oneport/internal/config"
)

// lastUseFlush is how often keys' last-use times are written to the store.
const lastUseFlush = time.Minute

// keyGate is the authentication in front of everything HTTP on the port,
// and the owner of the key store while oneport runs.
type keyGate struct {
	auth *auth.Handler
	log  *slog.Logger

	mu         sync.Mutex // serializes the store's reads and writes
	store      auth.Store // guarded by mu
	secretPath string
	haveSecret bool // guarded by mu

	stop chan struct{}
	done chan struct{}
}

// newKeyGate loads the key store (a store that does not parse refuses
// the start) and puts authentication in front of next. resolve finds a
// request's route as routing will (server.resolve), so that the deny
// list and key scopes see the route, configured or discovered, that
// serves it. own reports whether a path is one oneport answers itself
// besides /.oneport/ (metrics_path, tunnel_path): those need a key
// whenever keys exist, even where a public route's prefix covers them.
func newKeyGate(cfg *config.Config, resolve func(*http.Request) (*httproute.Route, string, bool), next http.Handler, own func(string) bool, log *slog.Logger, every time.Duration) (*keyGate, error) {
	g := &keyGate{log: log, store: auth.Store{Path: cfg.KeyPath()}, stop: make(chan struct{}), done: make(chan struct{})}
	keys, err := g.store.Load()
	if err != nil {
		return nil, err
	}
	g.secretPath = cfg.SessionSecretPath()
	g.auth = auth.New(auth.Options{Next: next, Log: log, IsTLS: httproute.IsTLS,
		Match: func(r *http.Request) (auth.Route, string, bool) {
			if own(r.URL.Path) {
				return auth.Route{}, "", false
			}
			rt, up, ok := resolve(r)
			if !ok {
				return auth.Route{}, "", false
			}
			return auth.Route{Name: rt.Name, Public: rt.Auth == "none", AllowAdmin: rt.AllowAdmin,
				UpstreamBearer: rt.UpstreamBearer, CORSOrigins: rt.CORSOrigins}, up, true
		}})
	g.setKeys(keys)
	if len(keys) > 0 {
		log.Info("HTTP requests need a key", "keys", len(keys), "key_file", g.store.Path)
	}
	if every <= 0 {
		every = lastUseFlush
	}
	go g.flushLoop(every)
	return g, nil
}

// reload reads the store named by cfg again and returns what puts its
// keys in force; an error, or not calling commit, leaves the keys in force.
func (g *keyGate) reload(cfg *config.Config) (commit func(), err error) {
	st := auth.Store{Path: cfg.KeyPath()}
	keys, err := st.Load()
	if err != nil {
		return nil, err
	}
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.store = st
		g.setKeys(keys)
	}, nil
}

// List, Add and Remove are the admin API's key operations.
func (g *keyGate) List() []auth.KeyStatus { return g.auth.Keys() }

func (g *keyGate) Add(spec auth.Spec) (string, error) {
	var secret string
	err := g.change(func(keys []auth.Key) ([]auth.Key, error) {
		var err error
		keys, secret, err = auth.Add(keys, spec, time.Now())
		return keys, err
	})
	return secret, err
}

func (g *keyGate) Remove(name string) error {
	return g.change(func(keys []auth.Key) ([]auth.Key, error) { return auth.Remove(keys, name) })
}

// change applies f to the store and, once written, to the running keys.
func (g *keyGate) change(f func([]auth.Key) ([]auth.Key, error)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	keys, err := g.store.Load()
	if err != nil {
		return err
	}
	if keys, err = f(keys); err != nil {
		return err
	}
	used := g.withLastUse(keys)
	if err := g.store.Save(keys); err != nil {
		return err
	}
	g.auth.MarkFlushed(used)
	g.setKeys(keys)
	return nil
}

// setKeys swaps in keys; the first time there are any, it reads (or
// makes) the session secret, so a oneport without keys writes nothing.
func (g *keyGate) setKeys(keys []auth.Key) {
	if len(keys) > 0 && !g.haveSecret {
		secret, err := auth.LoadSessionSecret(g.secretPath)
		if err != nil {
			g.log.Warn("login page off: no session secret", "err", err)
		} else {
			g.auth.SetSessionSecret(secret)
			g.haveSecret = true
		}
	}
	g.auth.SetKeys(keys)
}

// withLastUse sets the last use of keys used since the last flush and
// returns those times, to be marked flushed once written.
func (g *keyGate) withLastUse(keys []auth.Key) map[string]time.Time {
	used := g.auth.Unflushed()
	for i := range keys {
		if t, ok := used[keys[i].Name]; ok {
			keys[i].LastUsed = t
		}
	}
	return used
}

// flush writes keys' last-use times to the store, if any changed.
func (g *keyGate) flush() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	used := g.auth.Unflushed()
	if len(used) == 0 {
		return nil
	}
	keys, err := g.store.Load()
	if err != nil {
		return err
	}
	for i := range keys {
		if t, ok := used[keys[i].Name]; ok {
			keys[i].LastUsed = t
		}
	}
	if err := g.store.Save(keys); err != nil {
		return err
	}
	g.auth.MarkFlushed(used)
	g.log.Debug("keys' last use written", "keys", len(used), "key_file", g.store.Path)
	return nil
}

func (g *keyGate) flushLoop(every time.Duration) {
	defer close(g.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			if err := g.flush(); err != nil {
				g.log.Warn("writing keys' last use failed", "err", err)
			}
		}
	}
}

// close stops the flushing and flushes once more.
func (g *keyGate) close() {
	close(g.stop)
	<-g.done
	if err := g.flush(); err != nil {
		g.log.Warn("writing keys' last use failed", "err", err)
	}
}

// keyAttrs names, in the access line, the key a request came in with.
func keyAttrs(r *http.Request) []slog.Attr {
	if id, ok := auth.FromContext(r.Context()); ok {
		return []slog.Attr{slog.String("key", id.Name)}
	}
	return nil
}

// keyCollector exports each key's use, named by the key's name.
type keyCollector struct{ g *keyGate }

var (
	descKeyRequests = prometheus.NewDesc("oneport_key_requests_total", "HTTP requests let in, by API key name.", []string{"key"}, nil)
	descKeyRefused  = prometheus.NewDesc("oneport_key_refused_total", "Requests of an API key refused: denied (scope, admin endpoint, expired) or limited (rate, concurrency).", []string{"key", "reason"}, nil)
	descKeyInFlight = prometheus.NewDesc("oneport_key_requests_in_flight", "Requests in flight, by API key name.", []string{"key"}, nil)
)

func (keyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descKeyRequests
	ch <- descKeyRefused
	ch <- descKeyInFlight
}

func (c keyCollector) Collect(ch chan<- prometheus.Metric) {
	for _, k := range c.g.auth.Keys() {
		ch <- prometheus.MustNewConstMetric(descKeyRequests, prometheus.CounterValue, float64(k.Requests), k.Name)
		ch <- prometheus.MustNewConstMetric(descKeyRefused, prometheus.CounterValue, float64(k.Denied), k.Name, "denied")
		ch <- prometheus.MustNewConstMetric(descKeyRefused, prometheus.CounterValue, float64(k.Limited), k.Name, "limited")
		ch <- prometheus.MustNewConstMetric(descKeyInFlight, prometheus.GaugeValue, float64(k.InFlight), k.Name)
	}
}

// setupKeys builds the key gate in front of s.serveHTTP and registers its
// metrics.
func (s *server) setupKeys(cfg *config.Config) (http.Handler, error) {
	resolve := func(r *http.Request) (*httproute.Route, string, bool) {
		_, rt, up, ok := s.resolve(r)
		return rt, up, ok
	}
	g, err := newKeyGate(cfg, resolve, http.HandlerFunc(s.serveHTTP), s.ownPath, s.log, s.opts.KeyFlush)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	s.keys = g
	s.metrics.reg.MustRegister(keyCollector{g})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Before keys: where HTTPS is wanted, a browser is sent there
		// rather than to a login page that would take the key in clear.
		if httpsRedirect(s.config(), w, r) {
			return
		}
		g.auth.ServeHTTP(w, r)
	}), nil
}

// ownPath reports whether p is answered by oneport itself outside
// /.oneport/: the metrics path and a tunnel path set elsewhere.
func (s *server) ownPath(p string) bool {
	cfg := s.config()
	return cfg.MetricsPath != "" && p == cfg.MetricsPath || cfg.TunnelPath != "off" && p == cfg.TunnelPath
}
