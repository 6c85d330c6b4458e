package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/oneporttest"
)

// check loads and validates body as `oneport check` does.
func check(t *testing.T, body string) (path string, err error) {
	t.Helper()
	path = oneporttest.WriteConfig(t, body)
	cfg, err := Load(path)
	if err != nil {
		return path, err
	}
	cfg.Defaults()
	_, err = cfg.Validate()
	return path, err
}

// A bare number was read as nanoseconds: "interval = 5" checked health
// every 5ns and "sniff_timeout = 2" sent every client to SSH at once.
func TestBareIntegerDurationIsRefused(t *testing.T) {
	for _, tc := range []struct{ body, where, hint string }{
		{"sniff_timeout = 2\n", ":1: sniff_timeout:", `use "2s"`},
		{"[[route]]\npath = \"/\"\nupstream = \"127.0.0.1:1\"\n[route.health]\ncheck = \"http\"\ninterval = 5\n", ":6: route.health.interval:", `use "5s"`},
		{"shutdown_grace = 30\n", ":1: shutdown_grace:", `use "30s"`},
	} {
		path, err := check(t, tc.body)
		if err == nil || !strings.Contains(err.Error(), path+tc.where) || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("%q: %v, want %q and %q", tc.body, err, tc.where, tc.hint)
		}
	}
}

// An upstream port above 65535 passed check and failed only on dialing.
func TestUpstreamPortAbove65535IsRefused(t *testing.T) {
	path, err := check(t, "[[route]]\npath = \"/\"\nupstream = [\"127.0.0.1:1\", \"http://127.0.0.1:70000/v1\"]\n")
	if err == nil || !strings.Contains(err.Error(), path+":1: route 1:") || !strings.Contains(err.Error(), `bad port "70000"`) {
		t.Fatalf("got %v", err)
	}
	cfg, err := ParseFlags([]string{"--route", "/=127.0.0.1:99999"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `bad port "99999"`) {
		t.Fatalf("--route: %v", err)
	}
	if _, err := check(t, "[[route]]\npath = \"/\"\nupstream = [\"127.0.0.1:65535\", \"unix:/run/x.sock\", \"http://h\"]\n"); err != nil {
		t.Fatalf("valid upstreams refused: %v", err)
	}
}

// listen = "" silently meant the default, :2222 on all addresses.
func TestEmptyListenIsRefused(t *testing.T) {
	path, err := check(t, "ssh = \"127.0.0.1:22\"\nlisten = \"\"\n")
	if err == nil || !strings.Contains(err.Error(), path+":2: listen: empty") {
		t.Fatalf("got %v", err)
	}
	if _, err := ParseFlags([]string{"--listen", ""}); err == nil || !strings.Contains(err.Error(), "--listen is empty") {
		t.Fatalf("--listen '': %v", err)
	}
}

// Two routes with the same host and path: the second never matched, and
// nothing said so.
func TestDuplicateRoutesAreRefused(t *testing.T) {
	path, err := check(t, `[[route]]
host = "llm.example.com"
path = "/v1/"
upstream = "127.0.0.1:1"

[[route]]
path = "/v1/"
upstream = "127.0.0.1:2"

[[route]]
host = "LLM.example.com"
path = "/v1/"
upstream = "127.0.0.1:3"
`)
	want := path + ":10: route 3 has the host and path of route 1 (" + path + ":1)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	if strings.Contains(err.Error(), "route 2 has") {
		t.Errorf("a route of another host was called a duplicate: %v", err)
	}
	cfg, _ := ParseFlags([]string{"--route", "/=127.0.0.1:1", "--route", "/=127.0.0.1:2"})
	if _, err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "it would never match") {
		t.Fatalf("--route twice: %v", err)
	}
}

// The committed reference is what the settings table says.
func TestReferenceIsFresh(t *testing.T) {
	got, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, Reference()) {
		t.Fatal("docs/config.md is stale: run go generate ./internal/config")
	}
}

