//go:build unix

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/syncbuf"

	"github.com/oneport/oneport/internal/loadtest"
	"github.com/oneport/oneport/internal/netnstest"
	"github.com/oneport/oneport/internal/oneporttest"
	"github.com/oneport/oneport/netfilter"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// oneportBinary builds oneport once for the tests that run it as a process.
func oneportBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "oneport-test")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "oneport")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// TestMain keeps every oneport the tests start, in process or as a
// binary, away from the host's /var/lib/oneport and /run/oneport: their
// state and admin sockets go to a directory removed at the end.
func TestMain(m *testing.M) {
	remove := oneporttest.IsolateDirs()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	remove()
	os.Exit(code)
}

// process is oneport running inside a namespace.
type process struct {
	cmd  *exec.Cmd
	logs *syncbuf.Buffer
	done chan struct{}
}

func startInNS(t *testing.T, ns *netnstest.NS, args ...string) *process {
	t.Helper()
	p := &process{logs: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = ns.Command(oneportBinary(t), args...)
	serving := make(chan struct{})
	p.cmd.Stdout, p.cmd.Stderr = p.logs, &lineWatch{w: p.logs, sub: "oneport serving", seen: serving}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("oneport log:\n%s", p.logs.String())
		}
	})
	select {
	case <-serving:
	case <-p.done:
		t.Fatalf("oneport exited:\n%s", p.logs.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("oneport did not start:\n%s", p.logs.String())
	}
	return p
}

