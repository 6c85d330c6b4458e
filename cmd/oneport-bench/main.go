// Command oneport-bench measures oneport end to end, as it runs on a box:
// it builds oneport, starts it as its own process in front of backends it
// serves itself on loopback, and measures each figure through oneport and
// against the backend directly, in turns, in the same run. It prints the
// median of several runs and the ratio to the direct path.
//
//	go run ./cmd/oneport-bench [-runs 5] [-bulk 1024] [-idle 400] [-only ssh|http|tls]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/oneport/oneport/internal/loadtest"
)

type options struct {
	runs         int
	bulkMiB      int64
	idle         int
	only         string
	binary       string
	rateDur      time.Duration
	backend      string
	httpBackend  string
	httpsBackend string
	haproxy      bool
}

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 5, "runs of each measurement; medians are printed")
	flag.Int64Var(&o.bulkMiB, "bulk", 1024, "MiB per bulk transfer, each way")
	flag.IntVar(&o.idle, "idle", 400, "idle connections for the memory figure")
	flag.StringVar(&o.only, "only", "", "ssh, http or tls: run one group")
	flag.StringVar(&o.binary, "oneport", "", "oneport binary to measure (default: build ./cmd/oneport)")
	flag.DurationVar(&o.rateDur, "rate-time", 2*time.Second, "duration of each rate measurement")
	flag.StringVar(&o.backend, "serve-backend", "", "internal: serve the SSH-like backend on this address")
	flag.StringVar(&o.httpBackend, "serve-http", "", "internal: serve the HTTP backend on this address")
	flag.StringVar(&o.httpsBackend, "serve-https", "", "internal: serve the HTTPS backend on this address")
	flag.BoolVar(&o.haproxy, "haproxy", true, "also measure HAProxy as a reference when it is installed")
	flag.Parse()
	if o.backend != "" {
		serveBackendProcess(o.backend, o.httpBackend, o.httpsBackend)
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "oneport-bench:", err)
		os.Exit(1)
	}
}

// row is one printed figure: vals holds direct, oneport and, when
// measured, HAProxy.
type row struct {
	name, unit      string
	vals            []float64
	higherIsBetter  bool
	onlyProxies     bool // vals[0] is meaningless
	target, verdict string
}

// ratio is path i's figure relative to direct: throughput over direct
// throughput, or direct time over path time.
func (r row) ratio(i int) float64 {
	if r.higherIsBetter {
		return r.vals[i] / r.vals[0]
	}
	return r.vals[0] / r.vals[i]
}

// tmpRoot holds every file the benchmark makes: the oneport binary it
// builds, state directories and HAProxy's configuration. run removes it,
// also when the benchmark is interrupted.
var tmpRoot string

