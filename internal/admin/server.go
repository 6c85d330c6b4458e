package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"

	"github.com/oneport/oneport/httproute"
)

// Daemon is what the admin API reads from and changes in a running
// oneport, besides its router.
type Daemon interface {
	// Status fills listen, ssh, redirect and tls; the API adds routes,
	// upstreams and connections.
	Status() Status
	// Connections is the mux's counters (GET /connections).
	Connections() any
	// OpenConnections is the open connections by protocol.
	OpenConnections() map[string]int64
	// Certs lists the certificates in use (GET /certs).
	Certs() any
	// Metrics serves the Prometheus metrics (GET /metrics).
	Metrics() http.Handler
	// PersistRoutes writes routes to the config file.
	PersistRoutes([]httproute.Route) error
}

// Server is the admin API's handler. Mu serializes route changes with the
// daemon's reloads; the zero Mu is a mutex of the Server's own.
type Server struct {
	Router *httproute.Handler
	Daemon Daemon
	// Keys, if set, serves /keys.
	Keys Keys
	Log  *slog.Logger
	Mu   sync.Locker
	// Full, if set, answers GET /status/full: everything the status page
	// shows, as JSON.
	Full func() any

	mu sync.Mutex
}

func (s *Server) lock() sync.Locker {
	if s.Mu != nil {
		return s.Mu
	}
	return &s.mu
}

// Handler returns the admin API's routes.
func (s *Server) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /status", s.status)
	if s.Full != nil {
		m.HandleFunc("GET /status/full", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Full()) })
	}
	m.HandleFunc("GET /routes", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.routes()) })
	m.HandleFunc("POST /routes", s.addRoute)
	m.HandleFunc("PUT /routes/{name...}", s.putRoute)
	m.HandleFunc("DELETE /routes/{name...}", s.deleteRoute)
	m.HandleFunc("POST /tag/{name...}", s.tag)
	m.HandleFunc("GET /upstreams", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Router.Upstreams()) })
	m.HandleFunc("POST /upstreams", s.addUpstream)
	m.HandleFunc("DELETE /upstreams/{addr}", s.deleteUpstream)
	m.HandleFunc("POST /upstreams/{addr}/drain", func(w http.ResponseWriter, r *http.Request) { s.drain(w, r, true) })
	m.HandleFunc("POST /upstreams/{addr}/enable", func(w http.ResponseWriter, r *http.Request) { s.drain(w, r, false) })
	m.HandleFunc("GET /connections", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Daemon.Connections()) })
	m.HandleFunc("GET /certs", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Daemon.Certs()) })
	m.Handle("GET /metrics", s.Daemon.Metrics())
	s.keyRoutes(m)
	return m
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, Error{Error: fmt.Sprintf(format, args...)})
}

func (s *Server) routes() []Route {
	var out []Route
	for _, r := range s.Router.Table().Routes() {
		out = append(out, RouteOf(r))
	}
	return out
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st := s.Daemon.Status()
	st.Routes, st.Upstreams, st.Connections = s.routes(), s.Router.Upstreams(), s.Daemon.OpenConnections()
	if s.Keys != nil {
		st.Keys = s.Keys.List()
	}
	writeJSON(w, 200, st)
}

// changeRoutes applies f to the current routes and swaps in the result
// atomically, or changes nothing and answers with the error. With
// ?persist=true the config file is rewritten too.
func (s *Server) changeRoutes(w http.ResponseWriter, r *http.Request, okCode int, f func([]httproute.Route) ([]httproute.Route, int, error)) {
	mu := s.lock()
	mu.Lock()
	defer mu.Unlock()
	routes, code, err := f(s.Router.Table().Routes())
	if err != nil {
		fail(w, code, "%v", err)
		return
	}
	names := map[string]bool{}
	for _, rt := range routes {
		if n := RouteName(rt); names[n] {
			fail(w, http.StatusConflict, "route name %q is used twice", n)
			return
		}
		names[RouteName(rt)] = true
	}
	t, err := httproute.NewTable(routes)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	persist := r.URL.Query().Get("persist") == "true"
	if persist {
		if err := s.Daemon.PersistRoutes(routes); err != nil {
			fail(w, http.StatusConflict, "not applied: %v", err)
			return
		}
	}
	s.Router.SetTable(t)
	s.Log.Info("routes changed through the admin API", "routes", Summary(t), "persisted", persist)
	writeJSON(w, okCode, s.routes())
}

