package tunnel

import (
	"net"
	"strings"
	"testing"
)

func TestNoProxy(t *testing.T) {
	for _, c := range []struct {
		list, addr string
		want       bool
	}{
		{"", "box.example:443", false},
		{"*", "box.example:443", true},
		{"example", "box.example:443", true},
		{".example", "box.example:443", true},
		{"box.example", "box.example:443", true},
		{"ox.example", "box.example:443", false},
		{"other.com, box.example", "box.example:443", true},
		{"box.example:2222", "box.example:443", false},
		{"box.example:2222", "box.example:2222", true},
		{"10.0.0.0/8", "10.1.2.3:443", true},
		{"10.0.0.0/8", "11.1.2.3:443", false},
		{"127.0.0.1", "127.0.0.1:2222", true},
		{"::1", "[::1]:2222", true},
		{"[::1]:2222", "[::1]:2222", true},
		{"localhost", "127.0.0.1:2222", false},
	} {
		if got := NoProxy(c.list, c.addr); got != c.want {
			t.Errorf("NoProxy(%q, %q) = %v, want %v", c.list, c.addr, got, c.want)
		}
	}
}

func TestParseForward(t *testing.T) {
	for _, c := range []struct{ spec, listen, target, err string }{
		{"8888:127.0.0.1:8888", "127.0.0.1:8888", "127.0.0.1:8888", ""},
		{"0.0.0.0:9000:localhost:8888", "0.0.0.0:9000", "localhost:8888", ""},
		{"[::1]:9000:[::1]:8888", "[::1]:9000", "[::1]:8888", ""},
		{"9000:[fd00::2]:8888", "127.0.0.1:9000", "[fd00::2]:8888", ""},
		{"8888", "", "", "want [ADDR:]PORT:HOST:PORT"},
		{"a:b:c:d:e", "", "", "want"},
		{"9000::8888", "", "", "want"},
	} {
		l, tg, err := ParseForward(c.spec)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseForward(%q) = %q, %q, %v; want error %q", c.spec, l, tg, err, c.err)
			}
			continue
		}
		if err != nil || l != c.listen || tg != c.target {
			t.Errorf("ParseForward(%q) = %q, %q, %v; want %q, %q", c.spec, l, tg, err, c.listen, c.target)
		}
	}
}

func TestSSHConfigQuotes(t *testing.T) {
	got := SSHConfig("gpu", "https://box:2222/a%20b", "/opt/my tools/oneport", nil)
	want := "    ProxyCommand '/opt/my tools/oneport' connect 'https://box:2222/a%%20b'\n"
	if !strings.Contains(got, want) {
		t.Errorf("got\n%s\nwant a line %q", got, want)
	}
}

// FuzzNoProxy checks that no NO_PROXY list or address makes NoProxy
// panic, and that "*" always exempts.
func FuzzNoProxy(f *testing.F) {
	f.Add("example.com,.corp,10.0.0.0/8,[::1]:22", "box.example.com:443")
	f.Add("*", "[fe80::1%eth0]:22")
	f.Fuzz(func(t *testing.T, list, addr string) {
		NoProxy(list, addr)
		if !NoProxy("*,"+list, addr) {
			t.Fatal("* did not exempt")
		}
	})
}

// FuzzParseForward checks that an accepted -L spec yields addresses that
// split as host:port.
func FuzzParseForward(f *testing.F) {
	f.Add("8888:127.0.0.1:8888")
	f.Add("[::1]:9000:[::1]:8888")
	f.Fuzz(func(t *testing.T, spec string) {
		l, tg, err := ParseForward(spec)
		if err != nil {
			return
		}
		if _, _, err := net.SplitHostPort(l); err != nil {
			t.Fatalf("listen %q from %q: %v", l, spec, err)
		}
		if _, _, err := net.SplitHostPort(tg); err != nil {
			t.Fatalf("target %q from %q: %v", tg, spec, err)
		}
	})
}
