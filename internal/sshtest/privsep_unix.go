//go:build unix

package sshtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// privsepDir is sshd's privilege separation directory (Debian's path).
const privsepDir = "/run/sshd"

// privsepMark, inside privsepDir, says a test created the directory, so
// the last test to leave removes it. A directory without it was made by
// the system (the package's tmpfiles rule) and stays.
const privsepMark = ".oneport-test-created"

// ensurePrivsepDir makes sure privsepDir exists while the test runs, and
// removes it when the last test that needed it ends, if a test made it.
// Test binaries of several packages run at once (go test ./...), so the
// directory is shared across processes: each user holds a shared flock on
// the directory itself for as long as its sshd may need it, and creating,
// joining and leaving are serialized by an exclusive flock on its parent.
// The leaver that can then take the directory's lock exclusively is the
// last one. The kernel drops a crashed process's locks, and a directory a
// crashed test left is removed by the next test to leave.
func ensurePrivsepDir(t testing.TB) {
	t.Helper()
	unlock, err := lockParent()
	if err != nil {
		t.Skipf("real sshd test skipped: %v", err)
	}
	dir, err := joinPrivsepDir()
	unlock()
	if err != nil {
		t.Skipf("real sshd test skipped: %v", err)
	}
	t.Cleanup(func() {
		if err := leavePrivsepDir(dir); err != nil {
			t.Errorf("remove %s: %v", privsepDir, err)
		}
	})
}

// lockParent takes the exclusive lock that serializes joining and leaving.
func lockParent() (unlock func(), err error) {
	f, err := os.Open(filepath.Dir(privsepDir))
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", filepath.Dir(privsepDir), err)
	}
	if err := flock(f, syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", filepath.Dir(privsepDir), err)
	}
	return func() { f.Close() }, nil // closing drops the lock
}

// joinPrivsepDir creates privsepDir (marked as a test's) if it is
// missing, and returns it opened and share-locked. The parent's lock is
// held.
func joinPrivsepDir() (*os.File, error) {
	if err := os.Mkdir(privsepDir, 0o755); err == nil {
		if err := os.WriteFile(filepath.Join(privsepDir, privsepMark), nil, 0o644); err != nil {
			os.Remove(privsepDir)
			return nil, fmt.Errorf("mark %s: %w", privsepDir, err)
		}
	} else if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create %s: %w", privsepDir, err)
	}
	dir, err := os.Open(privsepDir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", privsepDir, err)
	}
	if err := flock(dir, syscall.LOCK_SH); err != nil {
		dir.Close()
		return nil, fmt.Errorf("lock %s: %w", privsepDir, err)
	}
	return dir, nil
}

// leavePrivsepDir drops this test's share of dir and, if no one else
// holds one and a test made the directory, removes it.
func leavePrivsepDir(dir *os.File) error {
	defer dir.Close()
	unlock, err := lockParent()
	if err != nil {
		return err
	}
	defer unlock()
	// Converting the lock is not atomic, but joiners wait for the parent's
	// lock, so only other holders can keep the exclusive lock from us.
	if err := flock(dir, syscall.LOCK_EX|syscall.LOCK_NB); errors.Is(err, syscall.EWOULDBLOCK) {
		return nil // another test still uses it
	} else if err != nil {
		return fmt.Errorf("lock %s: %w", privsepDir, err)
	}
	if err := os.Remove(filepath.Join(privsepDir, privsepMark)); errors.Is(err, os.ErrNotExist) {
		return nil // the system's directory
	} else if err != nil {
		return err
	}
	return os.Remove(privsepDir)
}

// flock locks f, retrying when a signal interrupts the wait.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
