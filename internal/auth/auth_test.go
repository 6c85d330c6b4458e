package auth

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixture is a Handler in front of a backend that records what reached it.
type fixture struct {
	h       *Handler
	now     time.Time
	secrets map[string]string // key name -> secret
	mu      sync.Mutex
	seen    []*http.Request // requests that reached the backend
	block   chan struct{}   // if set, the backend waits on it
	entered chan struct{}
}

var testRoutes = map[string]Route{
	"/public/":  {Name: "public", Public: true},
	"/admin/":   {Name: "adminok", AllowAdmin: true},
	"/other/":   {Name: "other"},
	"/secured/": {Name: "secured", UpstreamBearer: "upstream-secret"},
	"/cors/":    {Name: "cors", CORSOrigins: []string{"https://app.example"}},
	"/":         {Name: "main"},
}

func newFixture(t testing.TB, specs ...Spec) *fixture {
	f := &fixture{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), secrets: map[string]string{}}
	var keys []Key
	for _, s := range specs {
		var secret string
		var err error
		if keys, secret, err = Add(keys, s, f.now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		f.secrets[s.Name] = secret
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r)
		f.mu.Unlock()
		if f.entered != nil {
			f.entered <- struct{}{}
		}
		if f.block != nil {
			<-f.block
		}
		id, _ := FromContext(r.Context())
		name := ""
		if id != nil {
			name = id.Name
		}
		io.WriteString(w, "ok key="+name)
	})
	f.h = New(Options{Next: next, SessionSecret: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return f.now },
		Match: func(r *http.Request) (Route, string, bool) {
			for _, p := range []string{"/public/", "/admin/", "/other/", "/secured/", "/cors/", "/"} {
				if rest, ok := strings.CutPrefix(r.URL.Path, p); ok {
					return testRoutes[p], "/" + rest, true
				}
			}
			return Route{}, "", false
		}})
	f.h.SetKeys(keys)
	return f
}

func (f *fixture) do(method, target string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "192.0.2.1:1234"
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func (f *fixture) last() *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		return nil
	}
	return f.seen[len(f.seen)-1]
}

func basic(secret string) string {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth("anything", secret)
	return r.Header.Get("Authorization")
}

func TestKeys(t *testing.T) {
	f := newFixture(t, Spec{Name: "alice"}, Spec{Name: "bob", Routes: []string{"other"}}, Spec{Name: "root", Admin: true},
		Spec{Name: "old", Expires: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	alice := f.secrets["alice"]
	for _, tc := range []struct {
		name, method, path string
		hdr                []string
		code               int
		body               string // a substring of the answer
	}{
		{"no key", "GET", "/v1/models", nil, 401, `"type":"authentication_error"`},
		{"no key, plain text off /v1", "GET", "/x", nil, 401, "needs a key"},
		{"browser goes to login", "GET", "/lab?x=1", []string{"Accept", "text/html"}, 302, ""},
		{"bearer", "GET", "/v1/models", []string{"Authorization", "Bearer " + alice}, 200, "ok key=alice"},
		{"bearer, lowercase scheme", "GET", "/v1/models", []string{"Authorization", "bearer " + alice}, 200, "ok key=alice"},
		{"x-api-key", "POST", "/v1/messages", []string{"x-api-key", alice, "anthropic-version", "2023-06-01"}, 200, "ok key=alice"},
		{"basic", "GET", "/x", []string{"Authorization", basic(alice)}, 200, "ok key=alice"},
		{"wrong key", "GET", "/v1/models", []string{"Authorization", "Bearer op_wrong"}, 401, `"code":"invalid_api_key"`},
		{"malformed basic", "GET", "/x", []string{"Authorization", "Basic !!!"}, 401, ""},
		{"empty bearer", "GET", "/x", []string{"Authorization", "Bearer "}, 401, ""},
		{"expired", "GET", "/x", []string{"Authorization", "Bearer " + f.secrets["old"]}, 401, "expired key"},
		{"public route", "GET", "/public/health", nil, 200, "ok key="},
		{"admin endpoint, valid key", "POST", "/sleep", []string{"Authorization", "Bearer " + alice}, 403, "vLLM"},
		{"admin endpoint, admin key", "POST", "/sleep", []string{"Authorization", "Bearer " + f.secrets["root"]}, 200, "ok key=root"},
		{"admin endpoint, allow_admin route", "POST", "/admin/sleep", []string{"Authorization", "Bearer " + alice}, 200, "ok"},
		{"admin endpoint on a public route", "POST", "/public/api/pull", nil, 403, "Ollama"},
		{"route outside the key's scope", "GET", "/x", []string{"Authorization", "Bearer " + f.secrets["bob"]}, 403, "may not use route main"},
		{"route in the key's scope", "GET", "/other/x", []string{"Authorization", "Bearer " + f.secrets["bob"]}, 200, "ok key=bob"},
		{"oneport's own paths need a key", "GET", "/.oneport/status", nil, 401, ""},
		{"even under a public prefix", "GET", "/public/../.oneport/tunnel", nil, 401, ""},
		{"ACME challenges need none", "GET", "/.well-known/acme-challenge/tok", nil, 200, ""},
		{"no way around through the ACME path", "GET", "/.well-known/acme-challenge/../../v1/models", nil, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.h.fails = failures{} // each case from a clean slate
			w := f.do(tc.method, tc.path, tc.hdr...)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.body) {
				t.Fatalf("%s %s: got %d %q, want %d with %q", tc.method, tc.path, w.Code, w.Body, tc.code, tc.body)
			}
			if w.Code == 401 && !strings.Contains(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %v", w.Header())
			}
			if strings.HasPrefix(tc.path, "/v1/") && w.Code != 200 {
				var e struct {
					Error struct{ Message, Type, Code string }
				}
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Message == "" {
					t.Errorf("not OpenAI's error shape: %q", w.Body)
				}
			}
		})
	}
}

