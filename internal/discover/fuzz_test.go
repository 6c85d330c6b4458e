package discover

import (
	"testing"
)

// FuzzParse feeds the model-list parsers arbitrary bodies: none may
// panic, and every model they return must be non-empty, bounded and
// unique, whatever a server sends.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"object":"list","data":[{"id":"m"},{"id":"m"},{"id":""}]}`,
		`{"models":[{"name":"llama3:8b"},{"model":"x"}]}`,
		`{"model_id":"BAAI/bge-m3","model_type":{"embedding":{}}}`,
		`{"model_id":" ","model_type":null}`,
		`{"data":null}`, `[]`, `null`, `{"data":[1]}`, "\x00\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(models []string) {
			if len(models) > maxModels {
				t.Fatalf("%d models", len(models))
			}
			seen := map[string]bool{}
			for _, m := range models {
				if m == "" || len(m) > 256 || seen[m] {
					t.Fatalf("bad model %q in %q", m, models)
				}
				seen[m] = true
			}
		}
		if m, ok := ParseOpenAIModels(b); ok {
			check(m)
		}
		if m, ok := ParseOllamaTags(b); ok {
			check(m)
		}
		if m, k, ok := ParseInfo(b); ok && (m == "" || (k != KindTEI && k != KindTGI)) {
			t.Fatalf("ParseInfo = %q %q", m, k)
		}
		_ = jsonKeys(b, "a")
		for _, r := range Routes(&Snapshot{Servers: []Server{{Kind: KindOpenAI, Addr: "127.0.0.1:1", Models: []string{string(b)}}}}) {
			if !PathName(r.Path[1 : len(r.Path)-1]) {
				t.Fatalf("route %q from a bad name", r.Path)
			}
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	got := map[string]answer{
		"/":          {status: 200},
		"/v1/models": {status: 200, body: []byte(`{"object":"list","data":[{"id":"a"},{"id":"b"}]}`)},
	}
	b.ReportAllocs()
	for b.Loop() {
		classify(got)
	}
}
