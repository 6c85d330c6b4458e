package discover

import (
	"slices"
	"strings"

	"github.com/oneport/oneport/httproute"
)

// RoutePrefix names discovered routes ("discovered:llama3"), so logs,
// metrics and the status page tell them from configured ones.
const RoutePrefix = "discovered:"

// Routes turns a snapshot into routes: /<model>/ for each model served
// here, with every server serving it as an upstream (replicas), and
// /<kind>/ for each app (jupyter, gradio, comfyui, tensorboard) and for a
// model server that lists no models (triton). Prefixes are stripped, so
// /<model>/v1/models reaches the server's /v1/models. A model whose name
// cannot be a path prefix is left out, and so is a second app of a kind
// or a name already taken by a model. The routes are sorted by path.
func Routes(s *Snapshot) []httproute.Route {
	if s == nil {
		return nil
	}
	byPath := map[string]*httproute.Route{}
	add := func(name, addr string) {
		p := "/" + name + "/"
		r := byPath[p]
		if r == nil {
			r = &httproute.Route{Name: RoutePrefix + name, Path: p}
			byPath[p] = r
		}
		if !slices.Contains(r.Upstreams, addr) {
			r.Upstreams = append(r.Upstreams, addr)
		}
	}
	for _, sv := range s.Servers {
		if sv.Addr == "" || !sv.Kind.ModelServer() {
			continue
		}
		for _, m := range sv.Models {
			if PathName(m) {
				add(m, sv.Addr)
			}
		}
		if len(sv.Models) == 0 {
			add(string(sv.Kind), sv.Addr)
		}
	}
	for _, sv := range s.Servers {
		if sv.Addr == "" || !sv.Kind.App() {
			continue
		}
		if _, taken := byPath["/"+string(sv.Kind)+"/"]; !taken {
			add(string(sv.Kind), sv.Addr)
		}
	}
	out := make([]httproute.Route, 0, len(byPath))
	for _, r := range byPath {
		slices.Sort(r.Upstreams)
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b httproute.Route) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// PathName reports whether a model name can be a route prefix as it is:
// segments of letters, digits and ._:@+- separated by single slashes, none
// of them "." or "..", not starting with ".oneport".
func PathName(m string) bool {
	if m == "" || len(m) > 200 || strings.HasPrefix(m, ".oneport") {
		return false
	}
	for _, seg := range strings.Split(m, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._:@+-", c)) {
				return false
			}
		}
	}
	return true
}

// SameRoutes reports whether a and b route the same paths to the same
// upstreams, so a rescan that changed nothing swaps no table.
func SameRoutes(a, b []httproute.Route) bool {
	return slices.EqualFunc(a, b, func(x, y httproute.Route) bool {
		return x.Path == y.Path && slices.Equal(x.Upstreams, y.Upstreams)
	})
}
