package httproute

import (
	"strings"
	"testing"
)

func mustSpecs(t testing.TB, specs ...string) *Table {
	t.Helper()
	var rs []Route
	for _, s := range specs {
		r, err := ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	tab, err := NewTable(rs)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec, host, path string
		ups              []string
	}{
		{"/=127.0.0.1:30000", "", "/", []string{"127.0.0.1:30000"}},
		{"/embedding-model/=127.0.0.1:30001", "", "/embedding-model/", []string{"127.0.0.1:30001"}},
		{"llm.example.com/v1=127.0.0.1:1,127.0.0.1:2", "llm.example.com", "/v1", []string{"127.0.0.1:1", "127.0.0.1:2"}},
		{"=/health=127.0.0.1:1", "", "=/health", []string{"127.0.0.1:1"}},
		{"api.x=/health=h2c://127.0.0.1:8001", "api.x", "=/health", []string{"h2c://127.0.0.1:8001"}},
		{"~^/v1/(chat|completions)=127.0.0.1:1", "", "~^/v1/(chat|completions)", []string{"127.0.0.1:1"}},
		{"~^/a=b$=127.0.0.1:1", "", "~^/a=b$", []string{"127.0.0.1:1"}},
		{"*.example.com/=unix:/run/llm.sock", "*.example.com", "/", []string{"unix:/run/llm.sock"}},
		{"embed.*/=http://127.0.0.1:3000/base", "embed.*", "/", []string{"http://127.0.0.1:3000/base"}},
	}
	for _, tt := range tests {
		r, err := ParseSpec(tt.spec)
		if err != nil {
			t.Errorf("%s: %v", tt.spec, err)
			continue
		}
		if r.Host != tt.host || r.Path != tt.path || strings.Join(r.Upstreams, " ") != strings.Join(tt.ups, " ") {
			t.Errorf("%s: got host %q path %q ups %v", tt.spec, r.Host, r.Path, r.Upstreams)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := map[string]string{
		"/x":                          "missing =UPSTREAM",
		"127.0.0.1:1":                 "want [HOST]/PATH=UPSTREAM",
		"/x=":                         "no upstream",
		"/x=ftp://a:1":                "scheme \"ftp\" not supported",
		"/x=localhost":                "want host:port",
		"/x=unix:relative.sock":       "must be absolute",
		"~(=127.0.0.1:1":              "bad regular expression",
		"=health=127.0.0.1:1":         "exact path starts with =/",
		"host:80/x=127.0.0.1:1":       "a port does not belong",
		"bad_host!/x=127.0.0.1:1":     "not allowed",
		"/a/../b=127.0.0.1:1":         "clean path",
		"/x=http://127.0.0.1:1/?q=1":  "want scheme://host",
		"*./x=127.0.0.1:1":            "empty",
		"/x=http://user@127.0.0.1:1/": "want scheme://host",
	}
	for spec, want := range tests {
		_, err := ParseSpec(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to say %q", spec, err, want)
		}
	}
}

func TestMatch(t *testing.T) {
	tab := mustSpecs(t,
		"/=127.0.0.1:1",
		"/embed=127.0.0.1:2",
		"/embed/v2/=127.0.0.1:3",
		"=/health=127.0.0.1:4",
		"~^/v1/(chat|completions)=127.0.0.1:5",
		"llm.example.com/=127.0.0.1:6",
		"*.example.com/special=127.0.0.1:7",
		"embed.*/=127.0.0.1:8",
		"[::1]/=127.0.0.1:9",
	)
	tests := []struct {
		host, path, up, fwd string
	}{
		{"box:2222", "/", "127.0.0.1:1", "/"},
		{"box", "/embed", "127.0.0.1:2", "/"},
		{"box", "/embed/", "127.0.0.1:2", "/"},
		{"box", "/embed/v1/embeddings", "127.0.0.1:2", "/v1/embeddings"},
		{"box", "/embedding", "127.0.0.1:1", "/embedding"}, // segment boundary
		{"box", "/embed/v2/x", "127.0.0.1:3", "/x"},        // longest prefix
		{"box", "/embed/v2", "127.0.0.1:3", "/"},
		{"box", "/health", "127.0.0.1:4", "/health"},     // exact beats prefix
		{"box", "/health/x", "127.0.0.1:1", "/health/x"}, // exact is exact
		{"box", "/v1/chat/completions", "127.0.0.1:5", "/v1/chat/completions"},
		{"LLM.Example.COM:443", "/embed/x", "127.0.0.1:6", "/embed/x"}, // host route wins, case-insensitive
		{"a.example.com", "/special/y", "127.0.0.1:7", "/y"},
		{"a.example.com", "/other", "127.0.0.1:1", "/other"}, // falls through to host-less
		{"example.com", "/special", "127.0.0.1:1", "/special"},
		{"embed.203-0-113-7.sslip.io", "/v1/models", "127.0.0.1:8", "/v1/models"},
		{"embed", "/v1/models", "127.0.0.1:1", "/v1/models"}, // first label needs a domain
		{"[::1]:2222", "/", "127.0.0.1:9", "/"},
		// Path tricks: matched and forwarded as the cleaned path.
		{"box", "/embed/../health", "127.0.0.1:4", "/health"},
		{"box", "//embed//v1", "127.0.0.1:2", "/v1"},
		{"box", "/embed/./v1/", "127.0.0.1:2", "/v1/"},
		{"box", "/embed/../../../etc/passwd", "127.0.0.1:1", "/etc/passwd"},
	}
	for _, tt := range tests {
		r, fwd, ok := tab.Match(tt.host, tt.path)
		if !ok {
			t.Errorf("%s %s: no match", tt.host, tt.path)
			continue
		}
		if r.Upstreams[0] != tt.up || fwd != tt.fwd {
			t.Errorf("%s %s: got %s %q, want %s %q", tt.host, tt.path, r.Upstreams[0], fwd, tt.up, tt.fwd)
		}
	}
}

func TestMatchStripOptions(t *testing.T) {
	keep, rewrite := false, "/v2"
	tab, err := NewTable([]Route{
		{Path: "/keep", Upstreams: []string{"127.0.0.1:1"}, StripPrefix: &keep},
		{Path: "/old/", Upstreams: []string{"127.0.0.1:2"}, Rewrite: rewrite},
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/keep/v1/models": "/keep/v1/models",
		"/old/models":     "/v2/models",
		"/old":            "/v2",
	} {
		if _, fwd, ok := tab.Match("h", path); !ok || fwd != want {
			t.Errorf("%s: forwarded %q, want %q", path, fwd, want)
		}
	}
	if _, _, ok := tab.Match("h", "/nothing"); ok {
		t.Error("matched without a default route")
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"":          "/",
		"/":         "/",
		"a/b":       "/a/b",
		"/a//b/":    "/a/b/",
		"/a/./b/..": "/a",
		"/../..":    "/",
		"/a/b/../":  "/a/",
	} {
		if got := CleanPath(in); got != want {
			t.Errorf("CleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"/=127.0.0.1:1", "/jupyter/+=127.0.0.1:8888", "=/x+=a:1", "h.x/p=unix:/s", "~^/a=b$=h2c://a:1", "=/x=a:1,b:2", "*.a.b/=http://a:1/b", "embed.*/x/=a:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		r, err := ParseSpec(spec)
		if err != nil {
			return
		}
		// What parses compiles, and its spec parses back to the same route.
		tab, err := NewTable([]Route{r})
		if err != nil {
			t.Fatalf("parsed but does not compile: %v", err)
		}
		r2, err := ParseSpec(r.Spec())
		if err != nil || r2.Host != r.Host || r2.Path != r.Path || strings.Join(r2.Upstreams, ",") != strings.Join(r.Upstreams, ",") ||
			(r2.StripPrefix == nil) != (r.StripPrefix == nil) {
			t.Fatalf("round trip %q -> %q: %+v, %v", spec, r.Spec(), r2, err)
		}
		tab.Match("x.example", "/"+spec)
	})
}

func FuzzMatch(f *testing.F) {
	f.Add("box:2222", "/embed/../x")
	f.Add("LLM.example.com", "//a/./b/")
	f.Add("[::1]:1", "/embedding")
	f.Add("embed.1-2-3-4.sslip.io", "/health")
	tab := mustSpecs(f, "/=127.0.0.1:1", "/embed=127.0.0.1:2", "=/health=127.0.0.1:3",
		"~^/v1/=127.0.0.1:4", "*.example.com/a=127.0.0.1:5", "embed.*/=127.0.0.1:6")
	f.Fuzz(func(t *testing.T, host, path string) {
		r, fwd, ok := tab.Match(host, path)
		if !ok {
			t.Fatalf("the default route did not match %q", path)
		}
		clean := CleanPath(path)
		if fwd == "" || fwd[0] != '/' || CleanPath(fwd) != fwd && fwd != clean {
			t.Fatalf("forwarded path %q is not clean (request %q)", fwd, path)
		}
		if strings.Contains(fwd, "/../") || strings.HasSuffix(fwd, "/..") {
			t.Fatalf("dot-dot segment forwarded: %q", fwd)
		}
		if r.Path == "/embed" && !hasSegmentPrefix(clean, "/embed") {
			t.Fatalf("/embed matched %q", clean)
		}
	})
}
