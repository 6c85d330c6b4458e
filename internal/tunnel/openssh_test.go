package tunnel_test

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/sshtest"
	"github.com/oneport/oneport/internal/syncbuf"
)

// sshRig is a real sshd behind an in-process oneport, and OpenSSH's
// clients set up to reach it through `oneport connect`.
type sshRig struct {
	sshd  *sshtest.Server
	box   *box
	bin   string
	known string
	env   []string // extra environment of the ssh commands (HTTPS_PROXY)
	ping  string   // --ping for oneport connect; empty: its default
	http2 bool     // oneport connect --http2
}

func newSSHRig(t testing.TB) *sshRig {
	t.Helper()
	need(t, "ssh", "openssh-client")
	sshd := sshtest.StartSSHD(t) // skips unless sshd is installed and we are root
	bin := oneportBin(t)
	b := startBox(t, "127.0.0.1:0", t.TempDir(), "--ssh", sshd.Addr)
	return &sshRig{sshd: sshd, box: b, bin: bin, known: filepath.Join(t.TempDir(), "known_hosts")}
}

// opts are the ssh/scp/sftp options: the ProxyCommand, the test's key,
// and no host key prompts.
func (r *sshRig) opts() []string {
	pc := fmt.Sprintf("%s connect --known-hosts %s", r.bin, r.known)
	if r.ping != "" {
		pc += " --ping " + r.ping
	}
	if r.http2 {
		pc += " --http2"
	}
	pc += " https://" + r.box.Addr
	return []string{"-o", "ProxyCommand=" + pc, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-i", r.sshd.KeyFile}
}

func (r *sshRig) dest() string { return r.sshd.User + "@box" }

func (r *sshRig) command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(prog, append(r.opts(), args...)...)
	cmd.Env = append(os.Environ(), r.env...)
	return cmd
}

func (r *sshRig) run(t testing.TB, prog string, args ...string) string {
	t.Helper()
	out, err := r.command(prog, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestOpenSSHThroughTunnel runs ssh, scp, sftp and ssh -L through
// `oneport connect` as ProxyCommand, directly and through tinyproxy.
func TestOpenSSHThroughTunnel(t *testing.T) {
	need(t, "scp", "openssh-client")
	need(t, "sftp", "openssh-client")
	r := newSSHRig(t)
	dir := t.TempDir()
	local := filepath.Join(dir, "local.bin")
	// 64 MiB keeps CI fast; ONEPORT_TEST_1GIB=1 sends 1 GiB each way.
	size := int64(64 << 20)
	if os.Getenv("ONEPORT_TEST_1GIB") != "" {
		size = 1 << 30
	}
	sum := writeRandom(t, local, size)
	small := filepath.Join(dir, "small.bin")
	smallSum := writeRandom(t, small, 1<<20)
	web := helloServer(t)

	direct := func(*testing.T) []string { return []string{"HTTPS_PROXY=", "https_proxy="} }
	viaTinyproxy := func(t *testing.T) []string {
		tp := startTinyproxy(t, 60)
		return []string{"HTTPS_PROXY=http://user:pass@" + tp.Addr, "https_proxy=", "NO_PROXY=", "no_proxy="}
	}
	modes := []struct {
		name  string
		env   func(t *testing.T) []string
		http2 bool
	}{
		{"direct", direct, false},
		{"via tinyproxy", viaTinyproxy, false},
		{"direct over HTTP2", direct, true},
		{"via tinyproxy over HTTP2", viaTinyproxy, true},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			r.env, r.http2 = m.env(t), m.http2
			sessions := strings.Count(r.box.Log.String(), "proto=HTTP/2")
			if out := r.run(t, "ssh", r.dest(), "echo logged in as $(id -un)"); !strings.Contains(out, "logged in as") {
				t.Fatalf("ssh login: %q", out)
			}
			remote := filepath.Join(t.TempDir(), "remote.bin")
			start := time.Now()
			r.run(t, "scp", "-q", local, r.dest()+":"+remote)
			t.Logf("scp up %d MiB: %v", size>>20, time.Since(start))
			if got := fileSum(t, remote); got != sum {
				t.Fatalf("scp up: SHA-256 %x, want %x", got, sum)
			}
			back := filepath.Join(t.TempDir(), "back.bin")
			start = time.Now()
			r.run(t, "scp", "-q", r.dest()+":"+remote, back)
			t.Logf("scp down %d MiB: %v", size>>20, time.Since(start))
			if got := fileSum(t, back); got != sum {
				t.Fatalf("scp down: SHA-256 %x, want %x", got, sum)
			}

			sdir := t.TempDir()
			batch := filepath.Join(t.TempDir(), "batch")
			writeFile(t, batch, fmt.Appendf(nil, "put %s %s/up.bin\nget %s/up.bin %s/down.bin\nls %s\n", small, sdir, sdir, sdir, sdir))
			start = time.Now()
			if out := r.run(t, "sftp", "-b", batch, r.dest()); !strings.Contains(out, "up.bin") {
				t.Fatalf("sftp ls did not list the upload:\n%s", out)
			}
			if fileSum(t, filepath.Join(sdir, "up.bin")) != smallSum || fileSum(t, filepath.Join(sdir, "down.bin")) != smallSum {
				t.Fatal("sftp put/get changed the file")
			}

			t.Logf("sftp: %v", time.Since(start))
			start = time.Now()
			testLocalForward(t, r, web)
			t.Logf("ssh -L: %v", time.Since(start))
			if h2 := strings.Count(r.box.Log.String(), "proto=HTTP/2") - sessions; (h2 > 0) != m.http2 {
				t.Errorf("%d sessions over HTTP/2, want them all over %s", h2, map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[m.http2])
			}
		})
	}
}

