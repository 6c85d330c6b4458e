package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/oneport/oneport/internal/loadtest"
)

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
