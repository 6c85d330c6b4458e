package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/httproute"
)

// debianPython returns a python3 that has FastAPI and uvicorn (Debian's
// python3-fastapi and python3-uvicorn), or skips the test.
func debianPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import fastapi, uvicorn").Run() == nil {
			return p
		}
	}
	t.Skip("python3 with fastapi and uvicorn not found: apt-get install python3-fastapi python3-uvicorn")
	return ""
}

// openaiNode returns the node program and the client folder with the
// openai package installed, or skips the test.
func openaiNode(t *testing.T) (string, string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: apt-get install nodejs npm, then npm ci --prefix httproute/gateway/testdata/client")
	}
	dir, _ := filepath.Abs("testdata/client")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		t.Skip("the openai npm package is not installed: npm ci --prefix httproute/gateway/testdata/client")
	}
	return node, dir
}

// standIn runs a model-server stand-in under uvicorn on a listener of
// the test's own (passed as fd 3, so it is ready before uvicorn is) and
// returns its URL.
func standIn(t *testing.T, python, app, model string) string {
	t.Helper()
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
	dir, _ := filepath.Abs("testdata/standins")
	cmd := exec.Command(python, "-m", "uvicorn", "--fd", "3", "--app-dir", dir, "--log-level", "warning", app+":app")
	cmd.Env = append(os.Environ(), "MODEL="+model)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return "http://" + ln.Addr().String()
}

// The official OpenAI SDK for Node against the gateway in front of
// stand-ins for vLLM, TEI and Ollama, served by httproute's Server.
func TestOpenAINodeSDK(t *testing.T) {
	python := debianPython(t)
	node, dir := openaiNode(t)
	vllm := standIn(t, python, "vllm", "llama-3")
	slow := standIn(t, python, "vllm", "slow-model")
	tei := standIn(t, python, "tei", "BAAI/bge-small-en-v1.5")
	ollama := standIn(t, python, "ollama", "qwen2.5:0.5b")
	g, err := New(Config{
		Upstreams: []Upstream{{Address: vllm}, {Address: tei}, {Address: ollama}, {Address: slow, MaxConcurrent: 1}},
		Models:    []Model{{Name: "llama-3", Aliases: []string{"gpt-4o-mini"}}},
		MaxQueue:  -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The stand-ins accept as soon as uvicorn has loaded the app.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(g.Models()) < 5 && ctx.Err() == nil {
		g.Refresh(ctx)
	}
	h, err := httproute.NewHandler([]httproute.Route{{Path: "/", Upstreams: []string{vllm}, Serve: g}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httproute.NewServer(h, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	cmd := exec.Command(node, filepath.Join(dir, "gateway.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BASE_URL=http://"+ln.Addr().String()+"/v1", "VLLM_URL="+vllm, "HOLD_URL="+slow)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var passed []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		passed = append(passed, strings.TrimPrefix(sc.Text(), "ok "))
	}
	io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node: %v after %v\n%s", err, passed, stderr.String())
	}
	want := "models chat-stream-alias-usage embeddings-tei chat-ollama unknown-model queue-full client-cancel"
	if got := strings.Join(passed, " "); got != want {
		t.Errorf("passed %s, want %s", got, want)
	}
}
