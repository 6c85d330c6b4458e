package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkHandler is the handler's own cost per request: open (no keys)
// against a Bearer key (hash, lookup, limits, credential removal).
func BenchmarkHandler(b *testing.B) {
	for _, tc := range []struct {
		name  string
		specs []Spec
	}{{"open", nil}, {"key", []Spec{{Name: "alice", Rate: 1 << 30, Concurrency: 1 << 20}}}} {
		b.Run(tc.name, func(b *testing.B) {
			f := newFixture(b, tc.specs...)
			f.h.o.Next = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
			r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
			b.ReportAllocs()
			for b.Loop() {
				if s := f.secrets["alice"]; s != "" {
					r.Header.Set("Authorization", "Bearer "+s)
				}
				f.h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
}
