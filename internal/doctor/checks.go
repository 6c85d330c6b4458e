package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	capNetBindService = 10
	capNetAdmin       = 12
)

func checkCaps(_ context.Context, e *Env) Result {
	if e.CapEffective == nil {
		return ok("unknown on this system")
	}
	caps, err := e.CapEffective()
	if err != nil {
		return warn("", "cannot read capabilities: %v", err)
	}
	has := func(c int) bool { return caps&(1<<c) != 0 }
	if port := listenPort(e.Listen); port > 0 && port < 1024 && !has(capNetBindService) {
		return fail("run as root, or give oneport CAP_NET_BIND_SERVICE (the systemd unit does: AmbientCapabilities=CAP_NET_BIND_SERVICE)",
			"listen port %d is below 1024 and CAP_NET_BIND_SERVICE is missing", port)
	}
	switch {
	case has(capNetAdmin):
		return ok("CAP_NET_ADMIN present: --redirect and --transparent can work")
	case e.NeedAdmin:
		return fail("run as root or with CAP_NET_ADMIN (the systemd unit has it); in a container without it, drop --redirect and map the provider's port to --listen",
			"redirect or transparent mode is configured but CAP_NET_ADMIN is missing")
	}
	return ok("no CAP_NET_ADMIN, and none needed (no --redirect)")
}

func checkContainer(_ context.Context, e *Env) Result {
	if e.Container == nil {
		return ok("unknown")
	}
	c := e.Container()
	if c == "" {
		return ok("not in a container")
	}
	if e.NeedAdmin {
		return warn("most GPU clouds give containers no CAP_NET_ADMIN: if the redirect fails, drop --redirect and have the provider map its public port to oneport's --listen port",
			"running in a container (%s) with a redirect configured", c)
	}
	return ok("running in a container (%s): map the provider's public port to --listen", c)
}

func checkKernel(_ context.Context, e *Env) Result {
	if e.KernelRelease == nil {
		return ok("not Linux: no redirect")
	}
	rel, err := e.KernelRelease()
	if err != nil {
		return warn("", "cannot read the kernel version: %v", err)
	}
	maj, min, ok2 := kernelVersion(rel)
	if !ok2 {
		return warn("", "cannot parse kernel version %q", rel)
	}
	if maj > 5 || (maj == 5 && min >= 12) {
		return ok("Linux %s supports the nftables OWNER flag: the redirect disappears if oneport dies", rel)
	}
	return warn("after a crash run `oneport redirect clear`, or upgrade to Linux 5.12 or newer",
		"Linux %s is older than 5.12: no nftables OWNER flag, so a redirect outlives a crashed oneport", rel)
}

// kernelVersion reads "6.8.0-45-generic" as 6, 8.
func kernelVersion(rel string) (maj, min int, ok bool) {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	maj, err1 := strconv.Atoi(parts[0])
	minStr := parts[1]
	if i := strings.IndexFunc(minStr, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minStr = minStr[:i]
	}
	min, err2 := strconv.Atoi(minStr)
	return maj, min, err1 == nil && err2 == nil
}

func checkSSLH(_ context.Context, e *Env) Result {
	if e.Processes == nil {
		return ok("unknown")
	}
	procs, err := e.Processes()
	if err != nil {
		return warn("", "cannot list processes: %v", err)
	}
	var found []string
	for pid, name := range procs {
		if name == "sslh" || strings.HasPrefix(name, "sslh-") {
			found = append(found, fmt.Sprintf("%s[%d]", name, pid))
		}
	}
	if len(found) == 0 {
		return ok("no sslh running")
	}
	slices.Sort(found)
	return warn("oneport replaces sslh: `systemctl disable --now sslh` (and remove its iptables rules), or check it does not hold oneport's port",
		"sslh is still running: %s", strings.Join(found, ", "))
}

