//go:build linux

package discover_test

import (
	"bufio"
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/discover"
)

// A real Jupyter Notebook, when installed (Debian jupyter-notebook), is
// recognised as jupyter.
func TestScanFindsJupyter(t *testing.T) {
	bin, err := exec.LookPath("jupyter-notebook")
	if err != nil {
		t.Skip("jupyter-notebook not installed (Debian jupyter-notebook, optional): Jupyter recognition not checked against the real thing")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // Jupyter binds the port itself; --port-retries=0 makes a lost race an error, not another port
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--no-browser", "--allow-root", "--ip=127.0.0.1", "--port="+strconv.Itoa(port),
		"--port-retries=0", "--NotebookApp.token=test-token", "--notebook-dir="+t.TempDir())
	cmd.Env = append(cmd.Environ(), "HOME="+t.TempDir(), "JUPYTER_RUNTIME_DIR="+t.TempDir())
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start jupyter: %v", err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	running := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "is running at") {
				once = true
				close(running)
			}
		}
	}()
	select {
	case <-running:
	case <-time.After(90 * time.Second):
		t.Fatal("jupyter did not say it is running within 90s")
	}
	sc := &discover.Scanner{ProbeTimeout: 5 * time.Second, Skip: func(l discover.Listener) bool { return int(l.Addr.Port()) != port }}
	snap, err := sc.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Servers) != 1 || snap.Servers[0].Kind != discover.KindJupyter {
		t.Fatalf("jupyter on %d: %+v", port, snap.Servers)
	}
	if r := discover.Routes(snap); len(r) != 1 || r[0].Path != "/jupyter/" {
		t.Errorf("routes %+v", r)
	}
	if strings.Contains(snap.Servers[0].Cmdline, "test-token") {
		t.Errorf("the token is in the listed command line: %s", snap.Servers[0].Cmdline)
	}
}
