//go:build linux

package doctor

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/nftables"

	"github.com/oneport/oneport/internal/netnstest"
)

// A REDIRECT of port 22 left in the ruleset (as an sslh setup leaves it),
// planted with nft in a fresh network namespace, is found through netlink
// and reported as a FAIL with the command that removes it.
func TestRedirect22PlantedInNetns(t *testing.T) {
	netnstest.Require(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (Debian package nftables): cannot plant the rule")
	}
	ns := netnstest.New(t, "doctor")
	e := &Env{RedirectRules: func() ([]Rule, error) { return RedirectRules(nftables.WithNetNSFd(ns.Fd())) }}
	if r := checkRedirect22(context.Background(), e); r.Level != OK {
		t.Fatalf("empty namespace: %+v", r)
	}
	for _, cmd := range [][]string{
		{"nft", "add", "table", "ip", "nat"},
		{"nft", "add", "chain", "ip", "nat", "prerouting", "{ type nat hook prerouting priority -100; }"},
		{"nft", "add", "rule", "ip", "nat", "prerouting", "tcp", "dport", "22", "redirect", "to", ":2222"},
		{"nft", "add", "rule", "ip", "nat", "prerouting", "tcp", "dport", "80", "redirect", "to", ":8080"},
	} {
		if out, err := ns.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd, err, out)
		}
	}
	out, err := ns.Command("nft", "-a", "list", "chain", "ip", "nat", "prerouting").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v\n%s", err, out)
	}
	r := checkRedirect22(context.Background(), e)
	if r.Level != Fail {
		t.Fatalf("planted redirect not reported: %+v", r)
	}
	// The fix names the rule's real handle, as nft lists it.
	handle := strings.TrimSpace(r.Fix[strings.Index(r.Fix, "handle ")+len("handle "):])
	handle = strings.SplitN(handle, "\n", 2)[0]
	if !strings.Contains(r.Fix, "nft delete rule ip nat prerouting handle ") ||
		!strings.Contains(string(out), "dport 22 redirect to :2222 # handle "+handle) {
		t.Errorf("fix %q does not name the rule listed as\n%s", r.Fix, out)
	}
	if strings.Contains(r.Detail, "dport 80") || strings.Count(r.Fix, "nft delete") != 1 {
		t.Errorf("the port 80 redirect was reported too: %+v", r)
	}
	// The fix works.
	if out, err := ns.Command("sh", "-c", strings.SplitN(r.Fix, "\n", 2)[0]).CombinedOutput(); err != nil {
		t.Fatalf("running the fix: %v\n%s", err, out)
	}
	if r := checkRedirect22(context.Background(), e); r.Level != OK {
		t.Errorf("after the fix: %+v", r)
	}
}
