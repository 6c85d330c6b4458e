package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// writeRequest must put on the wire what Request.Write would: an upstream
// reads the same method, target, host, fields and body from either.
func TestWriteRequestReadsLikeRequestWrite(t *testing.T) {
	mk := func(method, target, host string, h http.Header, body string) *http.Request {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			h = http.Header{}
		}
		r := &http.Request{Method: method, URL: u, Host: host, Header: h, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		if body != "" {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
		}
		return r
	}
	cases := map[string]*http.Request{
		"GET":                mk("GET", "http://up/v1/models?x=1&y=%2F", "box:2222", nil, ""),
		"GET, host from URL": mk("GET", "http://up:8000/", "", nil, ""),
		"HEAD":               mk("HEAD", "http://up/", "box", nil, ""),
		"POST with body":     mk("POST", "http://up/v1/embeddings", "box", http.Header{"Content-Type": {"application/json"}}, `{"input":"hi"}`),
		"POST empty":         mk("POST", "http://up/x", "box", nil, ""),
		"DELETE empty":       mk("DELETE", "http://up/x", "box", nil, ""),
		"OPTIONS":            mk("OPTIONS", "http://up/x", "box", nil, ""),
		"fields": mk("GET", "http://up/", "box", http.Header{
			"X-Forwarded-For": {"10.0.0.1"}, "Accept": {"a", "b"}, "X-Line": {"one\r\ntwo"},
			"X-Space": {"  padded  "}, "Bad Name": {"dropped"}, "Content-Length": {"99"},
			"Transfer-Encoding": {"chunked"}, "Trailer": {"X"}, "Host": {"other"},
		}, ""),
		"user agent":          mk("GET", "http://up/", "box", http.Header{"User-Agent": {"curl/8"}}, ""),
		"empty user agent":    mk("GET", "http://up/", "box", http.Header{"User-Agent": {""}}, ""),
		"no user agent value": mk("GET", "http://up/", "box", http.Header{"User-Agent": nil}, ""),
		"IPv6 zone":           mk("GET", "http://up/", "[fe80::1%25eth0]:8080", nil, ""),
		"unicode host":        mk("GET", "http://up/", "bücher.example:80", nil, ""),
		"opaque path":         mk("GET", "http://up/a%2Fb/c", "box", nil, ""),
	}
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			var body []byte
			if req.Body != nil {
				body, _ = io.ReadAll(req.Body)
			}
			var ours bytes.Buffer
			bw := bufio.NewWriter(&ours)
			if err := writeRequest(bw, req, body); err != nil {
				t.Fatal(err)
			}
			bw.Flush()
			ref := *req
			ref.Body = nil
			if body != nil {
				ref.Body = io.NopCloser(bytes.NewReader(body))
			}
			var theirs bytes.Buffer
			if err := ref.Write(&theirs); err != nil {
				t.Fatal(err)
			}
			if a, b := readBack(t, ours.Bytes()), readBack(t, theirs.Bytes()); a != b {
				t.Errorf("upstream reads\n ours:          %s\n Request.Write: %s", a, b)
			}
		})
	}
	bad := mk("GET", "http://up/", "bad host", nil, "")
	if err := writeRequest(bufio.NewWriter(io.Discard), bad, nil); err == nil {
		t.Error("an invalid Host was written")
	}
}

// readBack parses a request as an upstream would and prints what it saw.
func readBack(t *testing.T, raw []byte) string {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	body, _ := io.ReadAll(r.Body)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range r.Header {
			if !yield(k) {
				return
			}
		}
	})
	var fields []string
	for _, k := range keys {
		fields = append(fields, k+"="+strings.Join(r.Header[k], "|"))
	}
	return strings.Join([]string{r.Method, r.RequestURI, r.Host, strings.Join(fields, " "),
		"len=" + strconv.FormatInt(r.ContentLength, 10), string(body)}, " ; ")
}
