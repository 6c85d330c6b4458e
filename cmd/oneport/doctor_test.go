//go:build linux

package main

import (
	"encoding/json"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/oneport/oneport/internal/conntest"
	"github.com/oneport/oneport/internal/doctor"
	"github.com/oneport/oneport/internal/netnstest"
	"github.com/oneport/oneport/internal/oneporttest"
)

// fakeSSHD listens on loopback and greets like sshd.
func fakeSSHD(t *testing.T) string {
	return conntest.Serve(t, func(c net.Conn) {
		c.Write([]byte("SSH-2.0-OpenSSH_9.2p1 Debian\r\n"))
		c.Close()
	})
}

// `oneport doctor` on this machine: a verdict for every check, fixes for
// the rest, and an exit code that says whether one failed.
func TestDoctorOnThisMachine(t *testing.T) {
	cfg := oneporttest.WriteConfig(t, "listen = \"127.0.0.1:1\"\n")
	ssh := fakeSSHD(t)
	code, out, errOut := runCmd("doctor", "--config", cfg, "--ssh", ssh)
	for _, name := range []string{"capabilities", "container", "kernel", "sslh", "port 22 redirect", "sshd", "listen port",
		"clock", "hostnames", "systemd unit", "certificates"} {
		if !strings.Contains(out, name) {
			t.Errorf("no %q check:\n%s", name, out)
		}
	}
	if !strings.Contains(out, "OK    sshd              sshd answers at "+ssh) {
		t.Errorf("sshd at %s not found:\n%s", ssh, out)
	}
	if failed := strings.Contains(out, "\nFAIL") || strings.HasPrefix(out, "FAIL"); failed != (code == 1) || (code != 0 && code != 1) {
		t.Errorf("exit %d with output:\n%s%s", code, out, errOut)
	}
	code, out, _ = runCmd("doctor", "--json", "--config", cfg, "--ssh", "127.0.0.1:1")
	var rs []doctor.Result
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	for _, r := range rs {
		if r.Check == "sshd" && (r.Level != doctor.Fail || r.Fix == "") {
			t.Errorf("nothing at 127.0.0.1:1 is not a FAIL with a fix: %+v", r)
		}
	}
	if code != 1 {
		t.Errorf("exit %d with a failed check", code)
	}
}

// The real binary, run inside a network namespace that holds a leftover
// REDIRECT of port 22 planted with nft, fails and says how to remove it.
func TestDoctorFindsPlantedRedirect(t *testing.T) {
	netnstest.Require(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (Debian package nftables): cannot plant the rule")
	}
	bin := oneportBinary(t)
	ns := netnstest.New(t, "doctor")
	for _, cmd := range []string{
		"add table ip nat",
		"add chain ip nat prerouting { type nat hook prerouting priority -100; }",
		"add rule ip nat prerouting tcp dport 22 redirect to :2222",
	} {
		if out, err := ns.Command("nft", cmd).CombinedOutput(); err != nil {
			t.Fatalf("nft %s: %v\n%s", cmd, err, out)
		}
	}
	cfg := oneporttest.WriteConfig(t, "listen = \":2222\"\n")
	out, err := ns.Command(bin, "doctor", "--json", "--config", cfg).Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("doctor exited %v, want 1\n%s", err, out)
	}
	var rs []doctor.Result
	if err := json.Unmarshal(out, &rs); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	for _, r := range rs {
		if r.Check == "port 22 redirect" {
			if r.Level != doctor.Fail || !strings.Contains(r.Fix, "nft delete rule ip nat prerouting handle ") {
				t.Errorf("planted redirect: %+v", r)
			}
			return
		}
	}
	t.Errorf("no port 22 redirect check in %s", out)
}
