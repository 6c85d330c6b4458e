package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/oneport/oneport/internal/loadtest"
)

// daemon is a running measured process: oneport, a backend, HAProxy or
// nginx.
type daemon struct {
	cmd  *exec.Cmd
	addr string
	dir  string // removed on stop, if set
	// children: the process's children do the work (nginx's workers), so
	// CPU time and memory are summed over it and them.
	children bool
}

// pids returns the process ids whose CPU time and memory are the
// daemon's: its own and, for nginx, its workers'.
func (d *daemon) pids() []int {
	pid := d.cmd.Process.Pid
	if !d.children {
		return []int{pid}
	}
	return append([]int{pid}, childrenOf(pid)...)
}

// childrenOf returns the processes whose parent is pid, found in /proc.
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// After the command name, which may hold spaces: state, then ppid.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
	if d.dir != "" {
		os.RemoveAll(d.dir)
	}
}

func startOneport(bin string, args ...string) (*daemon, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// State (the internal CA) goes to a directory removed on stop, and no
	// admin socket is made: the benchmark leaves nothing on the host.
	state, err := os.MkdirTemp(tmpRoot, "state")
	if err != nil {
		return nil, err
	}
	args = append([]string{"--listen", addr, "--admin-socket", "off", "--state-dir", state}, args...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = dieWithParent
	cmd.Stdout = io.Discard
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		os.RemoveAll(state)
		return nil, err
	}
	d := &daemon{cmd: cmd, addr: addr, dir: state}
	if err := waitListening(addr); err != nil {
		d.stop()
		return nil, fmt.Errorf("oneport: %w", err)
	}
	return d, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitListening(addr string) error {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
	}
}

// workers is how many threads (HAProxy) and worker processes (nginx) the
// reference proxies get: one per CPU, what oneport's Go runtime uses
// (GOMAXPROCS) unless told otherwise.
func workers() int { return runtime.NumCPU() }

// startHAProxy runs HAProxy in front of backend in mode ("tcp", with
// splicing, or "http", reusing backend connections as oneport and nginx
// do), as a reference measured in the same run; nil if it is not
// installed.
func startHAProxy(backend string, mode string) (*daemon, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, nil
	}
	dir, addr, err := proxyDir("haproxy")
	if err != nil {
		return nil, err
	}
	httpOpts := ""
	if mode == "http" {
		// http-reuse: the default (safe) sends each client connection's
		// first request over a new backend connection; oneport and nginx
		// pool them. http-no-delay: without it HAProxy holds an event
		// stream's chunks back for more (tens of ms), as nginx does
		// without proxy_buffering off.
		httpOpts = "  http-reuse always\n  option http-no-delay\n"
	}
	cfg := fmt.Sprintf(`global
  maxconn 4000
  nbthread %d
defaults
  mode %s
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  option splice-auto
%sfrontend f
  bind %s
  default_backend b
backend b
  server s %s
`, workers(), mode, httpOpts, addr, backend)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return startRef(exec.Command(bin, "-db", "-f", path), dir, addr, false)
}

// proxyDir makes a directory for a reference proxy's files and picks its
// listening address.
func proxyDir(name string) (dir, addr string, err error) {
	port, err := freePort()
	if err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp(tmpRoot, name)
	return dir, fmt.Sprintf("127.0.0.1:%d", port), err
}

// startRef starts a reference proxy's cmd and waits for it to listen on
// addr; what it says on stderr goes to a file in dir and is shown if it
// does not start.
func startRef(cmd *exec.Cmd, dir, addr string, children bool) (*daemon, error) {
	logPath := filepath.Join(dir, "stderr")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = dieWithParent
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	d := &daemon{cmd: cmd, addr: addr, dir: dir, children: children}
	if err := waitListening(addr); err != nil {
		said, _ := os.ReadFile(logPath)
		d.stop()
		return nil, fmt.Errorf("%s: %w\n%s", filepath.Base(cmd.Path), err, said)
	}
	return d, nil
}

// nginxBuild is what the installed nginx is and can do.
type nginxBuild struct {
	bin, version string
	// streamModule is the load_module line the stream module needs ("" if
	// it is built in); stream says whether it is there at all.
	streamModule string
	stream       bool
}

// findNginx returns the installed nginx, or nil.
func findNginx() *nginxBuild {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil
	}
	out, err := exec.Command(bin, "-V").CombinedOutput()
	if err != nil {
		return nil
	}
	n := &nginxBuild{bin: bin}
	if m := regexp.MustCompile(`nginx/(\S+)`).FindSubmatch(out); m != nil {
		n.version = string(m[1])
	}
	args := strings.Fields(string(out))
	modules := "/usr/lib/nginx/modules"
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--modules-path="); ok {
			modules = v
		}
	}
	for _, a := range args {
		switch a {
		case "--with-stream":
			n.stream = true
		case "--with-stream=dynamic":
			so := filepath.Join(modules, "ngx_stream_module.so")
			if _, err := os.Stat(so); err == nil {
				n.stream, n.streamModule = true, so
			}
		}
	}
	return n
}

