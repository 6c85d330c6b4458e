//go:build unix

package sshfwd_test

import (
	"syscall"
	"testing"
)

// raiseFileLimit raises this process's limit on open files to want, the
// hard limit too where it may (root), until the test ends; it returns
// the soft limit now in force.
func raiseFileLimit(t *testing.T, want int) int {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if uint64(old.Cur) >= uint64(want) {
		return int(old.Cur)
	}
	lim := old
	setLimit(&lim.Cur, want)
	if uint64(old.Max) < uint64(want) {
		setLimit(&lim.Max, want)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Logf("cannot raise the file limit to %d: %v", want, err)
		lim = syscall.Rlimit{Cur: old.Max, Max: old.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return int(old.Cur)
		}
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	return int(lim.Cur)
}

// setLimit sets an Rlimit field: uint64 on Linux and macOS, int64 on the
// BSDs.
func setLimit[T int64 | uint64](field *T, v int) { *field = T(v) }
