package rawsock

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
)

// Supported reports whether Read and Peek work on this system.
const Supported = false

var errUnsupported = fmt.Errorf("raw socket read: not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// Read fails: a RawConn's descriptor is not read with read(2) here.
func Read(fd uintptr, p []byte) (int, error) { return 0, errUnsupported }

// Peek fails with EWINDOWS: there is no recvfrom(2) on the descriptor here.
func Peek(fd uintptr, b []byte) (n int, errno syscall.Errno) { return 0, syscall.EWINDOWS }
