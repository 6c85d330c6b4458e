package httproute

import (
	"net/http"
	"testing"
)

// BenchmarkStrippedPrefixResponse is the per-response cost of putting
// Location and Set-Cookie back under a stripped prefix: for the common
// response that has neither, and for a redirect that sets a cookie.
func BenchmarkStrippedPrefixResponse(b *testing.B) {
	c, err := compile(Route{Path: "/embedding-model/", Upstreams: []string{"127.0.0.1:1"}})
	if err != nil {
		b.Fatal(err)
	}
	modify := modifyResponse(c)
	req, _ := http.NewRequest("GET", "http://127.0.0.1:1/v1/models", nil)
	for _, tc := range []struct {
		name string
		hdr  http.Header
	}{
		{"plain", http.Header{"Content-Type": {"application/json"}, "Content-Length": {"42"}}},
		{"redirect-cookie", http.Header{"Location": {"/login?next=%2F"}, "Set-Cookie": {"sid=1; Path=/; HttpOnly"}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h := tc.hdr.Clone()
				modify(&http.Response{Header: h, Request: req})
			}
		})
	}
}
