// Command oneport-bench measures oneport end to end, as it runs on a box:
// it builds oneport, starts it as its own process in front of backends it
// serves itself on loopback, and measures each figure through oneport and
// against the backend directly, in turns, in the same run. HAProxy and
// nginx, when installed, are measured beside it the same way. It prints
// the median of several runs, each path's ratio to the direct path, and
// oneport's targets.
//
//	go run ./cmd/oneport-bench [-runs 5] [-bulk 1024] [-idle 400] [-idle-many 2000] [-only ssh|http|idle|cost|tls]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
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
	idleMany     int
	idleRequests int
	only         string
	binary       string
	rateDur      time.Duration
	backend      string
	httpBackend  string
	httpsBackend string
	haproxy      bool
	nginx        *nginxBuild // nil: not measured
	tsv          bool
}

func main() {
	var o options
	var nginx bool
	flag.IntVar(&o.runs, "runs", 5, "runs of each measurement; medians are printed")
	flag.Int64Var(&o.bulkMiB, "bulk", 1024, "MiB per bulk transfer, each way")
	flag.IntVar(&o.idle, "idle", 400, "idle connections for the memory figures")
	flag.IntVar(&o.idleMany, "idle-many", 2000, "idle HTTP connections for the second memory figure (0: none)")
	flag.IntVar(&o.idleRequests, "idle-requests", 10000, "keep-alive requests each proxy serves before and while idle connections are held")
	flag.StringVar(&o.only, "only", "", "ssh, http, idle (http's idle memory alone), cost (of keys and model routing) or tls: run one group")
	flag.StringVar(&o.binary, "oneport", "", "oneport binary to measure (default: build ./cmd/oneport)")
	flag.DurationVar(&o.rateDur, "rate-time", 2*time.Second, "duration of each rate measurement")
	flag.StringVar(&o.backend, "serve-backend", "", "internal: serve the SSH-like backend on this address")
	flag.StringVar(&o.httpBackend, "serve-http", "", "internal: serve the HTTP backend on this address")
	flag.StringVar(&o.httpsBackend, "serve-https", "", "internal: serve the HTTPS backend on this address")
	flag.BoolVar(&o.haproxy, "haproxy", true, "also measure HAProxy as a reference when it is installed")
	flag.BoolVar(&nginx, "nginx", true, "also measure nginx as a reference when it is installed")
	flag.BoolVar(&o.tsv, "tsv", false, "print the table as tab-separated values")
	flag.Parse()
	if o.backend != "" {
		serveBackendProcess(o.backend, o.httpBackend, o.httpsBackend)
		return
	}
	if nginx {
		o.nginx = findNginx()
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "oneport-bench:", err)
		os.Exit(1)
	}
}

// Columns of the table: the direct path and the proxies.
const (
	colDirect = iota
	colOneport
	colHAProxy
	colNginx
	ncols
)

// vals holds one figure per column; NaN where it was not measured.
type vals [ncols]float64

func noVals() vals {
	var v vals
	for i := range v {
		v[i] = math.NaN()
	}
	return v
}

// row is one printed figure.
type row struct {
	name, unit string
	v          vals
	// higherIsBetter: a throughput, whose ratio is path over direct;
	// otherwise a time, whose ratio is direct over path. Either way a
	// ratio above 1 is better than direct.
	higherIsBetter bool
	// absolute: the figure has no ratio (CPU time, memory, added latency).
	absolute bool
	target   string
	ok       func(row) bool // the verdict on oneport; nil: none
	// paired: oneport's ratios from measurements taken back to back
	// with direct's; when set, oneport's ratio is their median, which a
	// shared machine's slow spells move less than a ratio of medians.
	paired []float64
}

func (r row) ratio(col int) float64 {
	if r.absolute {
		return math.NaN()
	}
	if col == colOneport && len(r.paired) > 0 {
		return loadtest.Median(r.paired)
	}
	if r.higherIsBetter {
		return r.v[col] / r.v[colDirect]
	}
	return r.v[colDirect] / r.v[col]
}

// tmpRoot holds every file the benchmark makes: the oneport binary it
// builds, state directories and the reference proxies' configuration. run
// removes it, also when the benchmark is interrupted.
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
	start := time.Now()
	var rows []row
	for _, g := range []struct {
		name    string
		figures func(string, options) ([]row, error)
		part    bool // a part of another group, run alone only when asked
	}{{"http", httpFigures, false}, {"idle", idleFigures, true}, {"cost", costFigures, false}, {"ssh", sshFigures, false}, {"tls", tlsFigures, false}} {
		if o.only != g.name && (o.only != "" || g.part) {
			continue
		}
		r, err := g.figures(bin, o)
		if err != nil {
			return fmt.Errorf("%s: %w", g.name, err)
		}
		rows = append(rows, r...)
	}
	printSetup(o)
	printTable(o, rows)
	fmt.Printf("\ntook %s\n", time.Since(start).Round(time.Second))
	return nil
}