func TestNoSecretReachesTheUpstream(t *testing.T) {
	f := newFixture(t, Spec{Name: "alice"})
	alice := f.secrets["alice"]
	for _, hdr := range [][]string{
		{"Authorization", "Bearer " + alice},
		{"x-api-key", alice},
		{"Authorization", basic(alice)},
	} {
		if w := f.do("GET", "/x", append(hdr, "Cookie", "theme=dark")...); w.Code != 200 {
			t.Fatalf("%v: %d", hdr[0], w.Code)
		}
		r := f.last()
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-Api-Key") != "" {
			t.Errorf("%s reached the upstream: %v", hdr[0], r.Header)
		}
		if r.Header.Get("Cookie") != "theme=dark" {
			t.Errorf("the app's own cookie was lost: %q", r.Header.Get("Cookie"))
		}
	}
	if w := f.do("GET", "/secured/v1/models", "Authorization", "Bearer "+alice); w.Code != 200 {
		t.Fatal(w.Code)
	}
	if got := f.last().Header.Get("Authorization"); got != "Bearer upstream-secret" {
		t.Errorf("upstream_bearer: upstream saw Authorization %q", got)
	}
}

// Without keys, an app's own credentials reach it untouched.
func TestAppCredentialsPass(t *testing.T) {
	f := newFixture(t)
	for _, a := range []string{basic("jupyter-password"), "Bearer app-token", "Token abc"} {
		if w := f.do("GET", "/x", "Authorization", a); w.Code != 200 || f.last().Header.Get("Authorization") != a {
			t.Errorf("%q: %d, upstream saw %q", a, w.Code, f.last().Header.Get("Authorization"))
		}
	}
}

func TestDenyListWithoutKeys(t *testing.T) {
	f := newFixture(t)
	if w := f.do("GET", "/v1/models"); w.Code != 200 {
		t.Fatalf("no keys: /v1/models got %d", w.Code)
	}
	if w := f.do("POST", "/flush_cache"); w.Code != 403 || !strings.Contains(w.Body.String(), "SGLang") {
		t.Fatalf("no keys: /flush_cache got %d %q", w.Code, w.Body)
	}
	if w := f.do("POST", "/admin/flush_cache"); w.Code != 200 {
		t.Fatalf("allow_admin: got %d", w.Code)
	}
}

