// Package standin runs small FastAPI apps under uvicorn that answer like
// vLLM, Text Embeddings Inference and Ollama, for tests of discovery. They
// are real processes on real loopback sockets, found the way a user's
// servers are.
//
// A scan sees every server on the box, among them the stand-ins of any
// other test run going on at the same time, which serve the same model
// names. A test that asserts on what a scan found skips Foreign
// listeners, so that it sees its own stand-ins alone.
package standin

import (
	"embed"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/discover"
)

//go:embed testdata/*.py
var apps embed.FS

// Python is the interpreter with Debian's python3-fastapi and
// python3-uvicorn.
const Python = "/usr/bin/python3"

// Require skips t unless python3 with fastapi and uvicorn is installed.
func Require(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Python); err != nil {
		t.Skipf("%s not installed (Debian python3, python3-fastapi, python3-uvicorn): stand-in model servers cannot run", Python)
	}
	if err := exec.Command(Python, "-c", "import fastapi, uvicorn").Run(); err != nil {
		t.Skip("python3-fastapi and python3-uvicorn are not installed: stand-in model servers cannot run")
	}
}

// started holds the PIDs of this process's stand-ins that have not
// exited yet.
var started = struct {
	sync.Mutex
	pids map[int]bool
}{pids: map[int]bool{}}

// Foreign reports whether l is owned by anything but a running stand-in
// that this process started with Start or StartAll: another test run's
// stand-ins, StartOther's, a user's servers, a listener whose owner /proc
// did not tell. As a discover.Scanner's Skip it limits the scan to this
// process's own stand-ins.
func Foreign(l discover.Listener) bool {
	started.Lock()
	defer started.Unlock()
	return l.PID == 0 || !started.pids[l.PID]
}

// Server is a running stand-in.
type Server struct {
	// Addr is its loopback host:port; Port the port alone.
	Addr string
	Port int
	// PID is the uvicorn process.
	PID int

	cmd  *exec.Cmd
	once sync.Once
	done chan struct{}
}

// Start runs the stand-in app kind ("vllm", "tei" or "ollama") serving
// model (for ollama, a comma-separated list) on a fresh loopback port.
// The test makes the socket and hands it to uvicorn (--fd); Start returns
// once the app has answered a first request.
// The process is stopped when the test ends.
func Start(t testing.TB, kind, model string) *Server {
	t.Helper()
	s := launch(t, kind, model, true)
	s.waitReady(t)
	return s
}

// StartOther is Start for a stand-in that Foreign reports, as it does
// another test run's on the same box: the tests of that isolation use it.
func StartOther(t testing.TB, kind, model string) *Server {
	t.Helper()
	s := launch(t, kind, model, false)
	s.waitReady(t)
	return s
}

// Spec names a stand-in for StartAll: its kind and model(s), as Start
// takes them.
type Spec struct{ Kind, Model string }

// StartAll starts stand-ins at once and returns when all have answered:
// Python's start-up is the slow part, and they overlap.
func StartAll(t testing.TB, specs ...Spec) []*Server {
	t.Helper()
	out := make([]*Server, len(specs))
	for i, sp := range specs {
		out[i] = launch(t, sp.Kind, sp.Model, true)
	}
	for _, s := range out {
		s.waitReady(t)
	}
	return out
}

// launch starts a stand-in without waiting for it, one that Foreign does
// not report when own is true.
func launch(t testing.TB, kind, model string, own bool) *Server {
	t.Helper()
	src, err := apps.ReadFile("testdata/" + kind + ".py")
	if err != nil {
		t.Fatalf("stand-in %q: %v", kind, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, kind+".py"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(Python, "-m", "uvicorn", "--fd", "3", "--log-level", "warning", "--app-dir", dir, kind+":app")
	cmd.Env = append(os.Environ(), "STANDIN_MODEL="+model)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stand-in %s: %v", kind, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, PID: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	if own {
		started.Lock()
		started.pids[s.PID] = true
		started.Unlock()
	}
	go func() {
		cmd.Wait()
		started.Lock()
		delete(started.pids, s.PID)
		started.Unlock()
		close(s.done)
	}()
	t.Cleanup(s.Stop)
	return s
}

// waitReady waits for the app's first answer: the request sits in the
// socket's backlog until uvicorn has imported the app and accepts it.
func (s *Server) waitReady(t testing.TB) {
	t.Helper()
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Get("http://" + s.Addr + "/ready-check")
	if err != nil {
		t.Fatalf("stand-in on %s never answered: %v", s.Addr, err)
	}
	resp.Body.Close()
}

// Stop kills the stand-in and waits until it has exited, so its socket
// is closed when Stop returns.
func (s *Server) Stop() {
	s.once.Do(func() { s.cmd.Process.Kill() })
	<-s.done
}
