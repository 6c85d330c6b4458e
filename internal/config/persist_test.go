package config

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/oneport/oneport/httproute"
)

// A route written from its fields reads back as the same route: no key is
// left out.
func TestRouteTableRoundTrip(t *testing.T) {
	strip := false
	r := httproute.Route{
		Name: "chat", Host: "api.example.com", Path: "/v1/", StripPrefix: &strip, Rewrite: "/x/",
		UpstreamHost: true, Policy: "least_conn", Tag: "green", Retries: 2,
		Upstreams:       []string{"127.0.0.1:30000", "127.0.0.1:30002"},
		UpstreamOptions: map[string]httproute.UpstreamOptions{"127.0.0.1:30002": {Weight: 3, Tags: []string{"green"}}},
		DialTimeout:     3 * time.Second, ResponseHeaderTimeout: 10 * time.Minute,
		RequestHeaders:  httproute.HeaderOps{Set: map[string]string{"X-A": "1"}, Add: map[string]string{"X-B": "2"}, Delete: []string{"Cookie"}},
		ResponseHeaders: httproute.HeaderOps{Set: map[string]string{"X-C": "3"}},
		Health:          httproute.HealthCheck{Kind: "http", Path: "/healthz", Interval: 7 * time.Second, Timeout: time.Second, Healthy: 2, Unhealthy: 4},
		Passive:         httproute.PassiveHealth{MaxFails: 5, Window: 20 * time.Second, Cooldown: time.Minute},
	}
	out, err := spliceRoutes(nil, []httproute.Route{r})
	if err != nil {
		t.Fatal(err)
	}
	got := decodeRoute(out)
	if got == nil {
		t.Fatalf("written route does not read back:\n%s", out)
	}
	if want := normalRoute(r); !reflect.DeepEqual(*got, want) {
		t.Fatalf("read back\n%+v\nwant\n%+v\nfrom:\n%s", *got, want, out)
	}
}

const commentedConfig = `# oneport configuration, with notes.
listen = ":2222" # the public port

# The chat model.
[[route]]
name = "chat"   # keep this name
path = "/"
upstream = "127.0.0.1:30000"

# Embeddings, in a pool.
[[route]]
name = "embed"
path = "/embedding-model/"
tag = "blue"
[[route.upstream]]
address = "127.0.0.1:30001"
tags = ["blue"]
[route.health]
check = "tcp"

# Certificates.
[tls]
source = "internal" # own CA
`

// Persisting keeps the file's comments and the text of unchanged routes,
// rewrites a changed route, adds a new one, and the result reads back as
// the routes persisted.
func TestSpliceRoutesKeepsComments(t *testing.T) {
	orig := routesOf(t, []byte(commentedConfig))
	chat, embed := orig[0], orig[1]
	if chat.Name != "chat" {
		chat, embed = embed, chat
	}
	embed.Tag = "green"
	added, err := httproute.ParseSpec("/rerank/=127.0.0.1:30003")
	if err != nil {
		t.Fatal(err)
	}
	added.Name = "rerank"
	want := []httproute.Route{chat, embed, added}

	out, err := spliceRoutes([]byte(commentedConfig), want)
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{
		"# oneport configuration, with notes.\nlisten = \":2222\" # the public port\n",
		"# The chat model.\n[[route]]\nname = \"chat\"   # keep this name\npath = \"/\"\nupstream = \"127.0.0.1:30000\"\n",
		"# Certificates.\n[tls]\nsource = \"internal\" # own CA\n",
	} {
		if !bytes.Contains(out, []byte(keep)) {
			t.Errorf("lost %q:\n%s", keep, out)
		}
	}
	if bytes.Contains(out, []byte("# Embeddings, in a pool.")) || bytes.Contains(out, []byte(`tag = "blue"`)) {
		t.Errorf("the changed route kept its old text:\n%s", out)
	}
	if strings.Count(string(out), "[tls]") != 1 || strings.Count(string(out), "[[route]]") != 3 {
		t.Errorf("tables lost or repeated:\n%s", out)
	}
	got := routesOf(t, out)
	if len(got) != len(want) {
		t.Fatalf("read back %d routes, want %d:\n%s", len(got), len(want), out)
	}
	byName := map[string]httproute.Route{}
	for _, r := range got {
		byName[r.Name] = r
	}
	for _, w := range want {
		if g, w := normalRoute(byName[w.Name]), normalRoute(w); !reflect.DeepEqual(g, w) {
			t.Errorf("route %s read back as\n%+v\nwant\n%+v\nfrom:\n%s", w.Name, g, w, out)
		}
	}

	// Removing every route leaves the rest as it was.
	out, err = spliceRoutes([]byte(commentedConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# oneport configuration, with notes.\nlisten = \":2222\" # the public port\n\n# Certificates.\n[tls]\nsource = \"internal\" # own CA\n"; string(out) != want {
		t.Errorf("without routes:\n%s\nwant:\n%s", out, want)
	}
}

// A file without [[route]] tables, such as the one the package installs
// (its routes are commented out), gets them at the end.
func TestSpliceRoutesAppends(t *testing.T) {
	src := []byte("listen = \":2222\"\n# [[route]]\n# path = \"/\"\n")
	r, err := httproute.ParseSpec("/=127.0.0.1:30000")
	if err != nil {
		t.Fatal(err)
	}
	out, err := spliceRoutes(src, []httproute.Route{r})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, src) {
		t.Fatalf("the file's text changed:\n%s", out)
	}
	if got := routesOf(t, out); len(got) != 1 || got[0].Upstreams[0] != "127.0.0.1:30000" {
		t.Fatalf("read back %+v from:\n%s", got, out)
	}
	if _, err := spliceRoutes([]byte("route = [{path = \"/\", upstream = \"127.0.0.1:1\"}]\n"), nil); err == nil {
		t.Error("routes written inline were spliced over")
	}
}