func TestDenyList(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		denied       bool
	}{
		{"POST", "/sleep", true},
		{"GET", "/sleep/", true},
		{"POST", "/wake_up", true},
		{"POST", "/collective_rpc", true},
		{"POST", "/reset_prefix_cache", true},
		{"POST", "/scale_elastic_ep", true},
		{"POST", "/start_profile", true},
		{"POST", "/v1/load_lora_adapter", true},
		{"POST", "/flush_cache", true},
		{"POST", "/abort_requests", true},
		{"POST", "/start_weight_update", true},
		{"POST", "/destroy_weights_update_group", true},
		{"POST", "/update_weights_from_disk", true},
		{"POST", "/release_memory_occupation", true},
		{"POST", "/slots/0", true},
		{"GET", "/slots", false},
		{"GET", "/props", false},
		{"POST", "/props", true},
		{"POST", "/lora-adapters", true},
		{"POST", "/api/pull", true},
		{"DELETE", "/api/delete", true},
		{"POST", "/api/blobs/sha256:abc", true},
		{"POST", "/api/chat", false},
		{"GET", "/api/tags", false},
		{"POST", "/v2/repository/index", true},
		{"POST", "/v2/repository/models/resnet/load", true},
		{"POST", "/v2/repository/models/resnet/unload", true},
		{"POST", "/v2/models/resnet/infer", false},
		{"GET", "/v2/logging", false},
		{"POST", "/v2/logging", true},
		{"POST", "/v2/systemsharedmemory/region/r/register", true},
		{"POST", "/wakeup", true},
		{"POST", "/update_weights", true},
		{"POST", "/v1/chat/completions", false},
		{"POST", "/pooling", false},
		{"GET", "/metrics", false},
		{"GET", "/health", false},
		{"GET", "/sleeping", false},
		{"GET", "/x/sleep", false},
	} {
		if got := Denied(tc.method, tc.path) != ""; got != tc.denied {
			t.Errorf("%s %s: denied %v, want %v", tc.method, tc.path, got, tc.denied)
		}
	}
	for _, d := range denyList {
		if d.why == "" || !strings.HasPrefix(d.path, "/") {
			t.Errorf("deny entry %+v: needs a path and a reason", d)
		}
		if f := firstSegment(d.path); strings.Contains(f, "*") || f == "" {
			t.Errorf("deny entry %+v: its first segment must be literal (denyIndex)", d)
		}
		if Denied(d.method, d.path) == "" && !strings.Contains(d.path, "*") {
			t.Errorf("deny entry %+v does not match its own path", d)
		}
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, Spec{Name: "eve", Rate: 2})
	auth := "Bearer " + f.secrets["eve"]
	for i := range 2 {
		if w := f.do("POST", "/v1/chat/completions", "Authorization", auth); w.Code != 200 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	w := f.do("POST", "/v1/chat/completions", "Authorization", auth)
	if w.Code != 429 || w.Header().Get("Retry-After") != "30" || !strings.Contains(w.Body.String(), `"rate_limit_exceeded"`) {
		t.Fatalf("over the rate: %d %v %q", w.Code, w.Header(), w.Body)
	}
	f.now = f.now.Add(30 * time.Second)
	if w := f.do("GET", "/x", "Authorization", auth); w.Code != 200 {
		t.Fatalf("after a token came back: %d", w.Code)
	}
	if w := f.do("GET", "/x", "Authorization", auth); w.Code != 429 || w.Header().Get("Content-Type") == "application/json" {
		t.Fatalf("off /v1: %d %v", w.Code, w.Header())
	}
	if ks := f.h.Keys(); ks[0].Limited != 2 || ks[0].Requests != 3 {
		t.Errorf("counters: %+v", ks[0])
	}
}

func TestConcurrencyLimit(t *testing.T) {
	f := newFixture(t, Spec{Name: "c", Concurrency: 1})
	f.block, f.entered = make(chan struct{}), make(chan struct{})
	auth := "Bearer " + f.secrets["c"]
	done := make(chan int)
	go func() { done <- f.do("GET", "/x", "Authorization", auth).Code }()
	<-f.entered
	if w := f.do("GET", "/x", "Authorization", auth); w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("second at once: %d", w.Code)
	}
	close(f.block)
	if c := <-done; c != 200 {
		t.Fatalf("first: %d", c)
	}
	f.block, f.entered = nil, nil
	if w := f.do("GET", "/x", "Authorization", auth); w.Code != 200 {
		t.Fatalf("after the first finished: %d", w.Code)
	}
}

