package httproute_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// debianPython is Debian's interpreter, which the python3-* packages the
// real-client tests use are installed for (a python3 earlier in PATH, from
// pyenv or a virtualenv, may lack them).
const debianPython = "/usr/bin/python3"

// needPython skips t unless Debian's python3 imports every module.
func needPython(t *testing.T, pkgs string, modules ...string) {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		t.Skipf("skipped: %s not installed (apt-get install %s)", debianPython, pkgs)
	}
	if out, err := exec.Command(debianPython, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput(); err != nil {
		t.Skipf("skipped: python3 cannot import %v (apt-get install %s): %s", modules, pkgs, out)
	}
}

// serveOnFD runs cmd with a listener on 127.0.0.1:0 as its fd 3 and
// returns the address; the process is killed when the test ends. Its
// output is logged if the test fails.
func serveOnFD(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close() // the process holds the socket through f
	if err != nil {
		t.Fatal(err)
	}
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := bufio.NewScanner(out); s.Scan(); {
			lines = append(lines, s.Text())
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), strings.Join(lines, "\n"))
		}
	})
	return ln.Addr().String()
}

// curl --http2 on plain http offers "Upgrade: h2c"; uvicorn refuses a
// request carrying it. Through oneport the FastAPI app answers.
func TestFastAPIUnderUvicornAnswersCurlHTTP2(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("skipped: curl not installed (apt-get install curl)")
	}
	needPython(t, "python3-fastapi python3-uvicorn", "fastapi", "uvicorn")
	app := serveOnFD(t, exec.CommandContext(t.Context(), debianPython, "-m", "uvicorn", "--fd", "3",
		"--app-dir", "testdata", "fastapi_app:app"))
	forEachEngine(t, func(t *testing.T, engine string) {
		addr := startProxy(t, engine, nil, route("/api/="+app))
		out, err := exec.CommandContext(t.Context(), curl, "-sS", "--http2", "--max-time", "10",
			"-w", "\n%{http_code}", "http://"+addr+"/api/hello").CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"hello":"from fastapi"`) || !strings.HasSuffix(string(out), "\n200") {
			t.Fatalf("curl --http2: %v\n%s", err, out)
		}
	})
}
