// Package sshtest starts SSH servers for tests: an in-process
// golang.org/x/crypto/ssh server, and a throwaway OpenSSH sshd on a
// loopback port when one is installed and the test runs as root.
package sshtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/loadtest"

	"github.com/oneport/oneport/internal/syncbuf"

	"golang.org/x/crypto/ssh"
)

// Server is an SSH server a test can log in to.
type Server struct {
	// Addr is the server's loopback host:port.
	Addr string
	// Client logs in to the server.
	Client *ssh.ClientConfig
	// User is the login name Client uses.
	User string
	// KeyFile holds Client's private key in OpenSSH format, for the ssh
	// command.
	KeyFile string
}

func newSigner(t testing.TB) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

// StartInProcess starts an x/crypto/ssh server on 127.0.0.1:0 that
// accepts the returned client's key and answers "exec" requests: "echo
// WORDS" prints WORDS and a newline, "cat" copies its input to its output
// until EOF. It stops when the test ends.
func StartInProcess(t testing.TB) *Server {
	t.Helper()
	hostKey, _ := newSigner(t)
	userKey, userPriv := newSigner(t)
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	writeKey(t, keyFile, userPriv)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), userKey.PublicKey().Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("unknown key")
		},
	}
	cfg.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(loadtest.Serve(ln, func(c net.Conn) { serveConn(c, cfg) }))
	return &Server{
		Addr:    ln.Addr().String(),
		User:    "test",
		KeyFile: keyFile,
		Client: &ssh.ClientConfig{
			User:            "test",
			Auth:            []ssh.AuthMethod{ssh.PublicKeys(userKey)},
			HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey()),
			Timeout:         10 * time.Second,
		},
	}
}

func serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go serveSession(ch, creqs)
	}
}

func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for r := range reqs {
		if r.Type != "exec" {
			r.Reply(false, nil)
			continue
		}
		var p struct{ Command string }
		ssh.Unmarshal(r.Payload, &p)
		if p.Command == "cat" {
			r.Reply(true, nil)
			io.Copy(ch, ch)
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
			return
		}
		words, ok := strings.CutPrefix(p.Command, "echo ")
		r.Reply(ok, nil)
		if !ok {
			return
		}
		fmt.Fprintln(ch, words)
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
		return
	}
}

// SSHDPath is where Debian's openssh-server installs sshd.
const SSHDPath = "/usr/sbin/sshd"

// StartSSHD starts a throwaway OpenSSH sshd on a free loopback port, with
// its own host key and an authorized key for the current user, and stops
// it when the test ends. It skips the test, saying why, when sshd is not
// installed or the test does not run as root.
func StartSSHD(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(SSHDPath); err != nil {
		t.Skipf("real sshd test skipped: %s not installed (apt-get install openssh-server)", SSHDPath)
	}
	if os.Geteuid() != 0 {
		t.Skip("real sshd test skipped: needs root to run a throwaway sshd")
	}
	ensurePrivsepDir(t)
	dir := t.TempDir()
	hostSigner, hostPriv := newSigner(t)
	userSigner, userPriv := newSigner(t)
	writeKey(t, filepath.Join(dir, "host_key"), hostPriv)
	writeKey(t, filepath.Join(dir, "id_ed25519"), userPriv)
	os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(userSigner.PublicKey()), 0o600)
	conf := fmt.Sprintf(`ListenAddress 127.0.0.1
HostKey %[1]s/host_key
AuthorizedKeysFile %[1]s/authorized_keys
PidFile none
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 1000
Subsystem sftp internal-sftp
`, dir)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var addr string
	for try := 0; ; try++ {
		// The port is picked, freed, then bound by sshd: another socket may
		// take it in between, so try a few.
		var err error
		if addr, err = startSSHD(t, cfgPath, freePort(t)); err == nil {
			break
		}
		if try == 5 {
			t.Fatal(err)
		}
	}
	user := os.Getenv("USER")
	if user == "" {
		user = "root"
	}
	return &Server{
		Addr:    addr,
		User:    user,
		KeyFile: filepath.Join(dir, "id_ed25519"),
		Client: &ssh.ClientConfig{
			User:            user,
			Auth:            []ssh.AuthMethod{ssh.PublicKeys(userSigner)},
			HostKeyCallback: ssh.FixedHostKey(hostSigner.PublicKey()),
			Timeout:         10 * time.Second,
		},
	}
}

// startSSHD runs sshd with cfgPath on port and waits until it listens; it
// is stopped when the test ends.
func startSSHD(t testing.TB, cfgPath string, port int) (string, error) {
	logs := &syncbuf.Buffer{}
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", cfgPath, "-p", fmt.Sprint(port))
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start sshd: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sshd log:\n%s", logs.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// sshd says so on stderr once its socket listens (LogLevel INFO).
	if !logs.WaitFor(fmt.Sprintf("Server listening on 127.0.0.1 port %d", port), 10*time.Second, exited) {
		select {
		case <-exited:
			return "", fmt.Errorf("sshd exited: %s", logs.String())
		default:
			return "", fmt.Errorf("sshd did not listen on %s:\n%s", addr, logs.String())
		}
	}
	return addr, nil
}

func writeKey(t testing.TB, path string, priv ed25519.PrivateKey) {
	t.Helper()
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// RunWithin is Run bounded by d: the connection's deadline ends the
// login and cmd once d has passed, with an error, rather than letting a
// test hang on a server that never answers.
func RunWithin(addr string, cfg *ssh.ClientConfig, cmd string, d time.Duration) (string, error) {
	nc, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return "", fmt.Errorf("dial %s: %w", addr, err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(d))
	cc, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		return "", fmt.Errorf("ssh login to %s within %v: %w", addr, d, err)
	}
	c := ssh.NewClient(cc, chans, reqs)
	defer c.Close()
	return output(c, cmd)
}

// Run logs in to addr with cfg, runs cmd and returns its output.
func Run(addr string, cfg *ssh.ClientConfig, cmd string) (string, error) {
	c, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		return "", fmt.Errorf("ssh dial %s: %w", addr, err)
	}
	defer c.Close()
	return output(c, cmd)
}

// output runs cmd in a new session of c and returns its output.
func output(c *ssh.Client, cmd string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", fmt.Errorf("ssh session: %w", err)
	}
	defer s.Close()
	out, err := s.Output(cmd)
	return string(out), err
}
