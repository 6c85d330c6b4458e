package h1_test

import (
	"bufio"
	"bytes"
	"net/textproto"
	"testing"

	"github.com/oneport/oneport/httproute/internal/h1"
)

// A request header that net/http would read with a Content-Length field
// is always seen as framed twice (false alarms only cost a connection).
func FuzzFramedTwice(f *testing.F) {
	for _, s := range []string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\nHost: x\ncontent-LENGTH: 4\nTransfer-Encoding: chunked\n\n",
		"POST / HTTP/1.1\r\nHost: x\r\nX: a\r\n Content-Length: 4\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, hdr []byte) {
		got := h1.FramedTwice(hdr)
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(hdr)))
		if _, err := tp.ReadLine(); err != nil {
			return
		}
		mime, err := tp.ReadMIMEHeader()
		if err != nil {
			return
		}
		if _, ok := mime["Content-Length"]; ok && !got {
			t.Fatalf("FramedTwice(%q) = false, but the header has Content-Length", hdr)
		}
	})
}
