package auth

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzParseStore: any text either parses into keys that format and parse
// back the same, or is refused with the line named; it never panics.
func FuzzParseStore(f *testing.F) {
	f.Add([]byte("a sha256=" + strings.Repeat("0f", 32) + " created=2026-01-01T00:00:00Z routes=x,y models=m* rate=3 concurrency=1 admin\n"))
	f.Add([]byte("# only a comment\n\n"))
	f.Add([]byte("a sha256=zz\n"))
	f.Add([]byte("a b c=d=e\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		keys, err := ParseStore(src)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") && !strings.HasPrefix(err.Error(), "read keys") {
				t.Fatalf("error without its line: %v", err)
			}
			return
		}
		again, err := ParseStore(FormatStore(keys))
		if err != nil {
			t.Fatalf("formatted store does not parse: %v\n%s", err, FormatStore(keys))
		}
		if string(FormatStore(again)) != string(FormatStore(keys)) {
			t.Fatalf("round trip changed the store")
		}
	})
}

// FuzzCredential: whatever a client sends as Authorization, x-api-key or
// session cookie, only the real key gets in, and nothing panics.
func FuzzCredential(f *testing.F) {
	fx := newFixture(f, Spec{Name: "alice"})
	good := fx.secrets["alice"]
	f.Add("Bearer op_x", "", "")
	f.Add("Basic YTpi", "", "")
	f.Add("", "op_"+strings.Repeat("A", 43), "")
	f.Add("", "", "alice.1.AAAA")
	f.Add("Bearer", "", "alice..")
	f.Fuzz(func(t *testing.T, authz, apiKey, cookie string) {
		fx.h.fails = failures{}
		r := httptest.NewRequest("GET", "/v1/models", nil)
		r.Header.Set("Authorization", authz)
		r.Header.Set("X-Api-Key", apiKey)
		r.Header.Set("Cookie", SessionCookie+"="+cookie)
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		if w.Code == 200 && !strings.Contains(authz+apiKey, good) {
			t.Fatalf("let in with %q %q %q", authz, apiKey, cookie)
		}
		if w.Code != 200 && w.Code != 401 {
			t.Fatalf("status %d", w.Code)
		}
	})
}

// FuzzDenied: matching any path never panics, and a denied path stays
// denied with a trailing slash.
func FuzzDenied(f *testing.F) {
	f.Add("POST", "/slots/0")
	f.Add("GET", "//")
	f.Add("POST", "/v2/systemsharedmemory/")
	f.Fuzz(func(t *testing.T, method, path string) {
		if Denied(method, path) != "" && !strings.HasSuffix(path, "/") && Denied(method, path+"/") == "" {
			t.Fatalf("%s %s denied, but not with a trailing slash", method, path)
		}
	})
}
