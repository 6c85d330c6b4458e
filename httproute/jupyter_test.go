package httproute_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/oneport/oneport/httproute"
)

// Jupyter at /jupyter/ from the command line alone: with --route
// /jupyter/+=ADDR (the prefix kept, as Jupyter's base_url wants), the
// page loads, a token login sets a cookie that works on its own, and a
// kernel started through the REST API runs code over its WebSocket.
func TestJupyterUnderPrefixFromCommandLine(t *testing.T) {
	bin, err := exec.LookPath("jupyter-notebook")
	if err != nil {
		t.Skip("skipped: jupyter-notebook not installed (apt-get install jupyter-notebook python3-ipykernel)")
	}
	needPython(t, "jupyter-notebook python3-ipykernel", "notebook", "ipykernel")
	const token = "oneport-test-token-0123456789"
	up := startJupyter(t, bin, token)
	addr := startProxy(t, httproute.EngineOneport, nil, route("/jupyter/+="+up))
	base := "http://" + addr + "/jupyter/"

	// The token login: the page, then a cookie good without the token.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	code, body := fetch(t, browser, base+"?token="+token)
	if code != 200 || !strings.Contains(body, "/jupyter/static/") {
		t.Fatalf("login page: %d\n%.400s", code, body)
	}
	if code, _ := fetch(t, browser, base+"tree"); code != 200 {
		t.Fatalf("tree with the login cookie: %d", code)
	}

	// A kernel, through the REST API with the token.
	api := func(method, path string) map[string]any {
		req, _ := http.NewRequest(method, base+path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "token "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		json.Unmarshal(b, &out)
		return out
	}
	kernel, _ := api("POST", "api/kernels")["id"].(string)
	if kernel == "" {
		t.Fatal("no kernel id")
	}
	t.Cleanup(func() { api("DELETE", "api/kernels/"+kernel) })

	// One execute_request and its execute_reply over the kernel's channels.
	cfg, err := websocket.NewConfig("ws://"+addr+"/jupyter/api/kernels/"+kernel+"/channels?token="+token, "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("kernel websocket: %v", err)
	}
	defer ws.Close()
	ws.SetDeadline(time.Now().Add(60 * time.Second))
	req := map[string]any{
		"header": map[string]any{"msg_id": "op-1", "username": "oneport", "session": "op-session",
			"msg_type": "execute_request", "version": "5.3"},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
		"content": map[string]any{"code": "print(6 * 7)", "silent": false, "store_history": false,
			"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true},
	}
	if err := websocket.JSON.Send(ws, req); err != nil {
		t.Fatal(err)
	}
	// The reply comes on the shell channel and the printed text on iopub:
	// Jupyter orders neither against the other, so wait for the reply and
	// for iopub's idle status, which follows all of the request's output.
	var printed string
	var replied, idle bool
	for !replied || !idle {
		var msg struct {
			Header struct {
				MsgType string `json:"msg_type"`
			} `json:"header"`
			ParentHeader struct {
				MsgID string `json:"msg_id"`
			} `json:"parent_header"`
			Content map[string]any `json:"content"`
		}
		if err := websocket.JSON.Receive(ws, &msg); err != nil {
			t.Fatalf("waiting for execute_reply: %v", err)
		}
		if msg.ParentHeader.MsgID != "op-1" {
			continue
		}
		switch msg.Header.MsgType {
		case "stream":
			text, _ := msg.Content["text"].(string)
			printed += text
		case "execute_reply":
			if msg.Content["status"] != "ok" {
				t.Fatalf("execute_reply %v", msg.Content)
			}
			replied = true
		case "status":
			idle = msg.Content["execution_state"] == "idle"
		}
	}
	if printed != "42\n" {
		t.Fatalf("the kernel printed %q, want 42", printed)
	}
}

// startJupyter runs Jupyter Notebook on a free loopback port with
// base_url /jupyter/ and its own directories, and returns its address
// once it says it is running.
func startJupyter(t *testing.T, bin, token string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--no-browser", "--allow-root", "--ip=127.0.0.1", "--port="+port,
		"--NotebookApp.port_retries=0", "--NotebookApp.token="+token, "--NotebookApp.base_url=/jupyter/",
		"--notebook-dir="+dir)
	cmd.Env = append(os.Environ(), "HOME="+dir, "JUPYTER_RUNTIME_DIR="+filepath.Join(dir, "runtime"),
		"JUPYTER_CONFIG_DIR="+filepath.Join(dir, "config"), "JUPYTER_DATA_DIR="+filepath.Join(dir, "data"),
		"IPYTHONDIR="+filepath.Join(dir, "ipython"), "PYTHONNOUSERSITE=1")
	cmd.Env = append(cmd.Env, "PATH=/usr/bin:/bin") // Debian's python for the kernel too
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	running := make(chan struct{})
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		said := false
		for s := bufio.NewScanner(stderr); s.Scan(); {
			lines = append(lines, s.Text())
			if !said && strings.Contains(s.Text(), "is running at") {
				close(running)
				said = true
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // shuts its kernels down too
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		cmd.Wait()
		if t.Failed() {
			t.Logf("jupyter output:\n%s", strings.Join(lines, "\n"))
		}
	})
	select {
	case <-running:
	case <-done:
		t.Fatal("jupyter exited before it was running")
	case <-time.After(60 * time.Second):
		t.Fatal("jupyter not running after 60s")
	}
	return addr
}