// Every field of the config structs is reached by a setting, so none is
// decoded, flagged or documented outside the table.
func TestEveryFieldHasASetting(t *testing.T) {
	var walk func(settings []Setting, table any)
	walk = func(settings []Setting, table any) {
		v := reflect.ValueOf(table).Elem()
		reached := map[uintptr]bool{}
		for _, s := range settings {
			p := reflect.ValueOf(s.field.get(table))
			reached[p.Pointer()] = true
			if s.Sub != nil {
				if s.Array {
					walk(s.Sub, reflect.New(p.Elem().Type().Elem()).Interface())
				} else {
					walk(s.Sub, p.Interface())
				}
			}
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Name == "RouteSpecs" {
				continue
			}
			if !reached[v.Field(i).Addr().Pointer()] {
				t.Errorf("%s.%s has no setting", v.Type().Name(), f.Name)
			}
		}
	}
	walk(Settings, &Config{})
}

// Unknown keys are named with their lines, in tables too.
func TestUnknownKeysNameTheirLines(t *testing.T) {
	path, err := check(t, "colour = \"blue\"\n[tls]\nsorce = \"acme\"\n[[route]]\npath = \"/\"\nupstrem = \"x\"\n")
	for _, want := range []string{path + `:1: unknown key "colour"`, path + `:3: unknown key "tls.sorce"`, path + `:6: unknown key "route.1.upstrem"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// FuzzConfig: any file either loads and validates or is refused with an
// error that names a place; nothing panics.
func FuzzConfig(f *testing.F) {
	pkg, err := os.ReadFile("../../packaging/oneport.toml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(pkg),
		"listen = \":2222\"\n[[route]]\npath = \"/\"\nupstream = [\"127.0.0.1:1\", {address = \"127.0.0.1:2\", weight = 2, tags = [\"b\"]}]\n",
		"[tls]\nsource = \"acme\"\n[[tls.passthrough]]\nsni = \"*.x\"\nupstream = \"127.0.0.1:1\"\n",
		"[[protocol]]\nname = \"v\"\nprefix_hex = \"000e38\"\ntarget = \"127.0.0.1:1\"\n",
		"sniff_timeout = \"2 seconds\"\n",
		"sniff_timeout = 2\n[[route]]\n[route.health]\ninterval = 1.5\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		path := filepath.Join(dir, "f.toml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		cfg.Defaults()
		if _, err := cfg.Validate(); err != nil && !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), "--") {
			t.Fatalf("error names no place: %v", err)
		}
	})
}

// A reload names the changed settings that only a restart applies, and
// no others.
func TestRestartOnlyNamesStartSettings(t *testing.T) {
	old := &Config{Listen: ":1", SSH: "127.0.0.1:22", TLS: TLS{Passthrough: []Passthrough{{SNI: "a", Upstream: "127.0.0.1:1"}}}}
	cur := &Config{Listen: ":2", SSH: "127.0.0.1:23", TLS: TLS{Passthrough: []Passthrough{{SNI: "b", Upstream: "127.0.0.1:1"}}},
		Routes: []Route{{Path: "/"}}, AdminToken: "x"}
	got := RestartOnly(old, cur)
	if want := []string{"listen", "admin_token", "tls.passthrough"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("RestartOnly = %v, want %v", got, want)
	}
}

func TestFlagsOverrideConfig(t *testing.T) {
	path := oneporttest.WriteConfig(t, `listen = "127.0.0.1:1111"
ssh = "127.0.0.1:2200"
sniff_timeout = "5s"
[[route]]
path = "/file"
upstream = "127.0.0.1:1"
`)
	cfg, err := ParseFlags([]string{"--config", path, "--listen", "127.0.0.1:2222", "--route", "/flag=127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:2222" || cfg.SSH != "127.0.0.1:2200" || time.Duration(cfg.SniffTimeout) != 5*time.Second {
		t.Errorf("merged config = %+v", cfg)
	}
	if rs := res.Table.Routes(); len(rs) != 1 || rs[0].Path != "/flag" {
		t.Errorf("--route did not replace the file's routes: %+v", rs)
	}
}

// http_engine takes the two engines by name; anything else names its line.
func TestHTTPEngineIsChecked(t *testing.T) {
	for _, ok := range []string{"oneport", "net/http"} {
		if _, err := check(t, "http_engine = \""+ok+"\"\n"); err != nil {
			t.Errorf("http_engine %q: %v", ok, err)
		}
	}
	path, err := check(t, "listen = \":2222\"\nhttp_engine = \"nginx\"\n")
	if err == nil || !strings.Contains(err.Error(), path+":2:") || !strings.Contains(err.Error(), `"nginx"`) {
		t.Fatalf("http_engine nginx: %v, want an error naming line 2 and the value", err)
	}
}