func httpVia(t *testing.T, ns *netnstest.NS, url string) (string, error) {
	tr := &http.Transport{DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
		return ns.Dial(t, network, addr)
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func sshBanner(t *testing.T, ns *netnstest.NS, addr string) string {
	c, err := ns.Dial(t, "tcp", addr)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, "SSH-2.0-client\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

// The user's setup on a box with one port mapped to 22: oneport answers
// HTTP and SSH on port 22 over IPv4 and IPv6; killed with SIGKILL, the
// kernel drops the redirect within a second and port 22 reaches sshd
// directly; started again, it reinstalls cleanly.
func TestRedirectEndToEndAndSIGKILL(t *testing.T) {
	srv, cli := netnstest.Pair(t)
	sshd := srv.Listen(t, "tcp", ":22")
	stopSSHD := loadtest.Serve(sshd, loadtest.SSHLike)
	defer stopSSHD()
	web := srv.Listen(t, "tcp", "127.0.0.1:8080")
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "model server saw "+r.URL.Path)
	})}
	go hs.Serve(web)
	defer hs.Close()

	args := []string{"--listen", ":2222", "--redirect", "22", "--ssh", "127.0.0.1:22", "--route", "/llm/=127.0.0.1:8080"}
	p := startInNS(t, srv, args...)
	for _, host := range []string{netnstest.ServerIPv4, "[" + netnstest.ServerIPv6 + "]"} {
		body, err := httpVia(t, cli, "http://"+host+":22/llm/v1/models")
		if err != nil || body != "model server saw /v1/models" {
			t.Errorf("HTTP to %s:22: %q %v", host, body, err)
		}
		if b := sshBanner(t, cli, host+":22"); b != loadtest.Banner {
			t.Errorf("SSH to %s:22 through oneport: banner %q", host, b)
		}
	}
	if !strings.Contains(p.logs.String(), "crash_safe=true") {
		t.Errorf("redirect not reported as crash-safe:\n%s", p.logs.String())
	}

	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	killed := time.Now()
	for {
		st, err := netfilter.Status(netfilter.Config{NetNS: srv.Fd()})
		if err != nil {
			t.Fatal(err)
		}
		if !st.Installed {
			break
		}
		if time.Since(killed) > time.Second {
			t.Fatal("redirect still installed a second after SIGKILL")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b := sshBanner(t, cli, netnstest.ServerIPv4+":22"); b != loadtest.Banner {
		t.Errorf("after SIGKILL, port 22 did not reach sshd directly: %q", b)
	}
	if _, err := httpVia(t, cli, "http://"+netnstest.ServerIPv4+":22/llm/v1/models"); err == nil {
		t.Error("HTTP still answered on port 22 after oneport died")
	}

	startInNS(t, srv, args...)
	if body, err := httpVia(t, cli, "http://"+netnstest.ServerIPv4+":22/llm/x"); err != nil || body != "model server saw /x" {
		t.Errorf("after restart: %q %v", body, err)
	}
}

// SIGTERM removes the redirect before open sessions drain, so new
// connections reach sshd at once; `oneport redirect status` reads the
// kernel.
func TestRedirectStatusAndCleanStop(t *testing.T) {
	srv, _ := netnstest.Pair(t)
	p := startInNS(t, srv, "--listen", ":2222", "--redirect", "22,2200")
	out, err := srv.Command(oneportBinary(t), "redirect", "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "owned by netlink port") ||
		!strings.Contains(string(out), "tcp dport 22 redirect to :2222") || !strings.Contains(string(out), "tcp dport 2200 redirect to :2222") {
		t.Errorf("status: %v\n%s", err, out)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("oneport did not stop on SIGTERM")
	}
	if st, _ := netfilter.Status(netfilter.Config{NetNS: srv.Fd()}); st.Installed {
		t.Error("redirect left installed after SIGTERM")
	}
	out, _ = srv.Command(oneportBinary(t), "redirect", "status").CombinedOutput()
	if !strings.Contains(string(out), "no redirect installed") {
		t.Errorf("status after stop: %s", out)
	}
}

// Transparent mode: sshd sees the client namespace's address, over IPv4
// and IPv6; after oneport stops, its rules and routes are gone.
func TestTransparentSSHDSeesClientAddress(t *testing.T) {
	srv, cli := netnstest.Pair(t)
	sshd := srv.Listen(t, "tcp", ":22")
	stop := loadtest.Serve(sshd, func(c net.Conn) {
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		fmt.Fprintf(c, "sshd sees %s\n", host)
	})
	defer stop()
	p := startInNS(t, srv, "--listen", ":2222", "--redirect", "22", "--transparent", "--ssh", "127.0.0.1:22")
	for _, tc := range []struct{ server, client string }{
		{netnstest.ServerIPv4, netnstest.ClientIPv4},
		{"[" + netnstest.ServerIPv6 + "]", netnstest.ClientIPv6},
	} {
		if got, want := sshBanner(t, cli, tc.server+":22"), "sshd sees "+tc.client+"\n"; got != want {
			t.Errorf("via %s: %q, want %q", tc.server, got, want)
		}
	}
	// A client on the box itself is dialed as usual.
	if got := sshBanner(t, srv, "127.0.0.1:2222"); got != "sshd sees 127.0.0.1\n" {
		t.Errorf("local client: %q", got)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	for _, args := range [][]string{{"rule"}, {"-6", "rule"}, {"route", "show", "table", "28526"}, {"-6", "route", "show", "table", "28526"}} {
		out, _ := exec.Command("ip", append([]string{"-n", srv.Name}, args...)...).CombinedOutput()
		if strings.Contains(string(out), "28526") || strings.Contains(string(out), "0x6f6e6570") ||
			args[len(args)-1] == "28526" && strings.TrimSpace(string(out)) != "" {
			t.Errorf("ip %v after exit:\n%s", args, out)
		}
	}
	if st, _ := netfilter.Status(netfilter.Config{NetNS: srv.Fd()}); st.Installed {
		t.Error("table left after exit")
	}
}

// Without CAP_NET_ADMIN, --redirect fails at start with an error that
// says what is missing and what to do instead.
func TestRedirectWithoutCapability(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start oneport as another user")
	}
	bin := oneportBinary(t)
	os.Chmod(filepath.Dir(bin), 0o755)
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--redirect", "22", "--admin-socket", "off", "--state-dir", t.TempDir())
	cmd.Args[2] = ":0" // all addresses, as --redirect requires
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("oneport started its redirect without CAP_NET_ADMIN:\n%s", out)
	}
	for _, want := range []string{"CAP_NET_ADMIN", "drop --redirect"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error lacks %q:\n%s", want, out)
		}
	}
}
