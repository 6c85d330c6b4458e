package tunnel_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/daemon"
	"github.com/oneport/oneport/internal/discover/standin"
	"github.com/oneport/oneport/internal/syncbuf"
	"github.com/oneport/oneport/mux"
)

var testDir string

// TestMain keeps the oneports the tests start, and the binary they build,
// in a directory of their own.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oneport-tunnel-test")
	if err != nil {
		panic(err)
	}
	testDir = dir
	os.Setenv("STATE_DIRECTORY", filepath.Join(dir, "state"))
	os.Setenv("RUNTIME_DIRECTORY", filepath.Join(dir, "run"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// box is an in-process oneport.
type box struct {
	Addr     string // 127.0.0.1:PORT
	StateDir string
	Log      *syncbuf.Buffer
	stop     func()
	reload   chan struct{}
}

// Reload reads the command line and config file again, as SIGHUP does,
// and returns once it is applied: the daemon's loop takes the second
// send only after the first reload is done (the second reapplies the
// same configuration).
func (b *box) Reload() {
	b.reload <- struct{}{}
	b.reload <- struct{}{}
}

// startBox serves oneport with args on addr ("127.0.0.1:0" for any port)
// and state dir stateDir, until the test ends or stop.
func startBox(t testing.TB, addr, stateDir string, args ...string) *box {
	t.Helper()
	args = append([]string{"--admin-socket", "off", "--state-dir", stateDir}, args...)
	load := func() (*config.Config, *config.Resolved, error) {
		cfg, err := config.ParseFlags(args)
		if err != nil {
			return nil, nil, err
		}
		res, err := cfg.Validate()
		return cfg, res, err
	}
	cfg, res, err := load()
	if err != nil {
		t.Fatal(err)
	}
	reload := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := mux.Listen(ctx, "tcp", addr)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	done := make(chan error, 1)
	go func() {
		done <- daemon.Serve(ctx, cfg, res, log, daemon.Options{Listener: ln, Notify: func(string) {}, Load: load, Reload: reload,
			DiscoverSkip: standin.Foreign})
	}()
	b := &box{Addr: ln.Addr().String(), StateDir: stateDir, Log: logs, reload: reload}
	var once sync.Once
	b.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("oneport: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			t.Logf("oneport log:\n%s", logs.String())
		}
	})
	if !logs.WaitFor("oneport serving", 10*time.Second, nil) {
		t.Fatalf("oneport did not start:\n%s", logs.String())
	}
	return b
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// oneportBin builds cmd/oneport once per test binary, for ProxyCommand.
func oneportBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(testDir, "oneport")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/oneport/oneport/cmd/oneport").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// need skips the test, naming the program and its package, when it is
// not installed.
func need(t testing.TB, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Skipf("%s not installed (apt-get install %s): test skipped", prog, pkg)
	}
	return p
}

// tinyproxy is a real HTTP proxy on a loopback port.
type tinyproxy struct {
	Addr string
	Log  *syncbuf.Buffer
}

// startTinyproxy runs Debian's tinyproxy with its own config file: CONNECT
// to any port, Basic auth user:pass, and idle connections cut after
// timeout seconds. It stops when the test ends.
func startTinyproxy(t testing.TB, timeout int) *tinyproxy {
	t.Helper()
	bin := need(t, "tinyproxy", "tinyproxy")
	for try := 0; ; try++ {
		port := freePort(t)
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		conf := fmt.Sprintf("Port %d\nListen 127.0.0.1\nTimeout %d\nMaxClients 50\nLogLevel Info\n"+
			"Allow 127.0.0.1\nBasicAuth user pass\nDisableViaHeader Yes\n", port, timeout)
		if os.Geteuid() == 0 {
			conf += "User nobody\nGroup nogroup\n"
		}
		cfgPath := filepath.Join(dir, "tinyproxy.conf")
		if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		logs := &syncbuf.Buffer{}
		cmd := exec.Command(bin, "-d", "-c", cfgPath)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("start tinyproxy: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("tinyproxy log:\n%s", logs.String())
			}
		})
		if logs.WaitFor("listening on", 10*time.Second, exited) || logs.WaitFor("Listening on", time.Millisecond, exited) {
			return &tinyproxy{Addr: fmt.Sprintf("127.0.0.1:%d", port), Log: logs}
		}
		if try == 3 {
			t.Fatalf("tinyproxy did not start:\n%s", logs.String())
		}
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

// echoServer echoes every connection until the test ends.
func echoServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
