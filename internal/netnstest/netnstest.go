// Package netnstest creates network namespaces for kernel tests: a
// server and a client host joined by a veth pair, with documentation-range
// addresses (198.51.100.0/24, 2001:db8::/64). Tests that use it need root
// and skip with a message otherwise; every namespace is removed when the
// test ends, failed or not.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// Addresses of the two hosts.
const (
	ServerIPv4 = "198.51.100.1"
	ClientIPv4 = "198.51.100.2"
	ServerIPv6 = "2001:db8::1"
	ClientIPv6 = "2001:db8::2"
)

// NS is a network namespace made for a test.
type NS struct {
	Name string
	fd   netns.NsHandle
}

// Fd returns a file descriptor of the namespace, valid until the test
// ends.
func (n *NS) Fd() int { return int(n.fd) }

// Require skips the test unless it can make network namespaces.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test skipped: needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("kernel test skipped: the ip command (iproute2) is not installed")
	}
}

func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// New creates an empty namespace with its loopback up.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	Require(t)
	b := make([]byte, 4)
	rand.Read(b)
	name := fmt.Sprintf("op-%s-%s", prefix, hex.EncodeToString(b))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("kernel test skipped: cannot create a network namespace: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	fd, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open namespace %s: %v", name, err)
	}
	t.Cleanup(func() { fd.Close() })
	return &NS{Name: name, fd: fd}
}

// Pair creates a server and a client namespace joined by a veth pair.
func Pair(t testing.TB) (server, client *NS) {
	t.Helper()
	server, client = New(t, "srv"), New(t, "cli")
	vs, vc := "v"+server.Name[len(server.Name)-8:], "v"+client.Name[len(client.Name)-8:]
	run(t, "ip", "link", "add", vs, "netns", server.Name, "type", "veth", "peer", "name", vc, "netns", client.Name)
	for _, c := range [][]string{
		{"ip", "-n", server.Name, "addr", "add", ServerIPv4 + "/24", "dev", vs},
		{"ip", "-n", server.Name, "addr", "add", ServerIPv6 + "/64", "dev", vs, "nodad"},
		{"ip", "-n", server.Name, "link", "set", vs, "up"},
		{"ip", "-n", client.Name, "addr", "add", ClientIPv4 + "/24", "dev", vc},
		{"ip", "-n", client.Name, "addr", "add", ClientIPv6 + "/64", "dev", vc, "nodad"},
		{"ip", "-n", client.Name, "link", "set", vc, "up"},
	} {
		run(t, c...)
	}
	return server, client
}

// Do runs f on an OS thread inside the namespace. Sockets f creates stay
// in the namespace after Do returns.
func (n *NS) Do(t testing.TB, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Errorf("get namespace: %v", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(n.fd); err != nil {
			t.Errorf("enter namespace %s: %v", n.Name, err)
			return
		}
		f()
		if err := netns.Set(orig); err != nil {
			return // leave the thread locked: it dies with this goroutine
		}
		runtime.UnlockOSThread()
	}()
	<-done
}

// Listen listens inside the namespace.
func (n *NS) Listen(t testing.TB, network, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	n.Do(t, func() { ln, err = net.Listen(network, addr) })
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, n.Name, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Dial connects from inside the namespace.
func (n *NS) Dial(t testing.TB, network, addr string) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	var err error
	n.Do(t, func() { c, err = net.Dial(network, addr) })
	return c, err
}

// Command returns cmd run inside the namespace with ip netns exec.
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}