// testLocalForward runs ssh -L to web and fetches a page through it.
func testLocalForward(t *testing.T, r *sshRig, web string) {
	t.Helper()
	port, stop := startLocalForward(t, r, web)
	defer stop()
	// No keep-alive: ssh waits for forwarded connections to close.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("through ssh -L: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello through ssh -L" {
		t.Fatalf("through ssh -L: %q", body)
	}
}

// startLocalForward starts ssh -L from a free local port to web and
// returns the port once the forward is up, and a func that ends ssh. The
// port is picked free and then bound by ssh, so another program may take
// it in between: ssh then says "Address already in use" and, as seen with
// Debian's OpenSSH despite ExitOnForwardFailure, goes on with the session
// without the forward. It is started again on another port.
func startLocalForward(t *testing.T, r *sshRig, web string) (int, func()) {
	t.Helper()
	for try := 1; ; try++ {
		port := freePort(t)
		// Local forwards listen before the remote command runs, so "ready"
		// means the forward is up.
		cmd := r.command("ssh", "-o", "ExitOnForwardFailure=yes", "-L", fmt.Sprintf("127.0.0.1:%d:%s", port, web), r.dest(), "echo ready; exec cat")
		out := &syncbuf.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		stdin, _ := cmd.StdinPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() { stdin.Close(); <-exited }
		// ssh sets up local forwards before it opens the session: by
		// "ready", it has said whether it could listen.
		ready := out.WaitFor("ready", 20*time.Second, exited)
		taken := strings.Contains(out.String(), "Address already in use")
		if ready && !taken {
			return port, stop
		}
		stop()
		if try == 3 || !taken {
			t.Fatalf("ssh -L did not start:\n%s", out.String())
		}
		t.Logf("ssh -L could not listen on port %d, trying another:\n%s", port, out.String())
	}
}

// TestIdleSessionSurvivesProxyTimeout idles an ssh session three times as
// long as tinyproxy's idle timeout: pings keep it; without them it is cut
// and the error says so.
func TestIdleSessionSurvivesProxyTimeout(t *testing.T) {
	r := newSSHRig(t)
	tp := startTinyproxy(t, 2)
	r.env = []string{"HTTPS_PROXY=http://user:pass@" + tp.Addr, "https_proxy=", "NO_PROXY=", "no_proxy="}

	r.ping = "500ms"
	if out := r.run(t, "ssh", r.dest(), "sleep 6; echo still alive"); !strings.Contains(out, "still alive") {
		t.Fatalf("idle session with pings: %q", out)
	}

	r.ping = "0" // no pings: the proxy cuts the idle session
	out, err := r.command("ssh", r.dest(), "sleep 6; echo still alive").CombinedOutput()
	if err == nil || strings.Contains(string(out), "still alive") {
		t.Fatalf("the session survived the proxy's idle timeout without pings, so the test proves nothing: %q", out)
	}
	if !strings.Contains(string(out), "oneport connect:") {
		t.Errorf("ssh did not show oneport connect's reason:\n%s", out)
	}
}