// startNginx runs nginx in front of backend: in mode "http" as a reverse
// proxy keeping backend connections alive (HTTP/1.1; proxy_buffering off
// where event streams are served, so they pass at once; buffers in memory
// elsewhere, never in files), in mode "tcp" with its stream module.
// It returns nil when nginx, or for "tcp" its stream module, is not
// installed.
func startNginx(n *nginxBuild, backend, mode string) (*daemon, error) {
	if n == nil || mode == "tcp" && !n.stream {
		return nil, nil
	}
	dir, addr, err := proxyDir("nginx")
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	if mode == "tcp" && n.streamModule != "" {
		fmt.Fprintf(&b, "load_module %s;\n", n.streamModule)
	}
	fmt.Fprintf(&b, `daemon off;
master_process on;
worker_processes %d;
pid %s/nginx.pid;
error_log stderr warn;
events {
  worker_connections 4000;
}
`, workers(), dir)
	if mode == "tcp" {
		fmt.Fprintf(&b, `stream {
  server {
    listen %s;
    proxy_pass %s;
    proxy_timeout 1h;
    proxy_half_close on;
  }
}
`, addr, backend)
	} else {
		fmt.Fprintf(&b, `http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 1h;
  upstream b {
    server %[3]s;
    keepalive 64;
    keepalive_requests 100000000;
    keepalive_timeout 1h;
  }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_max_temp_file_size 0;
  server {
    listen %[2]s;
    location / {
      proxy_pass http://b;
    }
    location /v1/chat/completions {
      proxy_pass http://b;
      proxy_buffering off;
    }
  }
}
`, dir, addr, backend)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	return startRef(exec.Command(n.bin, "-e", "stderr", "-p", dir, "-c", path), dir, addr, true)
}

// procCPU returns the CPU time (user and system) pid has used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which may hold spaces: utime and
	// stime are the 12th and 13th, in clock ticks (100 per second), summed
	// over the process's threads.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// sumCPU is procCPU summed over pids.
func sumCPU(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, p := range pids {
		c, err := procCPU(p)
		if err != nil {
			return 0, err
		}
		sum += c
	}
	return sum, nil
}

// sumPSS is the proportional set size of pids together, in bytes:
// pages they share are counted once.
func sumPSS(pids []int) (int64, error) {
	var sum int64
	for _, p := range pids {
		n, err := loadtest.PSS(p)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// cpuPerOp runs measure, which returns operations per second, and also
// returns the CPU time pids used per operation, in µs.
func cpuPerOp(pids []int, measure func() (float64, error)) (rate, cpu float64, err error) {
	before, err := sumCPU(pids)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	rate, err = measure()
	if err != nil {
		return 0, 0, err
	}
	after, err := sumCPU(pids)
	if err != nil {
		return 0, 0, err
	}
	ops := rate * time.Since(start).Seconds()
	return rate, us(after-before) / ops, nil
}

// starter starts a fresh proxy; nil, nil when it is not installed.
type starter func() (*daemon, error)

// idleCost is how one kind of idle connection is made and what traffic
// a proxy serves around it.
type idleCost struct {
	open func(addr string) (net.Conn, error)
	// traffic, if set, is served before the baseline and again while the
	// idle connections are held: the memory of a long-running proxy is
	// sized by its traffic (heap growth, pools, the garbage collector's
	// target), and what holding idle connections adds to that is the
	// figure, including a larger heap target from their live memory.
	traffic func(addr string) error
}

// idleMemory starts a fresh proxy with start for each run, measures what
// n idle connections add to its PSS (over all its processes) and returns
// the median per connection, in bytes; NaN if the proxy is not
// installed. The same method serves every proxy: n connections are
// opened and closed once and the traffic served, so first-use costs and
// what a burst of n requests leaves in pools are paid before the
// baseline; then PSS after a pause, n connections held, the traffic
// again, PSS after another pause.
func idleMemory(start starter, n, runs int, cost idleCost) (float64, error) {
	var per []float64
	for range runs {
		d, err := start()
		if err != nil {
			return 0, err
		}
		if d == nil {
			return math.NaN(), nil
		}
		grew, err := idleGrowth(d, n, cost)
		d.stop()
		if err != nil {
			return 0, err
		}
		per = append(per, float64(grew)/float64(n))
	}
	return loadtest.Median(per), nil
}

func idleGrowth(d *daemon, n int, cost idleCost) (int64, error) {
	warm, err := openIdle(d.addr, n, cost.open)
	closeAll(warm)
	if err != nil {
		return 0, err
	}
	if err := serveTraffic(d.addr, cost); err != nil {
		return 0, err
	}
	time.Sleep(500 * time.Millisecond)
	before, err := sumPSS(d.pids())
	if err != nil {
		return 0, err
	}
	conns, err := openIdle(d.addr, n, cost.open)
	defer closeAll(conns)
	if err != nil {
		return 0, err
	}
	if err := serveTraffic(d.addr, cost); err != nil {
		return 0, err
	}
	time.Sleep(time.Second)
	after, err := sumPSS(d.pids())
	return after - before, err
}

func serveTraffic(addr string, cost idleCost) error {
	if cost.traffic == nil {
		return nil
	}
	return cost.traffic(addr)
}

// openIdle opens n connections to addr with open; on an error it returns
// those opened so far.
func openIdle(addr string, n int, open func(string) (net.Conn, error)) ([]net.Conn, error) {
	var conns []net.Conn
	for range n {
		c, err := open(addr)
		if err != nil {
			return conns, fmt.Errorf("open idle connection %d: %w", len(conns), err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}
