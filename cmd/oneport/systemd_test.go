//go:build unix

package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/oneporttest"
	"github.com/oneport/oneport/internal/syncbuf"
)

// Socket activation with systemd-socket-activate: oneport serves the
// socket it is given.
func TestSocketActivation(t *testing.T) {
	sa, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed (Debian package systemd)")
	}
	backend := oneporttest.Backend(t, "a")
	ready := readyNotifications(t)
	var logs *syncbuf.Buffer
	for try := 0; ; try++ {
		// The port is picked, freed, then bound by systemd-socket-activate:
		// another socket may take it in between, so try a few.
		addr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
		// systemd-socket-activate gives its child a fresh environment: pass
		// on where TestMain keeps state and sockets, and where to notify.
		cmd := exec.Command(sa, "-l", addr, "-E", "STATE_DIRECTORY", "-E", "RUNTIME_DIRECTORY", "-E", "NOTIFY_SOCKET",
			oneportBinary(t), "--route", "/="+backend)
		logs = &syncbuf.Buffer{}
		listening := make(chan struct{})
		cmd.Stdout, cmd.Stderr = logs, &lineWatch{w: logs, sub: "Listening on", seen: listening}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			<-exited
		}()
		// systemd-socket-activate says when it has bound the port; it
		// starts oneport on the first connection.
		select {
		case <-listening:
		case <-exited:
			t.Fatalf("systemd-socket-activate exited:\n%s", logs.String())
		case <-time.After(10 * time.Second):
			t.Fatalf("systemd-socket-activate did not listen:\n%s", logs.String())
		}
		body, err := httpBody("http://" + addr + "/x")
		if err == nil && body == "backend a saw /x" {
			select {
			case <-ready:
			case <-time.After(10 * time.Second):
				t.Fatal("served but never said READY=1")
			}
			break
		}
		if try == 5 || !strings.Contains(logs.String(), "in use") {
			t.Fatalf("%q %v\n%s", body, err, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "using the socket passed by systemd") {
		t.Errorf("log does not say the socket came from systemd:\n%s", logs.String())
	}
}

// Restart without refusing anyone: the socket stays open across the
// restart (as with oneport.socket), so a client connecting all the while
// sees no failure. Each process says when it serves (READY=1, as systemd
// hears it) and the test waits for requests served after that: the
// second process may take long to start on a busy machine (it loads the
// internal CA before it accepts), and counting what a fixed time window
// served made the test fail there though no request failed.
func TestRestartKeepsSocket(t *testing.T) {
	backend := oneporttest.Backend(t, "a")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ready := readyNotifications(t)
	start := func() *exec.Cmd {
		// As systemd does: the socket as fd 3, LISTEN_PID the service's pid.
		cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`, oneportBinary(t), "--route", "/="+backend)
		cmd.ExtraFiles = []*os.File{f}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatal("oneport did not say READY=1")
		}
		return cmd
	}
	first := start()
	addr := ln.Addr().String()
	h := oneporttest.Hammer(t, 1, &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		"http://"+addr+"/restart")
	h.WaitOK(t, 5)
	first.Process.Signal(syscall.SIGTERM)
	first.Wait()
	second := start()
	h.WaitOK(t, h.OK()+5)
	h.Stop()
	second.Process.Signal(syscall.SIGTERM)
	second.Wait()
}

// readyNotifications listens where oneport sends its systemd
// notifications and passes on each READY=1.
func readyNotifications(t *testing.T) <-chan struct{} {
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	ready := make(chan struct{}, 4)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if strings.Contains("\n"+string(buf[:n])+"\n", "\nREADY=1\n") {
				ready <- struct{}{}
			}
		}
	}()
	return ready
}

// lineWatch passes writes on to w and closes seen the first time they
// hold sub.
type lineWatch struct {
	w    io.Writer
	sub  string
	seen chan struct{}
	once sync.Once
}

func (l *lineWatch) Write(p []byte) (int, error) {
	if strings.Contains(string(p), l.sub) {
		l.once.Do(func() { close(l.seen) })
	}
	return l.w.Write(p)
}

// httpBody GETs url once.
func httpBody(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func freeTCPPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
