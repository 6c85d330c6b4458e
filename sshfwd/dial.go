package sshfwd

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// dialAddrPort connects to ap, an IP address without a zone. A connection
// to this box (sshd on loopback) is established by the time connect(2)
// returns, and dialAddrPort sees that with one getpeername(2) instead of
// parking the goroutine until the poller reports it, which on a busy box
// hands the connection to another thread and back. Only a connection
// still in progress waits, until timeout. Errors read like net.Dialer's.
func dialAddrPort(ap netip.AddrPort, timeout time.Duration, mark int, keepAlive time.Duration) (net.Conn, error) {
	fail := func(op string, err error) (net.Conn, error) {
		if op != "" {
			err = os.NewSyscallError(op, err)
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
	}
	var family int
	var sa syscall.Sockaddr
	if ip := ap.Addr().Unmap(); ip.Is4() { // ::ffff:a.b.c.d as net.Dialer takes it: IPv4
		family, sa = syscall.AF_INET, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	} else {
		family, sa = syscall.AF_INET6, &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail("socket", err)
	}
	if mark != 0 {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_MARK, mark); err != nil {
			syscall.Close(fd)
			return fail("", fmt.Errorf("set SO_MARK: %w", err))
		}
	}
	err = syscall.Connect(fd, sa)
	if err == syscall.EINTR {
		err = syscall.EINPROGRESS // the connect goes on; wait for it
	}
	if err == syscall.EINPROGRESS {
		if _, perr := syscall.Getpeername(fd); perr == nil {
			err = nil // connected already
		}
	}
	if err != nil && err != syscall.EINPROGRESS {
		syscall.Close(fd)
		return fail("connect", err)
	}
	// From here the file owns fd; net.FileConn takes a duplicate.
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	if err == syscall.EINPROGRESS {
		if err := waitConnected(f, timeout); err != nil {
			return fail("", err)
		}
	}
	c, err := net.FileConn(f)
	if err != nil {
		return fail("", err)
	}
	// FileConn turns keepalive on with Go's defaults (15 s).
	if tc, ok := c.(*net.TCPConn); ok && keepAlive != goKeepAlive {
		if keepAlive < 0 {
			err = tc.SetKeepAlive(false)
		} else {
			err = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: keepAlive})
		}
		if err != nil {
			c.Close()
			return fail("", err)
		}
	}
	return c, nil
}

// goKeepAlive is the keepalive period net.FileConn sets.
const goKeepAlive = 15 * time.Second

// waitConnected waits until the connect in progress on f ends, or timeout.
func waitConnected(f *os.File, timeout time.Duration) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	if err := f.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	var cerr error
	err = rc.Write(func(fd uintptr) bool {
		n, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
		switch {
		case err != nil:
			cerr = os.NewSyscallError("getsockopt", err)
		case n == int(syscall.EINPROGRESS) || n == int(syscall.EALREADY):
			return false
		case n != 0:
			cerr = os.NewSyscallError("connect", syscall.Errno(n))
		default:
			if _, err := syscall.Getpeername(int(fd)); err == syscall.ENOTCONN {
				return false // writable but not connected yet
			}
		}
		return true
	})
	if err != nil {
		return err // os.ErrDeadlineExceeded: "i/o timeout"
	}
	return cerr
}