// TestConnectErrorsNameTheHop runs the built client against each failure
// and wants a non-zero exit with the hop in its message, as ssh shows it.
func TestConnectErrorsNameTheHop(t *testing.T) {
	bin := oneportBin(t)
	echo := echoServer(t)
	up := startBox(t, "127.0.0.1:0", t.TempDir(), "--ssh", echo, "--tunnel-target", echo)
	down := startBox(t, "127.0.0.1:0", t.TempDir(), "--ssh", "127.0.0.1:1")
	known := filepath.Join(t.TempDir(), "known_hosts")
	cases := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"sshd down", []string{"https://" + down.Addr}, nil, []string{"target:", "502", "unreachable"}},
		{"target not allowed", []string{"-L", "0:127.0.0.1:9", "https://" + up.Addr}, nil, []string{"target:", "403"}},
		{"nothing listens", []string{"http://127.0.0.1:1"}, nil, []string{"connect:", "refused"}},
		{"proxy down", []string{"--proxy", "http://127.0.0.1:1", "https://" + up.Addr}, nil, []string{"proxy:", "cannot reach proxy"}},
		{"bad URL", []string{"ftp://x"}, nil, []string{"want https://"}},
	}
	if _, err := exec.LookPath("tinyproxy"); err == nil {
		tp := startTinyproxy(t, 60)
		cases = append(cases, struct {
			name string
			args []string
			env  []string
			want []string
		}{"proxy refuses the password", []string{"https://" + up.Addr}, []string{"HTTPS_PROXY=http://user:wrong@" + tp.Addr},
			[]string{"proxy:", "refused CONNECT", "Unauthorized", "user:password"}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"connect", "--known-hosts", known}, c.args...)...)
			cmd.Env = append(os.Environ(), append([]string{"HTTPS_PROXY=", "https_proxy=", "NO_PROXY=", "no_proxy="}, c.env...)...)
			out, err := cmd.CombinedOutput()
			if err == nil || !contains(string(out), c.want...) {
				t.Fatalf("err %v, output %q; want non-zero exit and %q", err, out, c.want)
			}
		})
	}
}

// TestConnectLocalForward forwards a local port to an allow-listed target
// with the built client.
func TestConnectLocalForward(t *testing.T) {
	bin := oneportBin(t)
	echo := echoServer(t)
	b := startBox(t, "127.0.0.1:0", t.TempDir(), "--ssh", "127.0.0.1:1", "--tunnel-target", echo)
	cmd := exec.Command(bin, "connect", "--known-hosts", filepath.Join(t.TempDir(), "kh"), "-L", "127.0.0.1:0:"+echo, "https://"+b.Addr)
	cmd.Env = append(os.Environ(), "HTTPS_PROXY=", "https_proxy=")
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	if !out.WaitFor(" to "+echo, 10*time.Second, exited) {
		t.Fatalf("no forwarding line:\n%s", out.String())
	}
	line := lineWith(out.String(), "forwarding ")
	addr := strings.Fields(line[strings.Index(line, "forwarding "):])[1]
	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("forwarded %d\n", i)
		fmt.Fprint(c, msg)
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || got != msg {
			t.Fatalf("got %q, %v; want %q", got, err, msg)
		}
	}
}

func TestSSHConfigStanza(t *testing.T) {
	bin := oneportBin(t)
	out, err := exec.Command(bin, "connect", "--ssh-config", "gpu", "--proxy", "http://proxy:3128", "--http2", "https://box.example:2222").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{"Host gpu\n", "ProxyCommand " + bin + " connect --http2 --proxy http://proxy:3128 https://box.example:2222\n", "HostKeyAlias gpu"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("stanza lacks %q:\n%s", want, out)
		}
	}
}

func writeRandom(t testing.TB, path string, n int64) [32]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	src := rand.NewChaCha8([32]byte{1})
	if _, err := io.CopyN(io.MultiWriter(f, h), src, n); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func fileSum(t testing.TB, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return [32]byte(h.Sum(nil))
}

func helloServer(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello through ssh -L")
	})}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}
