//go:build unix

package sshtest

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Test binaries of several packages start sshds at once: a test leaving
// must not remove the privilege separation directory while another one
// (here a second holder, as another process would be) still needs it, and
// the last one to leave removes it if a test made it.
func TestPrivsepDirStaysWhileShared(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create " + privsepDir)
	}
	join := func() *os.File {
		unlock, err := lockParent()
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		dir, err := joinPrivsepDir()
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}
	a, b := join(), join()
	if err := leavePrivsepDir(a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(privsepDir); err != nil {
		t.Fatalf("the first to leave removed it while another holder needs it: %v", err)
	}
	if err := leavePrivsepDir(b); err != nil {
		t.Fatal(err)
	}
	// Gone, unless the system made it or another test binary holds it now.
	unlock, err := lockParent()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	dir, err := os.Open(privsepDir)
	if errors.Is(err, os.ErrNotExist) {
		return
	} else if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if _, err := os.Stat(filepath.Join(privsepDir, privsepMark)); err != nil {
		return // the system's
	}
	if err := flock(dir, syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		t.Fatalf("the last to leave left %s behind", privsepDir)
	}
}