func run(o options) error {
	var err error
	if tmpRoot, err = os.MkdirTemp("", "oneport-bench"); err != nil {
		return err
	}
	defer os.RemoveAll(tmpRoot)
	// An interrupted benchmark exits here; its processes get SIGTERM as it
	// dies (dieWithParent).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt, syscall.SIGHUP)
	go func() {
		s := <-sig
		os.RemoveAll(tmpRoot)
		fmt.Fprintln(os.Stderr, "oneport-bench:", s)
		os.Exit(1)
	}()
	bin := o.binary
	if bin == "" {
		bin = filepath.Join(tmpRoot, "oneport")
		build := exec.Command("go", "build", "-o", bin, "github.com/oneport/oneport/cmd/oneport")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build oneport: %w", err)
		}
	}
	var rows []row
	if o.only == "" || o.only == "http" {
		r, err := httpFigures(bin, o)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	if o.only == "" || o.only == "tls" {
		r, err := tlsFigures(bin, o)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	if o.only == "" || o.only == "ssh" {
		r, err := sshFigures(bin, o)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "figure (median of %d runs)\tdirect\toneport\tratio\ttarget\t\thaproxy\tratio\t\n", o.runs)
	for _, r := range rows {
		cell := func(i int) (string, string) {
			if i >= len(r.vals) {
				return "", ""
			}
			if r.onlyProxies || r.target == "" && !r.higherIsBetter && strings.Contains(r.name, "added") {
				return fmt.Sprintf("%.1f", r.vals[i]), "-"
			}
			return fmt.Sprintf("%.1f", r.vals[i]), fmt.Sprintf("%.2fx", r.ratio(i))
		}
		d := fmt.Sprintf("%.1f", r.vals[0])
		if r.onlyProxies {
			d = "-"
		}
		ov, or := cell(1)
		hv, hr := cell(2)
		fmt.Fprintf(w, "%s (%s)\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.name, r.unit, d, ov, or, r.target, r.verdict, hv, hr)
	}
	return w.Flush()
}

// daemon is a running oneport process.
type daemon struct {
	cmd  *exec.Cmd
	addr string
	dir  string // removed on stop, if set
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

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// backends are the backend process's addresses and process id.
type backends struct {
	ssh, http, https string
	pid              int
	stop             func()
}

// startBackends runs the backends (SSH-like, HTTP, HTTPS) in a process of
// their own, as sshd and model servers are: a client, oneport and sshd are
// three processes on a real box, and a backend inside the measuring
// process would make the direct path look faster than it is.
func startBackends() (*backends, error) {
	var addrs [3]string
	for i := range addrs {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", port)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve-backend", addrs[0], "-serve-http", addrs[1], "-serve-https", addrs[2])
	cmd.SysProcAttr = dieWithParent
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, addr: addrs[0]}
	for _, a := range addrs {
		if err := waitListening(a); err != nil {
			d.stop()
			return nil, err
		}
	}
	return &backends{ssh: addrs[0], http: addrs[1], https: addrs[2], pid: cmd.Process.Pid, stop: d.stop}, nil
}

func serveBackendProcess(sshAddr, httpAddr, httpsAddr string) {
	ln, err := net.Listen("tcp", sshAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
	stop := loadtest.Serve(ln, loadtest.SSHLike)
	hs := &http.Server{Addr: httpAddr, Handler: loadtest.ModelServer()}
	go hs.ListenAndServe()
	if httpsAddr != "" {
		stopTLS, err := serveTLSBackend(httpsAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "backend:", err)
			os.Exit(1)
		}
		defer stopTLS()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	hs.Close()
	stop()
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

// startHAProxy runs HAProxy in TCP mode with splicing in front of backend,
// as a reference measured in the same run; nil if it is not installed.
func startHAProxy(backend string, mode string) (*daemon, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, nil
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmpRoot, "haproxy")
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`global
  maxconn 4000
  nbthread %d
defaults
  mode %s
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  option splice-auto
frontend f
  bind %s
  default_backend b
backend b
  server s %s
`, runtime.NumCPU(), mode, addr, backend)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.SysProcAttr = dieWithParent
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	d := &daemon{cmd: cmd, addr: addr, dir: dir}
	if err := waitListening(addr); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// paths are the addresses measured in turns: the backend itself, oneport,
// and HAProxy when it is installed.
type paths struct {
	direct, oneport, haproxy string
	pids                     []int // of the process serving each path in list(): backend, oneport, HAProxy
}

func (p paths) list() []string {
	l := []string{p.direct, p.oneport}
	if p.haproxy != "" {
		l = append(l, p.haproxy)
	}
	return l
}

// procCPU returns the CPU time (user and system) pid has used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which may hold spaces: utime and
	// stime are the 12th and 13th, in clock ticks (100 per second).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// cpuPerOp runs measure, which returns operations per second over dur,
// and also returns the CPU time pid used per operation, in µs.
func cpuPerOp(pid int, dur time.Duration, measure func() (float64, error)) (rate, cpu float64, err error) {
	before, err := procCPU(pid)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	rate, err = measure()
	if err != nil {
		return 0, 0, err
	}
	after, err := procCPU(pid)
	if err != nil {
		return 0, 0, err
	}
	ops := rate * time.Since(start).Seconds()
	return rate, us(after-before) / ops, nil
}

func sshFigures(bin string, o options) ([]row, error) {
	b, err := startBackends()
	if err != nil {
		return nil, err
	}
	defer b.stop()
	backend := b.ssh
	p, stopPaths, err := startPaths(bin, o, backend, b.pid, "tcp", "--ssh", backend)
	if err != nil {
		return nil, err
	}
	defer stopPaths()
	addrs := p.list()
	n := len(addrs)
	lat50, lat99, rate, cpu, up, down := perPath(n), perPath(n), perPath(n), perPath(n), perPath(n), perPath(n)
	for range o.runs {
		// Connect + banner latency, sequential, each path in turn.
		ds := make([][]time.Duration, n)
		for range 1000 {
			for i, a := range addrs {
				t, err := loadtest.ConnectBanner(a)
				if err != nil {
					return nil, err
				}
				ds[i] = append(ds[i], t)
			}
		}
		for i := range addrs {
			lat50[i] = append(lat50[i], us(loadtest.Percentile(ds[i], 50)))
			lat99[i] = append(lat99[i], us(loadtest.Percentile(ds[i], 99)))
		}
		for i, a := range addrs {
			r, c, err := cpuPerOp(p.pids[i], o.rateDur, func() (float64, error) { return connectRate(a, o.rateDur) })
			if err != nil {
				return nil, err
			}
			rate[i], cpu[i] = append(rate[i], r), append(cpu[i], c)
		}
		bytes := o.bulkMiB << 20
		for i, a := range addrs {
			tu, err := loadtest.Upload(a, bytes)
			if err != nil {
				return nil, err
			}
			td, err := loadtest.Download(a, bytes)
			if err != nil {
				return nil, err
			}
			up[i] = append(up[i], float64(bytes)/tu.Seconds()/(1<<20))
			down[i] = append(down[i], float64(bytes)/td.Seconds()/(1<<20))
		}
	}
	mem, err := idleMemory(bin, backend, o.idle, o.runs, sshIdle)
	if err != nil {
		return nil, err
	}
	l50, l99 := medians(lat50), medians(lat99)
	added := func(i int) float64 { return l50[i] - l50[0] }
	rows := []row{
		fig("ssh connect+banner p50", "µs", l50, false, "", nil),
		fig("ssh connect+banner p99", "µs", l99, false, "", nil),
		{name: "ssh added latency p50", unit: "µs", vals: addedVals(l50, added), onlyProxies: true,
			target: "< 60", verdict: verdict(added(1) < 60)},
		fig("ssh connect rate", "conn/s", medians(rate), true, ">= 0.85x", func(r float64) bool { return r >= 0.85 }),
		fig("ssh cpu per conn, own process", "µs", medians(cpu), false, "", nil),
		fig("ssh bulk upload", "MiB/s", medians(up), true, ">= 0.45x", func(r float64) bool { return r >= 0.45 }),
		fig("ssh bulk download", "MiB/s", medians(down), true, ">= 0.45x", func(r float64) bool { return r >= 0.45 }),
		{name: "memory per idle ssh conn", unit: "KiB PSS", vals: []float64{0, mem / 1024}, onlyProxies: true,
			target: "<= 16", verdict: verdict(mem/1024 <= 16)},
	}
	return rows, nil
}

// startPaths starts oneport with args in front of backend and, when asked
// and installed, HAProxy in mode ("tcp" or "http"); stop ends both.
func startPaths(bin string, o options, backend string, backendPID int, mode string, args ...string) (paths, func(), error) {
	d, err := startOneport(bin, args...)
	if err != nil {
		return paths{}, nil, err
	}
	p := paths{direct: backend, oneport: d.addr, pids: []int{backendPID, d.cmd.Process.Pid}}
	stop := d.stop
	if o.haproxy {
		h, err := startHAProxy(backend, mode)
		if err != nil {
			d.stop()
			return paths{}, nil, err
		}
		if h != nil {
			p.haproxy = h.addr
			p.pids = append(p.pids, h.cmd.Process.Pid)
			stop = func() { h.stop(); d.stop() }
		}
	}
	return p, stop, nil
}

func perPath(n int) [][]float64 { return make([][]float64, n) }

func medians(xs [][]float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = loadtest.Median(x)
	}
	return out
}

func addedVals(l50 []float64, added func(int) float64) []float64 {
	out := []float64{0}
	for i := 1; i < len(l50); i++ {
		out = append(out, added(i))
	}
	return out
}

// fig builds a row whose ratio is oneport's figure to the direct one
// (inverted for times, so a ratio above 1 is always better than direct).
func fig(name, unit string, vals []float64, higherIsBetter bool, target string, ok func(float64) bool) row {
	r := row{name: name, unit: unit, vals: vals, higherIsBetter: higherIsBetter, target: target}
	if ok != nil {
		r.verdict = verdict(ok(r.ratio(1)))
	}
	return r
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// connectRate runs 4 clients doing ConnectBanner against addr for dur and
// returns connections per second.
func connectRate(addr string, dur time.Duration) (float64, error) {
	rate, _, err := runWorkers(4, dur, func() error {
		_, err := loadtest.ConnectBanner(addr)
		return err
	})
	return rate, err
}

// runWorkers runs op in n goroutines for dur and returns completed ops per
// second and each op's latency; the first error stops everything.
func runWorkers(n int, dur time.Duration, op func() error) (float64, []time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var mu sync.Mutex
	var lats []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				if err := op(); err != nil {
					mu.Lock()
					if firstErr == nil && ctx.Err() == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					break
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, nil, firstErr
	}
	return float64(len(lats)) / time.Since(start).Seconds(), lats, nil
}

// sshIdle opens one SSH-like connection through addr and leaves it idle
// after the banner exchange.
func sshIdle(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	io.WriteString(c, "SSH-2.0-idle\r\n")
	buf := make([]byte, len(loadtest.Banner))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// idleMemory starts a fresh oneport, opens n idle connections with open,
// and returns the median PSS growth per connection, in bytes.
func idleMemory(bin, backend string, n, runs int, open func(string) (net.Conn, error), args ...string) (float64, error) {
	var per []float64
	for range runs {
		if backend != "" {
			args = append([]string{"--ssh", backend}, args...)
		}
		d, err := startOneport(bin, args...)
		if err != nil {
			return 0, err
		}
		// Warm up: one connection, so the runtime's first-use costs are
		// not charged to the idle ones.
		if c, err := open(d.addr); err == nil {
			c.Close()
		}
		time.Sleep(500 * time.Millisecond)
		before, err := loadtest.PSS(d.cmd.Process.Pid)
		if err != nil {
			d.stop()
			return 0, err
		}
		var conns []net.Conn
		for range n {
			c, err := open(d.addr)
			if err != nil {
				d.stop()
				return 0, fmt.Errorf("open idle connection %d: %w", len(conns), err)
			}
			conns = append(conns, c)
		}
		time.Sleep(time.Second)
		after, err := loadtest.PSS(d.cmd.Process.Pid)
		for _, c := range conns {
			c.Close()
		}
		d.stop()
		if err != nil {
			return 0, err
		}
		per = append(per, float64(after-before)/float64(n))
	}
	return loadtest.Median(per), nil
}