// routesOf reads src as a config file and returns its routes, in the
// order a running oneport holds them.
func routesOf(t *testing.T, src []byte) []httproute.Route {
	t.Helper()
	path := t.TempDir() + "/oneport.toml"
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	cfg.Defaults()
	res, err := cfg.Validate()
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return res.Table.Routes()
}

// Whatever the file, splicing never breaks what is outside the routes:
// the result reads as the same keys, with the routes given.
func FuzzSpliceRoutes(f *testing.F) {
	f.Add([]byte(commentedConfig))
	f.Add([]byte("listen = \":2222\"\n# [[route]]\n# path = \"/\"\n"))
	f.Add([]byte("a = \"\"\"\n# x\"\"\"\n[[route]]\npath = \"/\"\nupstream = \"127.0.0.1:1\"\n"))
	f.Add([]byte("[[route]]\npath = \"/\"\nupstream = \"127.0.0.1:1\"\n[x]\n[[route]]\n[route.health]\n"))
	var routes []httproute.Route
	for _, s := range []string{"/=127.0.0.1:30000", "/embedding-model/=127.0.0.1:30001*2#blue"} {
		r, err := httproute.ParseSpec(s)
		if err != nil {
			f.Fatal(err)
		}
		routes = append(routes, r)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		var before map[string]any
		if toml.Unmarshal(src, &before) != nil {
			spliceRoutes(src, routes) // must not panic
			return
		}
		out, err := spliceRoutes(src, routes)
		if err != nil {
			return
		}
		var after map[string]any
		if err := toml.Unmarshal(out, &after); err != nil {
			t.Fatalf("result does not parse: %v\n--- from:\n%s\n--- to:\n%s", err, src, out)
		}
		got, _ := after["route"].([]any)
		delete(before, "route")
		delete(after, "route")
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("keys outside the routes changed:\n%v\n%v\n--- from:\n%s\n--- to:\n%s", before, after, src, out)
		}
		if len(got) != len(routes) {
			t.Fatalf("%d routes written, want %d:\n%s", len(got), len(routes), out)
		}
	})
}

// Persisting the routes a file already says, in the order a running
// oneport holds them, leaves the file byte for byte as it was.
func TestSpliceRoutesUnchanged(t *testing.T) {
	src := []byte("listen = \":2222\"\n\n# embeddings\n[[route]]\npath = \"/embed/\"\nupstream = \"127.0.0.1:30001\"\n\n[[route]]\npath = \"/\"\nupstream = \"127.0.0.1:30000\" # chat\n")
	out, err := spliceRoutes(src, routesOf(t, src))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, src) {
		t.Fatalf("changed:\n%q\nwant:\n%q", out, src)
	}
}