func checkRedirect22(_ context.Context, e *Env) Result {
	if e.RedirectRules == nil {
		return ok("not Linux: no nftables")
	}
	rules, err := e.RedirectRules()
	if err != nil {
		return warn("run `oneport doctor` as root to read the ruleset", "cannot read the nftables ruleset: %v", err)
	}
	var bad []Rule
	for _, r := range rules {
		if r.Port == 22 && !(r.Table == "oneport" && r.Family == "inet") {
			bad = append(bad, r)
		}
	}
	if len(bad) == 0 {
		return ok("no redirect of port 22 besides oneport's own")
	}
	var where, fixes []string
	for _, r := range bad {
		where = append(where, fmt.Sprintf("%s %s %s (handle %d, %s)", r.Family, r.Table, r.Chain, r.Handle, r.Verdict))
		fixes = append(fixes, fmt.Sprintf("nft delete rule %s %s %s handle %d", r.Family, r.Table, r.Chain, r.Handle))
	}
	fixes = append(fixes, "(an iptables rule: iptables -t nat -S PREROUTING, then -D it); then let `--redirect 22` do it crash-safely")
	return fail(strings.Join(fixes, "\n"),
		"port 22 is redirected by a rule oneport did not make, a leftover of sslh or a hand-made setup: %s", strings.Join(where, "; "))
}

func checkSSHD(ctx context.Context, e *Env) Result {
	if e.Dial == nil || e.SSH == "" {
		return ok("unknown")
	}
	c, err := e.Dial(ctx, e.SSH)
	if err != nil {
		return fail(fmt.Sprintf("start sshd (systemctl start ssh), or point --ssh at where it listens (ss -ltnp | grep sshd)"),
			"nothing answers at %s, where --ssh points: %v", e.SSH, err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "SSH-") {
		if err != nil && line == "" {
			line = err.Error()
		}
		return fail("point --ssh at sshd's address (ss -ltnp | grep sshd)",
			"%s answers, but not as an SSH server: %q", e.SSH, strings.TrimSpace(line))
	}
	return ok("sshd answers at %s (%s)", e.SSH, strings.TrimSpace(line))
}

func checkListenPort(_ context.Context, e *Env) Result {
	port := listenPort(e.Listen)
	if e.Listeners == nil || port == 0 {
		return ok("unknown")
	}
	ls, err := e.Listeners()
	if err != nil {
		return warn("", "cannot list listening sockets: %v", err)
	}
	var others, ours, unseen []string
	for _, l := range ls {
		if int(l.Addr.Port()) != port {
			continue
		}
		who := fmt.Sprintf("%s[%d] on %s", l.Comm, l.PID, l.Addr)
		switch {
		case l.PID == 0: // its owner is another user's, not visible without root
			unseen = append(unseen, l.Addr.String())
		case l.PID == e.Self || l.Comm == "oneport":
			ours = append(ours, who)
		default:
			others = append(others, who)
		}
	}
	switch {
	case len(others) == 0 && len(unseen) > 0:
		return warn("run oneport doctor as root to see who holds it (the oneport service, if it runs, is fine)",
			"port %d is held by a process this user cannot see: %s", port, strings.Join(unseen, ", "))
	case len(others) > 0:
		return fail(fmt.Sprintf("stop it, or choose another port with --listen (e.g. :%d)", port+1),
			"port %d is taken: %s", port, strings.Join(others, ", "))
	case len(ours) > 0:
		return ok("port %d is served by oneport: %s", port, strings.Join(ours, ", "))
	}
	return ok("port %d is free", port)
}

func checkClock(_ context.Context, e *Env) Result {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	t := now()
	if e.BuildYear > 0 && t.Year() < e.BuildYear {
		return fail("set the clock (timedatectl set-ntp true, or date -s): ACME and every TLS client check certificate dates",
			"the clock says %s, before this oneport was built (%d)", t.UTC().Format(time.RFC3339), e.BuildYear)
	}
	if e.NTPSynced == nil {
		return ok("%s (synchronisation unknown)", t.UTC().Format(time.RFC3339))
	}
	synced, err := e.NTPSynced()
	switch {
	case err != nil:
		return ok("%s (synchronisation unknown: %v)", t.UTC().Format(time.RFC3339), err)
	case !synced:
		return warn("enable time synchronisation: timedatectl set-ntp true (systemd-timesyncd) or install chrony",
			"the clock (%s) is not synchronised: certificates may look not yet valid or expired", t.UTC().Format(time.RFC3339))
	}
	return ok("%s, synchronised", t.UTC().Format(time.RFC3339))
}

func checkHostnames(ctx context.Context, e *Env) Result {
	if len(e.Hosts) == 0 {
		return ok("no host names configured")
	}
	if e.LookupIP == nil || e.LocalIPs == nil {
		return ok("unknown")
	}
	local, err := e.LocalIPs()
	if err != nil {
		return warn("", "cannot list this box's addresses: %v", err)
	}
	var bad []string
	for _, h := range e.Hosts {
		ips, err := e.LookupIP(ctx, h)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s does not resolve (%v)", h, shortErr(err)))
			continue
		}
		if !slices.ContainsFunc(ips, func(ip net.IP) bool { return slices.ContainsFunc(local, ip.Equal) }) {
			bad = append(bad, fmt.Sprintf("%s resolves to %v", h, ips))
		}
	}
	if len(bad) == 0 {
		return ok("%s resolve to this box", strings.Join(e.Hosts, ", "))
	}
	return warn("point the names' A/AAAA records at this box's public address (behind NAT or a provider's proxy, its public IP is not on an interface and this is expected)",
		"%s; this box has %v", strings.Join(bad, "; "), local)
}