func TestFailuresSlowDown(t *testing.T) {
	f := newFixture(t, Spec{Name: "alice"})
	for i := range maxFailures {
		if w := f.do("GET", "/x", "Authorization", "Bearer op_guess"); w.Code != 401 {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	w := f.do("GET", "/x", "Authorization", "Bearer "+f.secrets["alice"])
	if w.Code != 429 || w.Header().Get("Retry-After") != "60" {
		t.Fatalf("after %d failures: %d %v", maxFailures, w.Code, w.Header())
	}
	f.now = f.now.Add(failWindow)
	if w := f.do("GET", "/x", "Authorization", "Bearer "+f.secrets["alice"]); w.Code != 200 {
		t.Fatalf("a minute later: %d", w.Code)
	}
}

func TestLoginSession(t *testing.T) {
	f := newFixture(t, Spec{Name: "alice"})
	if w := f.do("GET", LoginPath+"?next=/lab"); w.Code != 200 || !strings.Contains(w.Body.String(), `value="/lab"`) {
		t.Fatalf("login form: %d %q", w.Code, w.Body)
	}
	post := func(key, next string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", LoginPath, strings.NewReader(url.Values{"key": {key}, "next": {next}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = "192.0.2.9:1"
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		return w
	}
	if w := post("op_bad", "/lab"); w.Code != 401 || len(w.Result().Cookies()) != 0 {
		t.Fatalf("bad key: %d", w.Code)
	}
	w := post(f.secrets["alice"], "/lab?a=1")
	if w.Code != 303 || w.Header().Get("Location") != "/lab?a=1" {
		t.Fatalf("login: %d %v", w.Code, w.Header())
	}
	c := w.Result().Cookies()[0]
	if c.Name != SessionCookie || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || strings.Contains(c.Value, f.secrets["alice"]) {
		t.Fatalf("cookie: %+v", c)
	}
	r := httptest.NewRequest("POST", "https://box"+LoginPath, strings.NewReader(url.Values{"key": {f.secrets["alice"]}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tw := httptest.NewRecorder()
	f.h.ServeHTTP(tw, r)
	if cs := tw.Result().Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Errorf("over TLS the cookie must be Secure: %v", cs)
	}
	// TLS the server terminated itself may leave r.TLS nil; IsTLS says so.
	f.h.o.IsTLS = func(r *http.Request) bool { return r.Header.Get("X-Test-TLS") != "" }
	r = httptest.NewRequest("POST", LoginPath, strings.NewReader(url.Values{"key": {f.secrets["alice"]}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Test-TLS", "1")
	tw = httptest.NewRecorder()
	f.h.ServeHTTP(tw, r)
	if cs := tw.Result().Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Errorf("over TLS that IsTLS reports the cookie must be Secure: %v", cs)
	}
	if w := post(f.secrets["alice"], "//evil.example/"); w.Header().Get("Location") != "/" {
		t.Fatalf("open redirect: %v", w.Header().Get("Location"))
	}
	cookie := c.Name + "=" + c.Value + "; theme=dark"
	if w := f.do("GET", "/lab", "Cookie", cookie, "Accept", "text/html"); w.Code != 200 || w.Body.String() != "ok key=alice" {
		t.Fatalf("with the cookie: %d %q", w.Code, w.Body)
	}
	if got := f.last().Header.Get("Cookie"); got != "theme=dark" {
		t.Errorf("upstream saw Cookie %q", got)
	}
	if w := f.do("GET", "/lab", "Cookie", SessionCookie+"=alice.99999999999.AAAA"); w.Code != 401 {
		t.Fatalf("forged cookie: %d", w.Code)
	}
	f.h.SetKeys(nil)
	f.h.SetKeys([]Key{{Name: "alice", Hash: HashKey(NewSecret())}}) // removed, then a new key of the same name
	if w := f.do("GET", "/lab", "Cookie", cookie); w.Code != 401 {
		t.Fatalf("cookie of a removed key: %d", w.Code)
	}
}

func TestCORSPreflight(t *testing.T) {
	f := newFixture(t, Spec{Name: "alice"})
	w := f.do("OPTIONS", "/cors/v1/chat/completions", "Origin", "https://app.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example" ||
		w.Header().Get("Access-Control-Allow-Headers") != "authorization,content-type" {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	w = f.do("POST", "/cors/v1/chat/completions", "Origin", "https://app.example")
	if w.Code != 401 || w.Header().Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("a 401 the page can read: %d %v", w.Code, w.Header())
	}
	if w := f.do("OPTIONS", "/cors/x", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST"); w.Code != 401 ||
		w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("another origin: %d %v", w.Code, w.Header())
	}
	if w := f.do("OPTIONS", "/x", "Origin", "https://app.example", "Access-Control-Request-Method", "POST"); w.Code != 401 {
		t.Fatalf("route without cors_origins: %d", w.Code)
	}
}

func TestIdentityScopes(t *testing.T) {
	id := &Identity{Name: "a", models: []string{"llama-3", "qwen*"}}
	for m, want := range map[string]bool{"llama-3": true, "llama-3.1": false, "qwen2.5-7b": true, "mistral": false} {
		if id.AllowsModel(m) != want {
			t.Errorf("AllowsModel(%q) = %v", m, !want)
		}
	}
	var none *Identity
	if !none.AllowsModel("x") || !none.AllowsRoute("x") {
		t.Error("a nil Identity must allow everything")
	}
	if _, ok := FromContext(t.Context()); ok {
		t.Error("FromContext without an identity")
	}
}

func TestStore(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	keys, secret, err := Add(nil, Spec{Name: "a", Routes: []string{"chat"}, Models: []string{"m*"}, Rate: 60, Concurrency: 2,
		Expires: now.Add(time.Hour), Admin: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, KeyPrefix) || len(secret) != 46 {
		t.Fatalf("secret %q", secret)
	}
	keys[0].LastUsed = now
	st := Store{Path: t.TempDir() + "/sub/keys"}
	if err := st.Save(keys); err != nil {
		t.Fatal(err)
	}
	got, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if string(FormatStore(got)) != string(FormatStore(keys)) || got[0].Hash != HashKey(secret) {
		t.Fatalf("round trip:\n%s\n%s", FormatStore(got), FormatStore(keys))
	}
	if _, _, err := Add(keys, Spec{Name: "a"}, now); err == nil {
		t.Error("a second key of the same name")
	}
	if _, err := Remove(keys, "nope"); err == nil {
		t.Error("removing a key that is not there")
	}
}

func TestParseStoreErrors(t *testing.T) {
	good := "a sha256=" + strings.Repeat("ab", 32) + " created=2026-01-01T00:00:00Z"
	for _, tc := range []struct{ src, want string }{
		{"# c\n\n" + good + "\nb created=2026-01-01T00:00:00Z\n", `line 4: key "b": sha256=HASH is missing`},
		{good + "\n" + good + "\n", `line 2: key "a" is already on line 1`},
		{good + " rate=x\n", "line 1: key \"a\": rate"},
		{good + " color=red\n", "unknown field"},
		{"a/b sha256=00\n", "line 1: key name"},
		{good + " sha256=abc\n", "sha256"},
	} {
		_, err := ParseStore([]byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.src, err, tc.want)
		}
	}
}

// A key's last use stays unflushed until MarkFlushed says it was written,
// so a failed write of the store is tried again.
func TestLastUseUnflushedUntilMarked(t *testing.T) {
	f := newFixture(t, Spec{Name: "alice"})
	if w := f.do("GET", "/v1/models", "Authorization", "Bearer "+f.secrets["alice"]); w.Code != 200 {
		t.Fatalf("request: %d", w.Code)
	}
	used := f.h.Unflushed()
	if _, ok := used["alice"]; !ok {
		t.Fatalf("unflushed: %v", used)
	}
	if again := f.h.Unflushed(); len(again) != 1 {
		t.Errorf("a second call, with no write between, lost the time: %v", again)
	}
	f.h.MarkFlushed(used)
	if after := f.h.Unflushed(); len(after) != 0 {
		t.Errorf("after MarkFlushed: %v", after)
	}
}
