package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestEveryPathMeasured runs the whole benchmark once, briefly, and checks
// that each row has a figure for each path that is installed: the
// generated HAProxy and nginx configurations start and pass every kind of
// traffic. It checks no speed (that is the benchmark's own output).
func TestEveryPathMeasured(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads CPU time and memory from /proc")
	}
	if testing.Short() {
		t.Skip("runs oneport, HAProxy and nginx for about half a minute")
	}
	bin := filepath.Join(t.TempDir(), "oneport-bench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-runs", "1", "-rate-time", "100ms", "-bulk", "4", "-idle", "10", "-idle-many", "20", "-idle-requests", "200", "-tsv").CombinedOutput()
	if err != nil {
		t.Fatalf("oneport-bench: %v\n%s", err, out)
	}
	_, haproxyErr := exec.LookPath("haproxy")
	ngx := findNginx()
	if haproxyErr != nil || ngx == nil || !ngx.stream {
		t.Logf("HAProxy or nginx with its stream module not installed: their columns are not checked")
	}
	rows := 0
	seen := map[string]bool{}
	for line := range strings.SplitSeq(string(out), "\n") {
		c := strings.Split(line, "\t")
		if len(c) != 11 || strings.HasPrefix(c[0], "figure") {
			continue
		}
		rows++
		name := c[0]
		if seen[name] {
			t.Errorf("%s: measured twice", name)
		}
		seen[name] = true
		want := map[string]bool{"oneport": true}
		other := !strings.HasPrefix(name, "keys") && !strings.HasPrefix(name, "model routing") &&
			!strings.HasPrefix(name, "tls") && !strings.HasPrefix(name, "https")
		want["haproxy"] = other && haproxyErr == nil
		want["nginx"] = other && ngx != nil && (ngx.stream || !strings.Contains(name, "ssh"))
		for col, i := range map[string]int{"oneport": 2, "haproxy": 6, "nginx": 8} {
			if want[col] && c[i] == "-" {
				t.Errorf("%s: no %s figure\n%s", name, col, out)
			}
		}
		if strings.HasPrefix(name, "memory") && c[1] != "-" {
			t.Errorf("%s: a direct figure for a proxy-only row", name)
		}
	}
	if rows < 25 {
		t.Errorf("%d rows, want every group's\n%s", rows, out)
	}
}

// A row with back-to-back pairs gives their median ratio for oneport, not
// the ratio of the columns' medians, which come from different pairs.
func TestPairedRatio(t *testing.T) {
	r := row{higherIsBetter: true, v: noVals(), paired: []float64{0.97, 1.02, 0.5, 0.93}}
	r.v[colDirect], r.v[colOneport] = 10000, 8000
	if got := r.ratio(colOneport); got != 0.95 {
		t.Errorf("paired ratio %v, want the median 0.95 (the middle two's mean)", got)
	}
	r.paired = nil
	if got := r.ratio(colOneport); got != 0.8 {
		t.Errorf("ratio %v, want 8000/10000", got)
	}
}
