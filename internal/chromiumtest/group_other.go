//go:build !linux

package chromiumtest

import (
	"os"
	"os/exec"
)

// inOwnGroup does nothing here: the browser tests run on Linux.
func inOwnGroup(cmd *exec.Cmd) {}

// killGroup kills p and waits until it has been waited for.
func killGroup(p *os.Process, exited <-chan struct{}) error {
	p.Kill()
	<-exited
	return nil
}
