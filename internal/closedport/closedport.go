// Package closedport gives tests a loopback address where connections are
// refused for as long as the test runs.
//
// Listening on 127.0.0.1:0 and closing the listener does not give that: the
// kernel may hand the freed port to the next listener the test opens. When
// that listener is a proxy whose upstream is the "dead" address, the proxy
// dials itself, and each hop dials again until the process runs out of file
// descriptors. Addr keeps the port bound, without listening on it, until the
// test ends: connecting to it is refused, and no other socket can take it.
package closedport

import (
	"fmt"
	"syscall"
	"testing"
)

// Addr returns "127.0.0.1:port" for a port bound by a socket that never
// listens, so a connection to it is refused. The port stays reserved until
// t's cleanup closes the socket. It fails t when no such socket can be made.
func Addr(t testing.TB) string {
	t.Helper()
	port, closeFn, err := bind()
	if err != nil {
		t.Fatalf("closedport: %v", err)
	}
	t.Cleanup(closeFn)
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// bind binds a TCP socket to 127.0.0.1 on a port the system chooses.
func bind() (port int, closeFn func(), err error) {
	s, err := newSock()
	if err != nil {
		return 0, nil, fmt.Errorf("socket: %w", err)
	}
	if err := syscall.Bind(s, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		closeSock(s)
		return 0, nil, fmt.Errorf("bind: %w", err)
	}
	sa, err := syscall.Getsockname(s)
	if err != nil {
		closeSock(s)
		return 0, nil, fmt.Errorf("getsockname: %w", err)
	}
	return sa.(*syscall.SockaddrInet4).Port, func() { closeSock(s) }, nil
}
