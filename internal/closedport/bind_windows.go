package closedport

import (
	"fmt"
	"syscall"
)

// bind binds a TCP socket to 127.0.0.1 on a port the system chooses.
func bind() (port int, closeFn func(), err error) {
	h, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, syscall.IPPROTO_TCP)
	if err != nil {
		return 0, nil, fmt.Errorf("socket: %w", err)
	}
	if err := syscall.Bind(h, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Closesocket(h)
		return 0, nil, fmt.Errorf("bind: %w", err)
	}
	sa, err := syscall.Getsockname(h)
	if err != nil {
		syscall.Closesocket(h)
		return 0, nil, fmt.Errorf("getsockname: %w", err)
	}
	return sa.(*syscall.SockaddrInet4).Port, func() { syscall.Closesocket(h) }, nil
}
