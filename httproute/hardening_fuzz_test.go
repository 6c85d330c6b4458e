package httproute_test

import (
	"net"
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
