//go:build unix

package closedport

import "syscall"

// sock is a socket as this system's syscall package names it.
type sock = int

func newSock() (sock, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	return fd, err
}

var closeSock = syscall.Close
