//go:build linux

package daemon

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/oneport/oneport/internal/admin"
	"github.com/oneport/oneport/internal/chromiumtest"
	"github.com/oneport/oneport/internal/discover/standin"
	"github.com/oneport/oneport/internal/oneporttest"
	"github.com/oneport/oneport/internal/status"
)

// artifacts is where a test keeps files worth looking at after CI:
// $ONEPORT_ARTIFACTS when set, else the test's temporary directory.
func artifacts(t *testing.T) string {
	if d := os.Getenv("ONEPORT_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// The status page in a real browser: it loads without console errors,
// shows each route and model, and its request counter moves after a
// request without a reload.
func TestStatusPageInChromium(t *testing.T) {
	chromiumtest.Find(t)
	standin.Require(t)
	vllm := standin.Start(t, "vllm", "s-chat-model")
	mine := oneporttest.Backend(t, "mine")
	c := make(scans, 1)
	addr := startWith(t, Options{OnDiscover: c.hook}, "--admin-socket", "off", "--discover", "--discover-interval", "200ms", "--route", "/api/="+mine)
	c.waitFor(t, "the stand-in", func(r map[string]string) bool { return r["/s-chat-model/"] == vllm.Addr })

	b := chromiumtest.Start(t)
	b.Navigate("http://" + addr + status.Prefix)
	text, err := b.Eval("document.body.innerText")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/api/", mine, "/s-chat-model/", vllm.Addr, "openai", "discovered", "oneport connect https://" + addr} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
	before, err := b.Eval("document.getElementById('req-total').textContent")
	if err != nil {
		t.Fatal(err)
	}
	// Resolve when the page's script redraws the counter.
	if _, err := b.Eval(`window.changed = new Promise(function (ok) {
		var e = document.getElementById('req-total');
		new MutationObserver(function () { ok(e.textContent); }).observe(e, {childList: true, characterData: true, subtree: true});
	}); 1`); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if code, _ := oneporttest.Get(t, "http://"+addr+"/api/x"); code != 200 {
			t.Fatalf("GET /api/x: %d", code)
		}
	}
	after, err := b.Eval("window.changed")
	if err != nil {
		t.Fatal(err)
	}
	n0, _ := strconv.Atoi(before)
	n1, _ := strconv.Atoi(after)
	if n1 < n0+3 {
		t.Errorf("request counter went from %s to %s after 3 requests", before, after)
	}
	shot := filepath.Join(artifacts(t), "status-page.png")
	b.Screenshot(shot)
	t.Logf("screenshot: %s", shot)
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// The page is never shown to a client a proxy forwarded, and the admin
// API answers the same facts at /status/full.
func TestStatusPageHiddenAndAdminFull(t *testing.T) {
	mine := oneporttest.Backend(t, "mine")
	sock := filepath.Join(t.TempDir(), "admin.sock")
	addr := startWith(t, Options{}, "--route", "/api/="+mine, "--admin-socket", sock)
	req, _ := http.NewRequest("GET", "http://"+addr+status.Prefix, nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("forwarded client got the status page: %d", resp.StatusCode)
	}
	if code, body := oneporttest.Get(t, "http://"+addr+status.Prefix); code != 200 || !strings.Contains(body, "/api/") {
		t.Errorf("loopback client: %d", code)
	}
	if code, body := oneporttest.Get(t, "http://"+addr+status.Prefix+"ca.pem"); code != 200 || !strings.Contains(body, "BEGIN CERTIFICATE") {
		t.Errorf("ca.pem: %d %.40q", code, body)
	}
	var f status.Facts
	if err := admin.NewClient(sock).Call("GET", "/status/full", nil, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Routes) != 1 || f.Routes[0].Path != "/api/" || f.CA == nil || f.CA.Fingerprint == "" {
		b, _ := json.Marshal(f)
		t.Errorf("status/full: %s", b)
	}
}

// Two servers serving one model are replicas: one route with both as
// upstreams that serves requests, and the status page and JSON say so.
func TestDiscoveredReplicas(t *testing.T) {
	standin.Require(t)
	s := standin.StartAll(t, standin.Spec{Kind: "vllm", Model: "r-model"}, standin.Spec{Kind: "vllm", Model: "r-model"})
	a, b := s[0], s[1]
	want := a.Addr + "," + b.Addr
	if b.Addr < a.Addr {
		want = b.Addr + "," + a.Addr
	}
	c := make(scans, 1)
	addr := startWith(t, Options{OnDiscover: c.hook}, "--admin-socket", "off", "--discover-interval", "200ms")
	c.waitFor(t, "both replicas", func(r map[string]string) bool { return r["/r-model/"] == want })
	_, body := oneporttest.Get(t, "http://"+addr+status.Prefix+"status.json")
	var f status.Facts
	if err := json.Unmarshal([]byte(body), &f); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range f.Models {
		if m.Name == "r-model" {
			found = true
			if !m.Replicas || len(m.Servers) != 2 {
				t.Errorf("model facts: %+v", m)
			}
		}
	}
	if !found {
		t.Errorf("r-model not in %+v", f.Models)
	}
	for _, r := range f.Routes {
		if r.Path == "/r-model/" && len(r.Upstreams) != 2 {
			t.Errorf("route facts: %+v", r)
		}
	}
	if code, page := oneporttest.Get(t, "http://"+addr+status.Prefix); code != 200 || !strings.Contains(page, "2 replicas") {
		t.Errorf("page does not say replicas: %d", code)
	}
	for range 4 {
		if code, body := oneporttest.Get(t, "http://"+addr+"/r-model/v1/models"); code != 200 || !strings.Contains(body, "r-model") {
			t.Errorf("GET /r-model/v1/models: %d %s", code, body)
		}
	}
}

// Once keys exist the status page needs one like every path; an admin key
// opens it from anywhere, while a plain key from a forwarded (so not
// loopback) client sees the same 404 as any unknown path.
func TestStatusPageOpensToAdminKeys(t *testing.T) {
	f := startKeyFixture(t)
	admin := f.addKey(t, `{"name":"ops","admin":true}`)
	user := f.addKey(t, `{"name":"alice"}`)
	fwd := []string{"X-Forwarded-For", "203.0.113.9"}
	if code, _ := f.get(t, "/.oneport/status.json", append([]string{"Authorization", "Bearer " + admin}, fwd...)...); code != 200 {
		t.Errorf("admin key through a proxy: %d, want 200", code)
	}
	if code, _ := f.get(t, "/.oneport/status.json", append([]string{"Authorization", "Bearer " + user}, fwd...)...); code != 404 {
		t.Errorf("plain key through a proxy: %d, want 404", code)
	}
	if code, _ := f.get(t, "/.oneport/status.json", "Authorization", "Bearer "+user); code != 200 {
		t.Errorf("plain key from loopback: %d, want 200", code)
	}
	if code, _ := f.get(t, "/.oneport/status.json"); code != 401 {
		t.Errorf("no key from loopback once keys exist: %d, want 401", code)
	}
}
