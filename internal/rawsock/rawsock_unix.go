//go:build unix

package rawsock

import (
	"syscall"
	"unsafe"
)

// Supported reports whether Read and Peek work on this system.
const Supported = true

// Read reads the non-blocking socket fd once, as read(2) does; on Linux
// up to 64 KiB as a raw system call (see Conn).
func Read(fd uintptr, p []byte) (int, error) { return readOnce(fd, p) }

// Peek copies up to len(b) bytes waiting on socket fd into b without
// consuming them, and never waits (MSG_PEEK|MSG_DONTWAIT). n is 0 and
// errno 0 at the end of the stream; errno is EAGAIN when nothing waits.
// b must not be empty.
func Peek(fd uintptr, b []byte) (n int, errno syscall.Errno) {
	r, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}