// Summary lists a table's routes in --route syntax, for logs.
func Summary(t *httproute.Table) string {
	if t.Len() == 0 {
		return "none"
	}
	var b []byte
	for i, r := range t.Routes() {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, r.Spec()...)
	}
	return string(b)
}

func readRoute(r *http.Request) (httproute.Route, error) {
	var j Route
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return httproute.Route{}, fmt.Errorf("bad JSON: %v", err)
	}
	return j.Route()
}

func (s *Server) addRoute(w http.ResponseWriter, r *http.Request) {
	nr, err := readRoute(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	s.changeRoutes(w, r, http.StatusCreated, func(rs []httproute.Route) ([]httproute.Route, int, error) {
		for _, x := range rs {
			if RouteName(x) == RouteName(nr) {
				return nil, http.StatusConflict, fmt.Errorf("route %q exists; replace it with `oneport route set NAME SPEC` (PUT /routes/NAME)", RouteName(nr))
			}
		}
		return append(rs, nr), 0, nil
	})
}

func (s *Server) putRoute(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	nr, err := readRoute(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if nr.Name == "" {
		nr.Name = name
	}
	s.changeRoutes(w, r, http.StatusOK, func(rs []httproute.Route) ([]httproute.Route, int, error) {
		i := slices.IndexFunc(rs, func(x httproute.Route) bool { return RouteName(x) == name })
		if i < 0 {
			return nil, http.StatusNotFound, fmt.Errorf("no route named %q", name)
		}
		if err := servedInPlace(rs[i]); err != nil {
			return nil, http.StatusConflict, err
		}
		if nr.UpstreamBearer == "" { // never shown, so a route read and put back keeps it
			nr.UpstreamBearer = rs[i].UpstreamBearer
		}
		rs[i] = nr
		return rs, 0, nil
	})
}

func (s *Server) deleteRoute(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.changeRoutes(w, r, http.StatusOK, func(rs []httproute.Route) ([]httproute.Route, int, error) {
		i := slices.IndexFunc(rs, func(x httproute.Route) bool { return RouteName(x) == name })
		if i < 0 {
			return nil, http.StatusNotFound, fmt.Errorf("no route named %q", name)
		}
		return slices.Delete(rs, i, i+1), 0, nil
	})
}

// tag switches a route's pool: {"tag": "green"}.
func (s *Server) tag(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var body struct {
		Tag *string `json:"tag"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Tag == nil {
		fail(w, http.StatusBadRequest, `bad JSON: want {"tag": "NAME"} (%v)`, err)
		return
	}
	s.changeRoutes(w, r, http.StatusOK, func(rs []httproute.Route) ([]httproute.Route, int, error) {
		i := slices.IndexFunc(rs, func(x httproute.Route) bool { return RouteName(x) == name })
		if i < 0 {
			return nil, http.StatusNotFound, fmt.Errorf("no route named %q", name)
		}
		if err := servedInPlace(rs[i]); err != nil {
			return nil, http.StatusConflict, err
		}
		rs[i].Tag = *body.Tag
		if *body.Tag != "" && !slices.ContainsFunc(rs[i].Upstreams, func(u string) bool {
			return slices.Contains(rs[i].UpstreamOptions[u].Tags, *body.Tag)
		}) {
			return nil, http.StatusBadRequest, fmt.Errorf("route %q has no upstream tagged %q", name, *body.Tag)
		}
		return rs, 0, nil
	})
}

// withRoute applies f to the route named by ?route=, as changeRoutes does.
func (s *Server) withRoute(w http.ResponseWriter, r *http.Request, f func(*httproute.Route) (int, error)) {
	name := r.URL.Query().Get("route")
	if name == "" {
		fail(w, http.StatusBadRequest, "which route? add ?route=NAME")
		return
	}
	s.changeRoutes(w, r, http.StatusOK, func(rs []httproute.Route) ([]httproute.Route, int, error) {
		i := slices.IndexFunc(rs, func(x httproute.Route) bool { return RouteName(x) == name })
		if i < 0 {
			return nil, http.StatusNotFound, fmt.Errorf("no route named %q", name)
		}
		if err := servedInPlace(rs[i]); err != nil {
			return nil, http.StatusConflict, err
		}
		rt := rs[i]
		rt.Upstreams = slices.Clone(rt.Upstreams)
		rt.UpstreamOptions = maps.Clone(rt.UpstreamOptions)
		if code, err := f(&rt); err != nil {
			return nil, code, err
		}
		rs[i] = rt
		return rs, 0, nil
	})
}

// servedInPlace refuses changes to a route whose requests a handler of
// its own answers (a model gateway): its settings live in the config file
// and the admin API's route JSON cannot carry them, so a change here
// would drop them, live and in a persisted file.
func servedInPlace(rt httproute.Route) error {
	if rt.Serve == nil {
		return nil
	}
	return fmt.Errorf("route %q is a model gateway: change it in the config file and reload (removing it here works)", RouteName(rt))
}

// addUpstream adds {"address", "weight", "tags"} to ?route=.
func (s *Server) addUpstream(w http.ResponseWriter, r *http.Request) {
	var u Upstream
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil || u.Address == "" {
		fail(w, http.StatusBadRequest, `bad JSON: want {"address": "host:port", "weight": N, "tags": [...]} (%v)`, err)
		return
	}
	s.withRoute(w, r, func(rt *httproute.Route) (int, error) {
		if slices.Contains(rt.Upstreams, u.Address) {
			return http.StatusConflict, fmt.Errorf("route %q already has upstream %s", RouteName(*rt), u.Address)
		}
		rt.Upstreams = append(rt.Upstreams, u.Address)
		if u.Weight != 0 || len(u.Tags) > 0 {
			if rt.UpstreamOptions == nil {
				rt.UpstreamOptions = map[string]httproute.UpstreamOptions{}
			}
			rt.UpstreamOptions[u.Address] = httproute.UpstreamOptions{Weight: u.Weight, Tags: u.Tags}
		}
		return 0, nil
	})
}

// deleteUpstream removes ADDR from ?route=; requests in flight to it
// finish.
func (s *Server) deleteUpstream(w http.ResponseWriter, r *http.Request) {
	addr := r.PathValue("addr")
	s.withRoute(w, r, func(rt *httproute.Route) (int, error) {
		i := slices.Index(rt.Upstreams, addr)
		if i < 0 {
			return http.StatusNotFound, fmt.Errorf("route %q has no upstream %s", RouteName(*rt), addr)
		}
		rt.Upstreams = slices.Delete(rt.Upstreams, i, i+1)
		delete(rt.UpstreamOptions, addr)
		return 0, nil
	})
}

func (s *Server) drain(w http.ResponseWriter, r *http.Request, drain bool) {
	addr := r.PathValue("addr")
	if err := s.Router.SetDrained(addr, drain); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, httproute.ErrUnknownUpstream) {
			code = http.StatusNotFound
		}
		fail(w, code, "%v", err)
		return
	}
	s.Log.Info("upstream changed through the admin API", "upstream", addr, "drained", drain)
	writeJSON(w, http.StatusOK, s.Router.Upstreams())
}
