//go:build unix

package mux

import "syscall"

// canReadNow reports whether readNow can read a socket without waiting.
const canReadNow = true

// readNow reads the non-blocking socket fd once.
func readNow(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }
