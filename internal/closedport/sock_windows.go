package closedport

import "syscall"

// sock is a socket as this system's syscall package names it.
type sock = syscall.Handle

func newSock() (sock, error) {
	return syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, syscall.IPPROTO_TCP)
}

var closeSock = syscall.Closesocket
