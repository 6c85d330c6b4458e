//go:build linux

package netfilter

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/oneport/oneport/internal/netnstest"
	"github.com/oneport/oneport/internal/syncbuf"
)

var update = flag.Bool("update", false, "rewrite golden files")

// namer answers each connection with its name, standing in for oneport
// and sshd.
func namer(t *testing.T, ln net.Listener, name string) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, name)
			c.Close()
		}
	}()
}

func reached(t *testing.T, ns *netnstest.NS, addr string, mark int) string {
	t.Helper()
	var c net.Conn
	var err error
	ns.Do(t, func() {
		d := net.Dialer{Timeout: 2 * time.Second}
		if mark != 0 {
			d.Control = func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, mark) })
			}
		}
		c, err = d.Dial("tcp", addr)
	})
	if err != nil {
		return "dial error: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// server starts an "sshd" on :22 and a "oneport" on :2222 in ns.
func server(t *testing.T, ns *netnstest.NS) {
	namer(t, ns.Listen(t, "tcp", ":22"), "sshd")
	namer(t, ns.Listen(t, "tcp", ":2222"), "oneport")
}

func TestRedirectIPv4AndIPv6(t *testing.T) {
	srv, cli := netnstest.Pair(t)
	server(t, srv)
	r, err := Install(Config{Ports: []uint16{22}, ToPort: 2222, NetNS: srv.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Owned() {
		t.Error("table is not owned: kernel older than 5.12?")
	}
	for _, addr := range []string{netnstest.ServerIPv4 + ":22", "[" + netnstest.ServerIPv6 + "]:22"} {
		if got := reached(t, cli, addr, 0); got != "oneport" {
			t.Errorf("client to %s reached %q, want oneport", addr, got)
		}
	}
	// Connections made on the server itself are not redirected, so
	// oneport's own dial to sshd cannot loop.
	for _, addr := range []string{"127.0.0.1:22", netnstest.ServerIPv4 + ":22"} {
		if got := reached(t, srv, addr, 0); got != "sshd" {
			t.Errorf("local connection to %s reached %q, want sshd", addr, got)
		}
	}
	st, err := Status(Config{NetNS: srv.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Installed || !st.Owned || len(st.Rules) != 1 || st.Rules[0].String() != "prerouting: tcp dport 22 redirect to :2222" {
		t.Errorf("status %+v", st)
	}
	checkNFT(t, srv, "tcp dport 22 redirect to :2222")

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := reached(t, cli, netnstest.ServerIPv4+":22", 0); got != "sshd" {
		t.Errorf("after Close the client reached %q, want sshd", got)
	}
}

// checkNFT reads the table back with the nft command, when installed, as a
// check independent of this package's own decoding.
func checkNFT(t *testing.T, ns *netnstest.NS, want ...string) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Log("nft not installed: rule set not cross-checked")
		return
	}
	out, err := ns.Command("nft", "list", "table", "inet", DefaultTable).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v\n%s", err, out)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("nft listing lacks %q:\n%s", w, out)
		}
	}
}

// When the owning socket closes, as it does when oneport is killed, the
// kernel removes the table.
func TestOwnerSocketClosedRemovesTable(t *testing.T) {
	srv, cli := netnstest.Pair(t)
	server(t, srv)
	r, err := Install(Config{Ports: []uint16{22}, ToPort: 2222, NetNS: srv.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Owned() {
		t.Skip("kernel does not support owned tables")
	}
	r.conn.CloseLasting() // what the kernel sees when the process dies
	// The kernel removes the table when it releases the socket, after
	// Close has returned, and an nftables monitor in the namespace was
	// seen to receive no event for it: the state is polled, with a bound.
	deadline := time.After(time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := Status(Config{NetNS: srv.Fd()})
		if err != nil {
			t.Fatal(err)
		}
		if !st.Installed {
			break
		}
		select {
		case <-deadline:
			t.Fatal("table still installed a second after its owner's socket closed")
		case <-tick.C:
		}
	}
	if got := reached(t, cli, netnstest.ServerIPv4+":22", 0); got != "sshd" {
		t.Errorf("client reached %q, want sshd", got)
	}
}

// Another program's `nft flush ruleset` does not remove the owned table.
func TestOwnedTableSurvivesFlushRuleset(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (apt-get install nftables)")
	}
	srv, cli := netnstest.Pair(t)
	server(t, srv)
	r, err := Install(Config{Ports: []uint16{22}, ToPort: 2222, NetNS: srv.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if out, err := srv.Command("nft", "flush", "ruleset").CombinedOutput(); err != nil {
		t.Fatalf("nft flush ruleset: %v %s", err, out)
	}
	if got := reached(t, cli, netnstest.ServerIPv4+":22", 0); got != "oneport" {
		t.Errorf("after flush ruleset the client reached %q, want oneport", got)
	}
}

// A second oneport cannot take over a live one's table; a table left
// without an owner is replaced by Install and removed by Clear.
func TestHeldStaleAndClear(t *testing.T) {
	srv := netnstest.New(t, "srv")
	cfg := Config{Ports: []uint16{22}, ToPort: 2222, NetNS: srv.Fd()}
	r, err := Install(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Install(cfg); !errors.Is(err, ErrHeld) {
		t.Errorf("second Install: %v, want ErrHeld", err)
	}
	if _, err := Clear(cfg); !errors.Is(err, ErrHeld) {
		t.Errorf("Clear of a live table: %v, want ErrHeld", err)
	}
	r.Close()

	stale := installUnowned(t, cfg)
	stale.conn.CloseLasting() // crash without cleanup on an old kernel
	if st, _ := Status(cfg); !st.Installed || st.Owned {
		t.Fatalf("stale table not in place: %+v", st)
	}
	r, err = Install(cfg)
	if err != nil {
		t.Fatalf("Install over a stale table: %v", err)
	}
	r.Close()

	installUnowned(t, cfg).conn.CloseLasting()
	if removed, err := Clear(cfg); err != nil || !removed {
		t.Fatalf("Clear: %v %v", removed, err)
	}
	if st, _ := Status(cfg); st.Installed {
		t.Fatal("table still there after Clear")
	}
	if removed, err := Clear(cfg); err != nil || removed {
		t.Fatalf("second Clear: %v %v", removed, err)
	}
}

func installUnowned(t *testing.T, cfg Config) *Redirect {
	t.Helper()
	c, err := Install(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	r := &Redirect{cfg: cfg}
	r.conn, err = newLasting(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.apply(true); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLocalRedirectSkipsMarkedConnections(t *testing.T) {
	srv := netnstest.New(t, "srv")
	server(t, srv)
	r, err := Install(Config{Ports: []uint16{22}, ToPort: 2222, NetNS: srv.Fd(), Local: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := reached(t, srv, "127.0.0.1:22", 0); got != "oneport" {
		t.Errorf("ssh localhost reached %q, want oneport", got)
	}
	if got := reached(t, srv, "127.0.0.1:22", Mark); got != "sshd" {
		t.Errorf("oneport's own marked dial reached %q, want sshd", got)
	}
}

func TestUpdatePorts(t *testing.T) {
	srv, cli := netnstest.Pair(t)
	server(t, srv)
	namer(t, srv.Listen(t, "tcp", ":2022"), "sshd-2022")
	r, err := Install(Config{Ports: []uint16{22}, ToPort: 2222, NetNS: srv.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Update([]uint16{2022}, 2222); err != nil {
		t.Fatal(err)
	}
	if got := reached(t, cli, netnstest.ServerIPv4+":22", 0); got != "sshd" {
		t.Errorf("port 22 after update reached %q", got)
	}
	if got := reached(t, cli, netnstest.ServerIPv4+":2022", 0); got != "oneport" {
		t.Errorf("port 2022 after update reached %q", got)
	}
}

func TestInvalidConfig(t *testing.T) {
	for _, cfg := range []Config{
		{ToPort: 2222},
		{Ports: []uint16{22}},
		{Ports: []uint16{22}, ToPort: 22},
		{Ports: []uint16{22}, ToPort: 2222, Interfaces: []string{"a-name-far-too-long-for-linux"}},
	} {
		if _, err := Install(cfg); err == nil {
			t.Errorf("Install(%+v) accepted", cfg)
		}
	}
}

// The exact netlink messages Install sends are pinned by a golden file, so
// a change to the rule set shows up in review without root.
func TestInstallMessagesGolden(t *testing.T) {
	var dump strings.Builder
	dial := func(req []netlink.Message) ([]netlink.Message, error) {
		for _, m := range req {
			fmt.Fprintf(&dump, "type=%#x flags=%#x data=%x\n", uint16(m.Header.Type), uint16(m.Header.Flags), m.Data)
		}
		// Answer list requests with nothing and acknowledge the rest.
		out := make([]netlink.Message, 0, len(req))
		for _, m := range req {
			if m.Header.Flags&netlink.Dump != 0 {
				continue // no tables yet
			}
			out = append(out, netlink.Message{Header: netlink.Header{Type: netlink.Error, Sequence: m.Header.Sequence, PID: m.Header.PID}, Data: make([]byte, 4)})
		}
		return out, nil
	}
	r, err := Install(Config{Ports: []uint16{22, 2200}, ToPort: 2222, Interfaces: []string{"eth0"}, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	_ = r
	golden := filepath.Join("testdata", "install.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, []byte(dump.String()), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update to create it)", err)
	}
	if dump.String() != string(want) {
		t.Errorf("netlink messages changed; review and run with -update:\n%s", dump.String())
	}
	if !strings.Contains(dump.String(), fmt.Sprintf("%x", "eth0")) {
		t.Error("interface name not in the messages")
	}
}

// Limited to an address, the redirect leaves connections to the box's
// other addresses alone.
func TestRedirectLimitedToAddress(t *testing.T) {
	srv, cli := netnstest.Pair(t)
	server(t, srv)
	r, err := Install(Config{Ports: []uint16{22}, ToPort: 2222, NetNS: srv.Fd(), Addresses: []net.IP{net.ParseIP(netnstest.ServerIPv4)}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := reached(t, cli, netnstest.ServerIPv4+":22", 0); got != "oneport" {
		t.Errorf("to the listed address: %q, want oneport", got)
	}
	if got := reached(t, cli, "["+netnstest.ServerIPv6+"]:22", 0); got != "sshd" {
		t.Errorf("to another address: %q, want sshd", got)
	}
	st, _ := Status(Config{NetNS: srv.Fd()})
	if len(st.Rules) != 1 || st.Rules[0].String() != "prerouting: daddr "+netnstest.ServerIPv4+" tcp dport 22 redirect to :2222" {
		t.Errorf("status %+v", st.Rules)
	}
	checkNFT(t, srv, "ip daddr "+netnstest.ServerIPv4+" tcp dport 22 redirect to :2222")
}

// On a kernel that rejects the OWNER flag (before 5.12), Install falls
// back to an ordinary table, reports it as not owned, and says so.
func TestFallbackWithoutOwnerFlag(t *testing.T) {
	const newTable = 0xa00 // NFNL_SUBSYS_NFTABLES<<8 | NFT_MSG_NEWTABLE
	var tableBatches int
	dial := func(req []netlink.Message) ([]netlink.Message, error) {
		out := make([]netlink.Message, 0, len(req))
		failThis := false
		for _, m := range req {
			if uint16(m.Header.Type) == newTable {
				tableBatches++
				failThis = tableBatches == 1
			}
		}
		for _, m := range req {
			if m.Header.Flags&netlink.Dump != 0 {
				continue
			}
			code := int32(0)
			if failThis && uint16(m.Header.Type) == newTable {
				code = -int32(unix.EOPNOTSUPP)
			}
			data := binary.NativeEndian.AppendUint32(nil, uint32(code))
			out = append(out, netlink.Message{Header: netlink.Header{Type: netlink.Error, Sequence: m.Header.Sequence, PID: m.Header.PID}, Data: data})
		}
		return out, nil
	}
	var logs syncbuf.Buffer
	r, err := Install(Config{Ports: []uint16{22}, ToPort: 2222, Dial: dial, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if r.Owned() {
		t.Error("reported as owned after the kernel refused the flag")
	}
	if tableBatches != 2 {
		t.Errorf("%d table batches, want a retry without the flag", tableBatches)
	}
	if !strings.Contains(logs.String(), "oneport redirect clear") {
		t.Errorf("the weaker protection is not explained:\n%s", logs.String())
	}
}

// Kernel refusals become errors that say what is missing and what to do.
func TestExplainErrors(t *testing.T) {
	for _, tc := range []struct {
		errno error
		want  error
		says  string
	}{
		{unix.EPERM, ErrPermission, "CAP_NET_ADMIN"},
		{unix.EACCES, ErrPermission, "drop --redirect"},
		{unix.EPROTONOSUPPORT, ErrNoNFTables, "nf_tables"},
		{unix.EAFNOSUPPORT, ErrNoNFTables, "listen on the public port"},
	} {
		err := explain(fmt.Errorf("netlink receive: %w", tc.errno))
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), tc.errno.Error()) {
			t.Errorf("%v: %v", tc.errno, err)
		}
	}
	if err := explain(unix.EBUSY); errors.Is(err, ErrPermission) || errors.Is(err, ErrNoNFTables) {
		t.Errorf("EBUSY explained as %v", err)
	}
}
