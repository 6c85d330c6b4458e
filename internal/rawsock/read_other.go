//go:build unix && !linux

package rawsock

import "syscall"

func readOnce(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }
