// Package chromiumtest drives a real headless Chromium over the DevTools
// protocol, for tests of the pages oneport serves: load a page, evaluate
// script in it, collect console errors, take a screenshot.
package chromiumtest

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// Browser is a headless Chromium and a DevTools connection to its page.
type Browser struct {
	t    testing.TB
	ws   *websocket.Conn
	mu   sync.Mutex
	next int
	wait map[int]chan reply
	errs []string
	load chan struct{}
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

type message struct {
	ID     int             `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	reply
}

// Find returns the Chromium binary, or skips t naming the package to
// install.
func Find(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (Debian package chromium): the status page's browser test cannot run")
	return ""
}

// Start runs headless Chromium on about:blank and connects to its page.
// Both end with the test.
func Start(t testing.TB) *Browser {
	t.Helper()
	bin := Find(t)
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-port=0", "--remote-allow-origins=*",
		"--window-size=1280,1100", "about:blank")
	inOwnGroup(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	// Chromium's helpers (zygotes, renderers, the GPU and network
	// processes) outlive a killed browser for a while and write in its
	// profile: the profile directory is removed only once all are gone.
	t.Cleanup(func() {
		if err := killGroup(cmd.Process, exited); err != nil {
			t.Errorf("stop chromium: %v", err)
		}
	})
	// Chromium says where DevTools listens on stderr; the rest is drained.
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "DevTools listening on "); ok {
				found <- u
			}
		}
	}()
	var browserURL string
	select {
	case browserURL = <-found:
	case <-exited:
		t.Fatal("chromium exited before DevTools listened")
	case <-time.After(60 * time.Second):
		t.Fatal("chromium did not start DevTools within 60s")
	}
	host := strings.SplitN(strings.TrimPrefix(browserURL, "ws://"), "/", 2)[0]
	pageURL := pageTarget(t, host)
	ws, err := websocket.Dial(pageURL, "", "http://"+host)
	if err != nil {
		t.Fatalf("connect to chromium's page: %v", err)
	}
	b := &Browser{t: t, ws: ws, wait: map[int]chan reply{}, load: make(chan struct{}, 1)}
	go b.read()
	t.Cleanup(func() { ws.Close() })
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		if err := b.Call(m, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// pageTarget returns the DevTools WebSocket URL of Chromium's first page.
func pageTarget(t testing.TB, host string) string {
	resp, err := http.Get("http://" + host + "/json/list")
	if err != nil {
		t.Fatalf("chromium targets: %v", err)
	}
	defer resp.Body.Close()
	var targets []struct{ Type, WebSocketDebuggerURL string }
	if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
		t.Fatalf("chromium targets: %v", err)
	}
	for _, tg := range targets {
		if tg.Type == "page" {
			return tg.WebSocketDebuggerURL
		}
	}
	t.Fatalf("chromium has no page: %+v", targets)
	return ""
}

func (b *Browser) read() {
	for {
		var m message
		if err := websocket.JSON.Receive(b.ws, &m); err != nil {
			b.mu.Lock()
			for id, c := range b.wait {
				c <- reply{Error: &struct {
					Message string `json:"message"`
				}{"connection closed: " + err.Error()}}
				delete(b.wait, id)
			}
			b.mu.Unlock()
			return
		}
		if m.ID != 0 {
			b.mu.Lock()
			c := b.wait[m.ID]
			delete(b.wait, m.ID)
			b.mu.Unlock()
			if c != nil {
				c <- m.reply
			}
			continue
		}
		b.event(m)
	}
}

// event records console errors, uncaught exceptions and page loads.
func (b *Browser) event(m message) {
	switch m.Method {
	case "Page.loadEventFired":
		select {
		case b.load <- struct{}{}:
		default:
		}
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		json.Unmarshal(m.Params, &p)
		if p.Type == "error" || p.Type == "assert" {
			b.addErr(fmt.Sprintf("console.%s: %v", p.Type, p.Args))
		}
	case "Runtime.exceptionThrown":
		b.addErr("exception: " + string(m.Params))
	case "Log.entryAdded":
		var p struct {
			Entry struct{ Level, Text, URL string } `json:"entry"`
		}
		json.Unmarshal(m.Params, &p)
		if p.Entry.Level == "error" {
			b.addErr(fmt.Sprintf("log: %s (%s)", p.Entry.Text, p.Entry.URL))
		}
	}
}

func (b *Browser) addErr(s string) {
	b.mu.Lock()
	b.errs = append(b.errs, s)
	b.mu.Unlock()
}

// Errors returns the console errors, uncaught exceptions and error log
// entries (failed loads, refused content) seen so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// Call sends a DevTools command and decodes its result into out (if not
// nil), within 30 seconds.
func (b *Browser) Call(method string, params, out any) error {
	b.mu.Lock()
	b.next++
	id := b.next
	c := make(chan reply, 1)
	b.wait[id] = c
	b.mu.Unlock()
	if params == nil {
		params = struct{}{}
	}
	if err := websocket.JSON.Send(b.ws, map[string]any{"id": id, "method": method, "params": params}); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r := <-c:
		if r.Error != nil {
			return fmt.Errorf("%s: %s", method, r.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: no answer within 30s", method)
	}
}

// Navigate loads url and waits for its load event.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	select {
	case <-b.load:
	default:
	}
	var r struct {
		ErrorText string `json:"errorText"`
	}
	if err := b.Call("Page.navigate", map[string]any{"url": url}, &r); err != nil {
		b.t.Fatal(err)
	}
	if r.ErrorText != "" {
		b.t.Fatalf("navigate to %s: %s", url, r.ErrorText)
	}
	select {
	case <-b.load:
	case <-time.After(30 * time.Second):
		b.t.Fatalf("%s did not load within 30s", url)
	}
}

// Eval evaluates a JavaScript expression in the page, awaiting it if it
// is a promise, and returns its value as a string.
func (b *Browser) Eval(expr string) (string, error) {
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := b.Call("Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &r)
	if err != nil {
		return "", err
	}
	if r.ExceptionDetails != nil {
		return "", errors.New("evaluate: " + r.ExceptionDetails.Text)
	}
	return fmt.Sprint(r.Result.Value), nil
}

// Screenshot saves the page as a PNG at path.
func (b *Browser) Screenshot(path string) {
	b.t.Helper()
	var r struct {
		Data string `json:"data"`
	}
	if err := b.Call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &r); err != nil {
		b.t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
