package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/oneport/oneport/httproute"
)

// defaultAdminSocket is systemd's RuntimeDirectory when set,
// /run/oneport/admin.sock for root, else one in $XDG_RUNTIME_DIR.
func defaultAdminSocket() string {
	if d := os.Getenv("RUNTIME_DIRECTORY"); d != "" {
		return filepath.Join(strings.Split(d, ":")[0], "admin.sock")
	}
	if os.Geteuid() == 0 {
		return "/run/oneport/admin.sock"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "oneport", "admin.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("oneport-%d", os.Getuid()), "admin.sock")
}

// routeJSON is a route as the admin API reads and writes it.
type routeJSON struct {
	Name         string         `json:"name"`
	Spec         string         `json:"spec,omitempty"` // --route syntax; an alternative to the fields below
	Host         string         `json:"host,omitempty"`
	Path         string         `json:"path,omitempty"`
	Upstreams    []upstreamJSON `json:"upstreams,omitempty"`
	Policy       string         `json:"policy,omitempty"`
	Tag          string         `json:"tag,omitempty"`
	StripPrefix  *bool          `json:"strip_prefix,omitempty"`
	Rewrite      string         `json:"rewrite,omitempty"`
	UpstreamHost bool           `json:"upstream_host,omitempty"`
	Retries      int            `json:"retries,omitempty"`
}

type upstreamJSON struct {
	Address string   `json:"address"`
	Weight  int      `json:"weight,omitempty"`
	Tags    []string `json:"tags,omitempty"`
}

func toJSON(r httproute.Route) routeJSON {
	j := routeJSON{Name: routeName(r), Spec: r.Spec(), Host: r.Host, Path: r.Path, Policy: r.Policy, Tag: r.Tag,
		StripPrefix: r.StripPrefix, Rewrite: r.Rewrite, UpstreamHost: r.UpstreamHost, Retries: r.Retries}
	for _, u := range r.Upstreams {
		o := r.UpstreamOptions[u]
		j.Upstreams = append(j.Upstreams, upstreamJSON{Address: u, Weight: o.Weight, Tags: o.Tags})
	}
	return j
}

// fromJSON turns the admin API's route into one the router takes; the
// router's own validation follows.
func fromJSON(j routeJSON) (httproute.Route, error) {
	var r httproute.Route
	if j.Spec != "" {
		var err error
		if r, err = httproute.ParseSpec(j.Spec); err != nil {
			return r, err
		}
	} else {
		r = httproute.Route{Host: j.Host, Path: j.Path}
		if r.Path == "" {
			r.Path = "/"
		}
		for _, u := range j.Upstreams {
			r.Upstreams = append(r.Upstreams, u.Address)
			if u.Weight != 0 || len(u.Tags) > 0 {
				if r.UpstreamOptions == nil {
					r.UpstreamOptions = map[string]httproute.UpstreamOptions{}
				}
				r.UpstreamOptions[u.Address] = httproute.UpstreamOptions{Weight: u.Weight, Tags: u.Tags}
			}
		}
	}
	r.Name = j.Name
	r.Policy, r.Tag, r.StripPrefix, r.Rewrite, r.UpstreamHost, r.Retries = j.Policy, j.Tag, j.StripPrefix, j.Rewrite, j.UpstreamHost, j.Retries
	return r, nil
}

// routeName is a route's name, or host and path when it has none.
func routeName(r httproute.Route) string {
	if r.Name != "" {
		return r.Name
	}
	return r.Host + r.Path
}

// adminHandler serves the admin API.
func (s *server) adminHandler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /status", s.adminStatus)
	m.HandleFunc("GET /routes", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.routesJSON()) })
	m.HandleFunc("POST /routes", s.adminAddRoute)
	m.HandleFunc("PUT /routes/{name...}", s.adminPutRoute)
	m.HandleFunc("DELETE /routes/{name...}", s.adminDeleteRoute)
	m.HandleFunc("POST /tag/{name...}", s.adminTag)
	m.HandleFunc("GET /upstreams", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.handler.Upstreams()) })
	m.HandleFunc("POST /upstreams", s.adminAddUpstream)
	m.HandleFunc("DELETE /upstreams/{addr}", s.adminDeleteUpstream)
	m.HandleFunc("POST /upstreams/{addr}/drain", func(w http.ResponseWriter, r *http.Request) { s.adminDrain(w, r, true) })
	m.HandleFunc("POST /upstreams/{addr}/enable", func(w http.ResponseWriter, r *http.Request) { s.adminDrain(w, r, false) })
	m.HandleFunc("GET /connections", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.mux.Stats()) })
	m.HandleFunc("GET /certs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, listCerts(s.config().StateDir, s.config().TLS.Certs, nil))
	})
	m.Handle("GET /metrics", s.metrics.handler())
	return m
}

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, apiError{Error: fmt.Sprintf(format, args...)})
}