// printSetup says what each proxy runs with, so the columns compare like
// with like.
func printSetup(o options) {
	fmt.Printf("oneport: one process, Go runtime with GOMAXPROCS=%s\n", envOr("GOMAXPROCS", fmt.Sprint(workers())))
	fmt.Println("  (default: one thread per CPU; heap target max(16 MiB, 2x live) unless GOGC is set)")
	if h, err := exec.LookPath("haproxy"); err == nil && o.haproxy {
		v, _ := exec.Command(h, "-v").Output()
		line, _, _ := strings.Cut(string(v), "\n")
		fmt.Printf("haproxy: %s: one process, nbthread %d, splice-auto; http: http-reuse always, option http-no-delay\n",
			strings.Fields(line + " ? ?")[2], workers())
	} else {
		fmt.Println("haproxy: not installed or -haproxy=false: column empty")
	}
	if o.nginx != nil {
		stream := "stream module for SSH"
		if !o.nginx.stream {
			stream = "no stream module: no SSH figures"
		}
		fmt.Printf("nginx: %s: master and worker_processes %d, upstream keepalive, HTTP/1.1 to the backend, "+
			"proxy_buffering off for /v1/chat/completions; %s\n", o.nginx.version, workers(), stream)
	} else {
		fmt.Println("nginx: not installed or -nginx=false: column empty")
	}
	fmt.Println("CPU and memory: each proxy's own processes (nginx: master and workers summed); direct: the backend's")
	fmt.Println()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func printTable(o options, rows []row) {
	var w io.Writer = os.Stdout
	if !o.tsv {
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		defer tw.Flush()
		w = tw
	}
	fmt.Fprintf(w, "figure (median of %d runs)\tdirect\toneport\tratio\ttarget\tverdict\thaproxy\tratio\tnginx\tratio\t\n", o.runs)
	for _, r := range rows {
		verdict := ""
		if r.ok != nil && !math.IsNaN(r.v[colOneport]) {
			verdict = map[bool]string{true: "met", false: "MISSED"}[r.ok(r)]
		}
		cells := []string{r.name + " (" + r.unit + ")", num(r.v[colDirect]), num(r.v[colOneport]), ratio(r, colOneport),
			r.target, verdict, num(r.v[colHAProxy]), ratio(r, colHAProxy), num(r.v[colNginx]), ratio(r, colNginx)}
		fmt.Fprintln(w, strings.Join(cells, "\t")+"\t")
	}
}

func num(x float64) string {
	switch {
	case math.IsNaN(x):
		return "-"
	case math.Abs(x) >= 1000:
		return fmt.Sprintf("%.0f", x)
	default:
		return fmt.Sprintf("%.1f", x)
	}
}

func ratio(r row, col int) string {
	x := r.ratio(col)
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", x)
}

// path is one way to the backend: directly or through a proxy.
type path struct {
	col  int
	addr string
	pids func() []int // the processes serving it
}

// startPaths starts oneport (with args) and the installed reference
// proxies in mode ("tcp" or "http") in front of backend, whose process is
// backendPID; stop ends them all.
func startPaths(bin string, o options, backend string, backendPID int, mode string, args ...string) ([]path, func(), error) {
	ps := []path{{col: colDirect, addr: backend, pids: func() []int { return []int{backendPID} }}}
	var started []*daemon
	stop := func() {
		for _, d := range started {
			d.stop()
		}
	}
	for col, start := range map[int]starter{
		colOneport: func() (*daemon, error) { return startOneport(bin, args...) },
		colHAProxy: func() (*daemon, error) { return haproxyStarter(o, backend, mode)() },
		colNginx:   func() (*daemon, error) { return startNginx(o.nginx, backend, mode) },
	} {
		d, err := start()
		if err != nil {
			stop()
			return nil, nil, err
		}
		if d != nil {
			started = append(started, d)
			ps = append(ps, path{col: col, addr: d.addr, pids: d.pids})
		}
	}
	return ps, stop, nil
}

func haproxyStarter(o options, backend, mode string) starter {
	return func() (*daemon, error) {
		if !o.haproxy {
			return nil, nil
		}
		return startHAProxy(backend, mode)
	}
}

// rotated returns ps starting at the (run mod len)th path, so no path is
// always measured first in a run.
func rotated(ps []path, run int) []path {
	k := run % len(ps)
	return append(append([]path(nil), ps[k:]...), ps[:k]...)
}

// samples collects one figure's measurements per column.
type samples [ncols][]float64

func (s *samples) add(col int, x float64) { s[col] = append(s[col], x) }

func (s *samples) medians() vals {
	v := noVals()
	for i, xs := range s {
		if len(xs) > 0 {
			v[i] = loadtest.Median(xs)
		}
	}
	return v
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

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
