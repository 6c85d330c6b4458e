package httproute_test

import (
	"bufio"
	"bytes"
	"net"
	"net/textproto"
	"strconv"
	"testing"

	"github.com/oneport/oneport/httproute"
)

// A Host with a port is accepted exactly when the port is a port number.
func FuzzValidHostPort(f *testing.F) {
	for _, s := range []string{"name", "name:80", "name:abc", "name:99999", "name:65535", "[::1]:8080", "[::1]",
		"[::1]:abc", "a:b:c", "name:", ":80", "[::1]:", "[::1]x:80", "name:+80", "name:0080"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got := httproute.ValidHostPort(h)
		_, port, err := net.SplitHostPort(h)
		if err != nil {
			return // no port, or not host:port at all
		}
		_, perr := strconv.ParseUint(port, 10, 16)
		want := port == "" || perr == nil && len(port) <= 5 && port[0] != '+'
		if got != want {
			t.Fatalf("ValidHostPort(%q) = %v, want %v", h, got, want)
		}
	})
}

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
		got := httproute.FramedTwice(hdr)
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