func checkUnit(ctx context.Context, e *Env) Result {
	if e.Unit == nil {
		return ok("unknown")
	}
	active, enabled, err := e.Unit(ctx)
	switch {
	case err != nil:
		return ok("no systemd here (%v): run oneport in the foreground", shortErr(err))
	case enabled == "" || enabled == "not-found":
		return ok("oneport.service is not installed (oneport install --write installs it)")
	case active == "failed":
		return fail("see why: journalctl -u oneport -n 50; then systemctl restart oneport",
			"oneport.service has failed (%s)", enabled)
	case active != "active":
		return warn("systemctl enable --now oneport", "oneport.service is %s (%s)", active, enabled)
	}
	return ok("oneport.service is active (%s)", enabled)
}

func checkCerts(_ context.Context, e *Env) Result {
	if e.Certs == nil {
		return ok("unknown")
	}
	certs, err := e.Certs()
	if err != nil {
		return warn("", "cannot read certificates: %v", err)
	}
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	var expired, soon []string
	for _, c := range certs {
		left := c.Expires.Sub(now())
		switch {
		case left <= 0 && c.Source == "files":
			expired = append(expired, fmt.Sprintf("%s (%s) expired %s", c.Names, c.Source, c.Expires.UTC().Format(time.DateOnly)))
		case left <= 0:
			// Managed ones are renewed while oneport runs; one left
			// expired on disk may be for a name no longer served.
			soon = append(soon, fmt.Sprintf("%s (%s) expired %s", c.Names, c.Source, c.Expires.UTC().Format(time.DateOnly)))
		case left < 7*24*time.Hour && c.Source == "files":
			soon = append(soon, fmt.Sprintf("%s (%s) expires %s", c.Names, c.Source, c.Expires.UTC().Format(time.DateOnly)))
		}
	}
	switch {
	case len(expired) > 0:
		return fail("replace the certificate files (oneport reloads them when they change), and check the clock",
			"%s", strings.Join(expired, "; "))
	case len(soon) > 0:
		return warn("replace certificate files before they expire; oneport renews internal and ACME ones while it runs (if it is running, check its log and the clock)",
			"%s", strings.Join(soon, "; "))
	}
	return ok("%d certificates, none expired", len(certs))
}

func listenPort(listen string) int {
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// shortErr drops a DNS or syscall error's detail to its gist.
func shortErr(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Err
	}
	if errors.Is(err, syscall.ENOENT) {
		return "not found"
	}
	return err.Error()
}
