package admin

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/auth"
)

// Route is a route as the admin API reads and writes it. Its JSON names
// are the config file's [[route]] keys.
type Route struct {
	Name         string     `json:"name"`
	Spec         string     `json:"spec,omitempty"` // --route syntax; an alternative to the fields below
	Host         string     `json:"host,omitempty"`
	Path         string     `json:"path,omitempty"`
	Upstream     []Upstream `json:"upstream,omitempty"`
	Policy       string     `json:"policy,omitempty"`
	Tag          string     `json:"tag,omitempty"`
	StripPrefix  *bool      `json:"strip_prefix,omitempty"`
	Rewrite      string     `json:"rewrite,omitempty"`
	UpstreamHost bool       `json:"upstream_host,omitempty"`
	Retries      int        `json:"retries,omitempty"`
	Auth         string     `json:"auth,omitempty"`
	AllowAdmin   bool       `json:"allow_admin,omitempty"`
	CORSOrigins  []string   `json:"cors_origins,omitempty"`
	// UpstreamBearer is taken, never shown: it is the upstream's secret.
	UpstreamBearer string `json:"upstream_bearer,omitempty"`
}

// UnmarshalJSON reads a Route, taking "upstreams", the name older
// versions used, as "upstream". Unknown fields are errors.
func (r *Route) UnmarshalJSON(b []byte) error {
	type plain Route
	var v struct {
		plain
		Upstreams []Upstream `json:"upstreams,omitempty"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	*r = Route(v.plain)
	if len(r.Upstream) == 0 {
		r.Upstream = v.Upstreams
	}
	return nil
}

// Upstream is one upstream of a route: the config file's upstream table.
type Upstream struct {
	Address string   `json:"address"`
	Weight  int      `json:"weight,omitempty"`
	Tags    []string `json:"tags,omitempty"`
}

// Status is what GET /status answers.
type Status struct {
	Listen      string                     `json:"listen"`
	SSH         string                     `json:"ssh"`
	Redirect    []int                      `json:"redirect,omitempty"`
	CrashSafe   bool                       `json:"redirect_crash_safe,omitempty"`
	TLS         string                     `json:"tls"`
	Routes      []Route                    `json:"routes"`
	Upstreams   []httproute.UpstreamStatus `json:"upstreams"`
	Connections map[string]int64           `json:"connections"`
	Keys        []auth.KeyStatus           `json:"keys,omitempty"`
	// Tunnel describes the SSH-over-WebSocket tunnel: path, open
	// sessions, targets; empty when it is off.
	Tunnel string `json:"tunnel,omitempty"`
}

// Error is the body of an error answer.
type Error struct {
	Error string `json:"error"`
}

// RouteOf is r as the admin API shows it.
func RouteOf(r httproute.Route) Route {
	j := Route{Name: RouteName(r), Spec: r.Spec(), Host: r.Host, Path: r.Path, Policy: r.Policy, Tag: r.Tag,
		StripPrefix: r.StripPrefix, Rewrite: r.Rewrite, UpstreamHost: r.UpstreamHost, Retries: r.Retries,
		Auth: r.Auth, AllowAdmin: r.AllowAdmin, CORSOrigins: r.CORSOrigins}
	for _, u := range r.Upstreams {
		o := r.UpstreamOptions[u]
		j.Upstream = append(j.Upstream, Upstream{Address: u, Weight: o.Weight, Tags: o.Tags})
	}
	return j
}

// Route turns the admin API's route into one the router takes; the
// router's own validation follows.
func (j Route) Route() (httproute.Route, error) {
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
		for _, u := range j.Upstream {
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
	r.Auth, r.AllowAdmin, r.CORSOrigins, r.UpstreamBearer = j.Auth, j.AllowAdmin, j.CORSOrigins, j.UpstreamBearer
	return r, nil
}

// RouteName is a route's name, or host and path when it has none.
func RouteName(r httproute.Route) string {
	if r.Name != "" {
		return r.Name
	}
	return r.Host + r.Path
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
