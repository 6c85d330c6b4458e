//go:build linux

package doctor

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/oneport/oneport/internal/discover"
)

// System fills the facts of Env that come from this box: capabilities,
// container, kernel, processes, the nftables ruleset, sockets, the
// clock's synchronisation, addresses, DNS and systemd. The configured
// fields (Listen, SSH, ...) and Certs are left to the caller.
func System(e *Env) {
	e.Now = time.Now
	e.Self = os.Getpid()
	e.CapEffective = capEffective
	e.Container = container
	e.KernelRelease = func() (string, error) {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return "", err
		}
		return unix.ByteSliceToString(u.Release[:]), nil
	}
	e.Processes = processes
	e.RedirectRules = func() ([]Rule, error) { return RedirectRules() }
	e.Listeners = discover.Listeners
	e.NTPSynced = ntpSynced
	d := &net.Dialer{Timeout: 2 * time.Second}
	e.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	e.LookupIP = func(ctx context.Context, h string) ([]net.IP, error) {
		return net.DefaultResolver.LookupIP(ctx, "ip", h)
	}
	e.LocalIPs = localIPs
	e.Unit = systemdUnit
}

func capEffective() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapEff in /proc/self/status")
}

// container names the container runtime from the marks each leaves.
func container() string {
	if v := os.Getenv("container"); v != "" {
		return v
	}
	for file, name := range map[string]string{"/.dockerenv": "docker", "/run/.containerenv": "podman"} {
		if _, err := os.Stat(file); err == nil {
			return name
		}
	}
	b, _ := os.ReadFile("/proc/1/cgroup")
	for _, name := range []string{"kubepods", "docker", "containerd", "lxc", "libpod"} {
		if strings.Contains(string(b), name) {
			return name
		}
	}
	return ""
}

func processes() (map[int]string, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm")); err == nil {
			out[pid] = strings.TrimSpace(string(b))
		}
	}
	return out, nil
}

// ntpSynced asks the kernel (adjtimex) whether an NTP daemon keeps the
// clock synchronised.
func ntpSynced() (bool, error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, err
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0, nil
}

func localIPs() ([]net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP)
		}
	}
	return out, nil
}

func systemdUnit(ctx context.Context) (active, enabled string, err error) {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return "", "", fmt.Errorf("systemd is not running")
	}
	out, err := exec.CommandContext(ctx, "systemctl", "show", "oneport.service", "--property=ActiveState,UnitFileState").Output()
	if err != nil {
		return "", "", fmt.Errorf("systemctl: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "ActiveState="); ok {
			active = v
		}
		if v, ok := strings.CutPrefix(line, "UnitFileState="); ok {
			enabled = v
		}
	}
	if enabled == "" {
		enabled = "not-found"
	}
	return active, enabled, nil
}

// RedirectRules reads the nftables ruleset (of the network namespace
// opts point at, by default oneport's) and returns the rules that match a
// TCP destination port and redirect or DNAT it, iptables-nft's REDIRECT
// and DNAT targets included. Legacy iptables rules are not in nftables and
// are not seen.
func RedirectRules(opts ...nftables.ConnOption) ([]Rule, error) {
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	defer c.CloseLasting()
	chains, err := c.ListChains()
	if err != nil {
		return nil, fmt.Errorf("list nftables chains: %w", err)
	}
	var out []Rule
	for _, ch := range chains {
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of %s %s: %w", ch.Table.Name, ch.Name, err)
		}
		for _, r := range rules {
			if port, verdict := redirectOf(r.Exprs); verdict != "" {
				out = append(out, Rule{Family: familyName(ch.Table.Family), Table: ch.Table.Name, Chain: ch.Name,
					Handle: r.Handle, Port: port, Verdict: verdict})
			}
		}
	}
	return out, nil
}

// redirectOf returns the destination port a rule matches (a transport
// header payload at offset 2, compared equal) and its redirecting
// verdict, "" for rules that do not redirect.
func redirectOf(exprs []expr.Any) (port int, verdict string) {
	dportReg := uint32(0)
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Payload:
			if e.Base == expr.PayloadBaseTransportHeader && e.Offset == 2 && e.Len == 2 {
				dportReg = e.DestRegister
			}
		case *expr.Cmp:
			if dportReg != 0 && e.Register == dportReg && e.Op == expr.CmpOpEq && len(e.Data) == 2 {
				port = int(binary.BigEndian.Uint16(e.Data))
			}
		case *expr.Redir:
			verdict = "redirect"
		case *expr.NAT:
			if e.Type == expr.NATTypeDestNAT {
				verdict = "dnat"
			}
		case *expr.Target:
			switch e.Name {
			case "REDIRECT":
				verdict = "redirect"
			case "DNAT":
				verdict = "dnat"
			}
		}
	}
	return port, verdict
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyNetdev:
		return "netdev"
	case nftables.TableFamilyARP:
		return "arp"
	}
	return strconv.Itoa(int(f))
}