func (s *server) routesJSON() []routeJSON {
	var out []routeJSON
	for _, r := range s.handler.Table().Routes() {
		out = append(out, toJSON(r))
	}
	return out
}

type statusJSON struct {
	Listen      string                     `json:"listen"`
	SSH         string                     `json:"ssh"`
	Redirect    []int                      `json:"redirect,omitempty"`
	CrashSafe   bool                       `json:"redirect_crash_safe,omitempty"`
	TLS         string                     `json:"tls"`
	Routes      []routeJSON                `json:"routes"`
	Upstreams   []httproute.UpstreamStatus `json:"upstreams"`
	Connections map[string]int64           `json:"connections"`
}

func (s *server) adminStatus(w http.ResponseWriter, r *http.Request) {
	cfg := s.config()
	st := statusJSON{Listen: s.addr.String(), SSH: cfg.SSH, Routes: s.routesJSON(), Upstreams: s.handler.Upstreams(),
		Connections: s.mux.Stats().Open, TLS: "off"}
	if s.kernel.redirect != nil && len(s.kernel.redirect.Config().Ports) > 0 {
		for _, p := range s.kernel.redirect.Config().Ports {
			st.Redirect = append(st.Redirect, int(p))
		}
		st.CrashSafe = s.kernel.redirect.Owned()
	}
	if s.tls.term.Load() != nil {
		st.TLS = cmpOr(cfg.TLS.Source, "internal")
	}
	writeJSON(w, 200, st)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// changeRoutes applies f to the current routes and swaps in the result
// atomically, or changes nothing and answers with the error. With
// ?persist=true the config file is rewritten too.
func (s *server) changeRoutes(w http.ResponseWriter, r *http.Request, okCode int, f func([]httproute.Route) ([]httproute.Route, int, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	routes, code, err := f(s.handler.Table().Routes())
	if err != nil {
		fail(w, code, "%v", err)
		return
	}
	names := map[string]bool{}
	for _, rt := range routes {
		if n := routeName(rt); names[n] {
			fail(w, http.StatusConflict, "route name %q is used twice", n)
			return
		}
		names[routeName(rt)] = true
	}
	t, err := httproute.NewTable(routes)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	persist := r.URL.Query().Get("persist") == "true"
	if persist {
		if err := s.persistRoutes(routes); err != nil {
			fail(w, http.StatusConflict, "not applied: %v", err)
			return
		}
	}
	s.handler.SetTable(t)
	s.log.Info("routes changed through the admin API", "routes", routeSummary(t), "persisted", persist)
	writeJSON(w, okCode, s.routesJSON())
}

func readRoute(r *http.Request) (httproute.Route, error) {
	var j routeJSON
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return httproute.Route{}, fmt.Errorf("bad JSON: %v", err)
	}
	return fromJSON(j)
}

func (s *server) adminAddRoute(w http.ResponseWriter, r *http.Request) {
	nr, err := readRoute(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	s.changeRoutes(w, r, http.StatusCreated, func(rs []httproute.Route) ([]httproute.Route, int, error) {
		for _, x := range rs {
			if routeName(x) == routeName(nr) {
				return nil, http.StatusConflict, fmt.Errorf("route %q exists; use PUT to replace it", routeName(nr))
			}
		}
		return append(rs, nr), 0, nil
	})
}

func (s *server) adminPutRoute(w http.ResponseWriter, r *http.Request) {
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
		i := slices.IndexFunc(rs, func(x httproute.Route) bool { return routeName(x) == name })
		if i < 0 {
			return nil, http.StatusNotFound, fmt.Errorf("no route named %q", name)
		}
		rs[i] = nr
		return rs, 0, nil
	})
}

func (s *server) adminDeleteRoute(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.changeRoutes(w, r, http.StatusOK, func(rs []httproute.Route) ([]httproute.Route, int, error) {
		i := slices.IndexFunc(rs, func(x httproute.Route) bool { return routeName(x) == name })
		if i < 0 {
			return nil, http.StatusNotFound, fmt.Errorf("no route named %q", name)
		}
		return slices.Delete(rs, i, i+1), 0, nil
	})
}

