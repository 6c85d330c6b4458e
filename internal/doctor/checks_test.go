package doctor

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/discover"
)

func TestChecks(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	banner := func(s string) func(context.Context, string) (net.Conn, error) {
		return func(context.Context, string) (net.Conn, error) {
			a, b := net.Pipe()
			go func() { b.Write([]byte(s)); b.Close() }()
			return a, nil
		}
	}
	ips := func(s ...string) func() ([]net.IP, error) {
		return func() ([]net.IP, error) {
			var out []net.IP
			for _, x := range s {
				out = append(out, net.ParseIP(x))
			}
			return out, nil
		}
	}
	cases := []struct {
		name  string
		check func(context.Context, *Env) Result
		env   Env
		want  Level
		fix   string // a part of the fix
	}{
		{"caps: admin present", checkCaps, Env{CapEffective: func() (uint64, error) { return 1 << capNetAdmin, nil }, NeedAdmin: true}, OK, ""},
		{"caps: redirect without admin", checkCaps, Env{CapEffective: func() (uint64, error) { return 0, nil }, NeedAdmin: true}, Fail, "CAP_NET_ADMIN"},
		{"caps: nothing needed", checkCaps, Env{CapEffective: func() (uint64, error) { return 0, nil }, Listen: ":2222"}, OK, ""},
		{"caps: low port", checkCaps, Env{CapEffective: func() (uint64, error) { return 0, nil }, Listen: ":22"}, Fail, "CAP_NET_BIND_SERVICE"},
		{"container with redirect", checkContainer, Env{Container: func() string { return "docker" }, NeedAdmin: true}, Warn, "map its public port"},
		{"container", checkContainer, Env{Container: func() string { return "docker" }}, OK, ""},
		{"kernel 5.12", checkKernel, Env{KernelRelease: func() (string, error) { return "5.12.0-1-amd64", nil }}, OK, ""},
		{"kernel 5.4", checkKernel, Env{KernelRelease: func() (string, error) { return "5.4.0-150-generic", nil }}, Warn, "oneport redirect clear"},
		{"kernel junk", checkKernel, Env{KernelRelease: func() (string, error) { return "x", nil }}, Warn, ""},
		{"sslh running", checkSSLH, Env{Processes: func() (map[int]string, error) { return map[int]string{1: "init", 77: "sslh-fork"}, nil }}, Warn, "systemctl disable --now sslh"},
		{"no sslh", checkSSLH, Env{Processes: func() (map[int]string, error) { return map[int]string{1: "init"}, nil }}, OK, ""},
		{"foreign redirect of 22", checkRedirect22, Env{RedirectRules: func() ([]Rule, error) {
			return []Rule{{Family: "ip", Table: "nat", Chain: "PREROUTING", Handle: 4, Port: 22, Verdict: "redirect"}}, nil
		}}, Fail, "nft delete rule ip nat PREROUTING handle 4"},
		{"oneport's own redirect", checkRedirect22, Env{RedirectRules: func() ([]Rule, error) {
			return []Rule{{Family: "inet", Table: "oneport", Chain: "prerouting", Port: 22, Verdict: "redirect"}}, nil
		}}, OK, ""},
		{"ruleset unreadable", checkRedirect22, Env{RedirectRules: func() ([]Rule, error) { return nil, errors.New("operation not permitted") }}, Warn, "as root"},
		{"sshd answers", checkSSHD, Env{SSH: "127.0.0.1:22", Dial: banner("SSH-2.0-OpenSSH_9.2\r\n")}, OK, ""},
		{"sshd absent", checkSSHD, Env{SSH: "127.0.0.1:22", Dial: func(context.Context, string) (net.Conn, error) { return nil, errors.New("connection refused") }}, Fail, "start sshd"},
		{"not sshd", checkSSHD, Env{SSH: "127.0.0.1:22", Dial: banner("HTTP/1.1 400 Bad Request\r\n")}, Fail, "--ssh"},
		{"port taken", checkListenPort, Env{Listen: ":2222", Self: 10, Listeners: func() ([]discover.Listener, error) {
			return []discover.Listener{{Addr: netip.MustParseAddrPort("0.0.0.0:2222"), PID: 99, Comm: "sslh"}}, nil
		}}, Fail, "--listen"},
		{"port ours", checkListenPort, Env{Listen: ":2222", Self: 10, Listeners: func() ([]discover.Listener, error) {
			return []discover.Listener{{Addr: netip.MustParseAddrPort("0.0.0.0:2222"), PID: 10, Comm: "oneport.test"}}, nil
		}}, OK, ""},
		{"port held by an unseen owner", checkListenPort, Env{Listen: ":2222", Self: 10, Listeners: func() ([]discover.Listener, error) {
			return []discover.Listener{{Addr: netip.MustParseAddrPort("0.0.0.0:2222")}}, nil
		}}, Warn, "as root"},
		{"port free", checkListenPort, Env{Listen: ":2222", Listeners: func() ([]discover.Listener, error) { return nil, nil }}, OK, ""},
		{"clock before build", checkClock, Env{Now: func() time.Time { return time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) }, BuildYear: 2026}, Fail, "set the clock"},
		{"clock unsynced", checkClock, Env{Now: func() time.Time { return now }, BuildYear: 2026, NTPSynced: func() (bool, error) { return false, nil }}, Warn, "set-ntp"},
		{"clock synced", checkClock, Env{Now: func() time.Time { return now }, BuildYear: 2026, NTPSynced: func() (bool, error) { return true, nil }}, OK, ""},
		{"host here", checkHostnames, Env{Hosts: []string{"llm.example.com"}, LocalIPs: ips("203.0.113.7"),
			LookupIP: func(context.Context, string) ([]net.IP, error) { return []net.IP{net.ParseIP("203.0.113.7")}, nil }}, OK, ""},
		{"host elsewhere", checkHostnames, Env{Hosts: []string{"llm.example.com"}, LocalIPs: ips("203.0.113.7"),
			LookupIP: func(context.Context, string) ([]net.IP, error) { return []net.IP{net.ParseIP("198.51.100.1")}, nil }}, Warn, "A/AAAA"},
		{"host unresolved", checkHostnames, Env{Hosts: []string{"llm.example.com"}, LocalIPs: ips("203.0.113.7"),
			LookupIP: func(context.Context, string) ([]net.IP, error) { return nil, &net.DNSError{Err: "no such host"} }}, Warn, ""},
		{"unit failed", checkUnit, Env{Unit: func(context.Context) (string, string, error) { return "failed", "enabled", nil }}, Fail, "journalctl -u oneport"},
		{"unit inactive", checkUnit, Env{Unit: func(context.Context) (string, string, error) { return "inactive", "disabled", nil }}, Warn, "enable --now"},
		{"unit active", checkUnit, Env{Unit: func(context.Context) (string, string, error) { return "active", "enabled", nil }}, OK, ""},
		{"no systemd", checkUnit, Env{Unit: func(context.Context) (string, string, error) { return "", "", errors.New("systemd is not running") }}, OK, ""},
		{"cert file expired", checkCerts, Env{Now: func() time.Time { return now }, Certs: func() ([]Cert, error) {
			return []Cert{{Names: "a.example", Source: "files", Expires: now.Add(-time.Hour)}}, nil
		}}, Fail, "replace the certificate files"},
		{"cert file expiring", checkCerts, Env{Now: func() time.Time { return now }, Certs: func() ([]Cert, error) {
			return []Cert{{Names: "a.example", Source: "files", Expires: now.Add(48 * time.Hour)}}, nil
		}}, Warn, ""},
		{"internal cert short-lived", checkCerts, Env{Now: func() time.Time { return now }, Certs: func() ([]Cert, error) {
			return []Cert{{Names: "127.0.0.1", Source: "internal", Expires: now.Add(48 * time.Hour)}}, nil
		}}, OK, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.check(context.Background(), &c.env)
			if r.Level != c.want || !strings.Contains(r.Fix, c.fix) {
				t.Errorf("got %s %q fix %q, want %s with fix containing %q", r.Level, r.Detail, r.Fix, c.want, c.fix)
			}
			if r.Level != OK && r.Fix == "" && c.fix != "" {
				t.Errorf("%s without a fix", r.Level)
			}
		})
	}
}

// An Env that knows nothing still gives a verdict for every check, and
// the table prints fixes under their checks.
func TestRunUnknownEnv(t *testing.T) {
	rs := Run(context.Background(), &Env{})
	if len(rs) != len(checks) {
		t.Fatalf("%d results for %d checks", len(rs), len(checks))
	}
	if Failed(rs) {
		t.Errorf("an unknown box failed: %+v", rs)
	}
	var b strings.Builder
	WriteTable(&b, []Result{{Check: "sshd", Level: Fail, Detail: "down", Fix: "start it"}})
	if !strings.Contains(b.String(), "FAIL  sshd  down") || !strings.Contains(b.String(), "fix: start it") {
		t.Errorf("table:\n%s", b.String())
	}
}
