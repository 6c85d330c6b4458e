package httproute

import (
	"net/http"
	"testing"
)

func TestIsBulk(t *testing.T) {
	for _, c := range []struct {
		length, ctype string
		want          bool
	}{
		{"", "application/octet-stream", true},
		{"", "application/json", true},
		{"", "text/event-stream", false},
		{"", "Text/Event-Stream; charset=utf-8", false},
		{"", "application/x-ndjson", false},
		{"", "application/grpc+proto", false},
		{"", "multipart/x-mixed-replace; boundary=x", false},
		{"1048576", "application/octet-stream", true},
		{"131072", "text/event-stream", true},
		{"131071", "application/json", false},
		{"90", "application/json", false},
		{"bogus", "application/octet-stream", false},
	} {
		h := http.Header{}
		if c.length != "" {
			h.Set("Content-Length", c.length)
		}
		h.Set("Content-Type", c.ctype)
		if got := isBulk(h); got != c.want {
			t.Errorf("isBulk(Content-Length %q, Content-Type %q) = %v, want %v", c.length, c.ctype, got, c.want)
		}
	}
}

// Large buffers are lent up to the bound, then small ones, and every
// return is counted.
func TestResponseBuffersBound(t *testing.T) {
	bulk := responseBuffers{&logWriter{bulk: true}}
	var lent [][]byte
	for range maxLargeBuffers {
		b := bulk.Get()
		if len(b) != largeBuffer {
			t.Fatalf("got a %d-byte buffer before the bound, want %d", len(b), largeBuffer)
		}
		lent = append(lent, b)
	}
	if b := bulk.Get(); len(b) != smallBuffer {
		t.Fatalf("past the bound: a %d-byte buffer, want %d", len(b), smallBuffer)
	} else {
		bulk.Put(b)
	}
	for _, b := range lent {
		bulk.Put(b)
	}
	if n := largeLent.Load(); n != 0 {
		t.Fatalf("%d large buffers still counted as lent", n)
	}
	if b := (responseBuffers{&logWriter{}}).Get(); len(b) != smallBuffer {
		t.Fatalf("small response: a %d-byte buffer, want %d", len(b), smallBuffer)
	}
}