// adminTag switches a route's pool: {"tag": "green"}.
func (s *server) adminTag(w http.ResponseWriter, r *http.Request) {
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
		i := slices.IndexFunc(rs, func(x httproute.Route) bool { return routeName(x) == name })
		if i < 0 {
			return nil, http.StatusNotFound, fmt.Errorf("no route named %q", name)
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
func (s *server) withRoute(w http.ResponseWriter, r *http.Request, f func(*httproute.Route) (int, error)) {
	name := r.URL.Query().Get("route")
	if name == "" {
		fail(w, http.StatusBadRequest, "which route? add ?route=NAME")
		return
	}
	s.changeRoutes(w, r, http.StatusOK, func(rs []httproute.Route) ([]httproute.Route, int, error) {
		i := slices.IndexFunc(rs, func(x httproute.Route) bool { return routeName(x) == name })
		if i < 0 {
			return nil, http.StatusNotFound, fmt.Errorf("no route named %q", name)
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

// adminAddUpstream adds {"address", "weight", "tags"} to ?route=.
func (s *server) adminAddUpstream(w http.ResponseWriter, r *http.Request) {
	var u upstreamJSON
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil || u.Address == "" {
		fail(w, http.StatusBadRequest, `bad JSON: want {"address": "host:port", "weight": N, "tags": [...]} (%v)`, err)
		return
	}
	s.withRoute(w, r, func(rt *httproute.Route) (int, error) {
		if slices.Contains(rt.Upstreams, u.Address) {
			return http.StatusConflict, fmt.Errorf("route %q already has upstream %s", routeName(*rt), u.Address)
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

// adminDeleteUpstream removes ADDR from ?route=; requests in flight to it
// finish.
func (s *server) adminDeleteUpstream(w http.ResponseWriter, r *http.Request) {
	addr := r.PathValue("addr")
	s.withRoute(w, r, func(rt *httproute.Route) (int, error) {
		i := slices.Index(rt.Upstreams, addr)
		if i < 0 {
			return http.StatusNotFound, fmt.Errorf("route %q has no upstream %s", routeName(*rt), addr)
		}
		rt.Upstreams = slices.Delete(rt.Upstreams, i, i+1)
		delete(rt.UpstreamOptions, addr)
		return 0, nil
	})
}

func (s *server) adminDrain(w http.ResponseWriter, r *http.Request, drain bool) {
	addr := r.PathValue("addr")
	if err := s.handler.SetDrained(addr, drain); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, httproute.ErrUnknownUpstream) {
			code = http.StatusNotFound
		}
		fail(w, code, "%v", err)
		return
	}
	s.log.Info("upstream changed through the admin API", "upstream", addr, "drained", drain)
	writeJSON(w, http.StatusOK, s.handler.Upstreams())
}

// serveAdmin serves the admin API on the unix socket (mode 0660) and,
// if configured, on TCP behind a bearer token. It returns a function that
// stops them and removes the socket.
func (s *server) serveAdmin(cfg *Config, log *slog.Logger) (func(), error) {
	if cfg.AdminSocket == "off" && cfg.AdminListen == "" {
		return func() {}, nil
	}
	var stops []func()
	stop := func() {
		for _, f := range stops {
			f()
		}
	}
	if cfg.AdminSocket != "off" {
		ln, err := listenUnix(cfg.AdminSocket)
		if err != nil {
			return nil, fmt.Errorf("admin socket: %w", err)
		}
		hs := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		stops = append(stops, func() { hs.Close(); os.Remove(cfg.AdminSocket) })
		log.Info("admin API listening", "socket", cfg.AdminSocket)
	}
	if cfg.AdminListen != "" {
		ln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			stop()
			return nil, fmt.Errorf("admin listen: %w", err)
		}
		hs := &http.Server{Handler: requireToken(cfg.AdminToken, s.adminHandler()), ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		stops = append(stops, func() { hs.Close() })
		log.Info("admin API listening on TCP (token required)", "addr", ln.Addr().String())
	}
	return stop, nil
}

// listenUnix listens on path with mode 0660, replacing a stale socket left
// by a killed run but never one a live oneport serves.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s is in use by a running oneport", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func requireToken(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			fail(w, http.StatusUnauthorized, "admin API: missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminClient talks to the admin API over its unix socket.
func adminClient(socket string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}}
}
