//go:build linux

package sshfwd

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// dialAddrPort connects to ap, an IP address without a zone, with
// net.Dialer, but connects the socket itself first, in the dialer's
// Control hook. A connection to this box (sshd on loopback) is then
// established by the time that connect(2) returns, and the dialer's own
// connect finds it so (EISCONN) and returns at once. Left to itself, the
// dialer parks the goroutine until the poller reports the socket
// writable, which on a busy box hands the connection to another thread
// and back. A connect still in progress is waited for by the dialer, until
// timeout, and errors are the dialer's.
func dialAddrPort(ap netip.AddrPort, timeout time.Duration, mark int, keepAlive time.Duration) (net.Conn, error) {
	return dialInProgress(ap, timeout, mark, keepAlive, nil)
}

// dialInProgress is dialAddrPort that calls inProgress, if not nil, when
// its connect(2) is left in progress for the dialer to wait for (tests).
func dialInProgress(ap netip.AddrPort, timeout time.Duration, mark int, keepAlive time.Duration, inProgress func()) (net.Conn, error) {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) // ::ffff:a.b.c.d over IPv4, as net.Dialer takes it
	d := net.Dialer{Timeout: timeout, KeepAlive: keepAlive, Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		cerr := rc.Control(func(fd uintptr) {
			if mark != 0 {
				if err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, mark); err != nil {
					err = fmt.Errorf("set SO_MARK: %w", err)
					return
				}
			}
			switch err = connect(int(fd), ap); err {
			case syscall.EINPROGRESS, syscall.EINTR:
				if inProgress != nil {
					inProgress()
				}
				err = nil // the dialer waits for it
			case nil:
			default:
				err = os.NewSyscallError("connect", err)
			}
		})
		if cerr != nil {
			return cerr
		}
		return err
	}}
	return d.Dial("tcp", ap.String())
}

// connect starts connecting the non-blocking socket fd to ap. It is a
// raw system call, which does not tell Go's scheduler that the thread may
// block: a non-blocking connect never does, but to a peer on loopback it
// runs the whole handshake inline, often past the 20 µs after which the
// scheduler hands the thread's work to another thread it must wake (the
// reason internal/relay splices with raw calls too).
func connect(fd int, ap netip.AddrPort) error {
	var sa unsafe.Pointer
	var n uintptr
	if ap.Addr().Is4() {
		sa4 := syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: ap.Addr().As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], ap.Port())
		sa, n = unsafe.Pointer(&sa4), syscall.SizeofSockaddrInet4
	} else {
		sa6 := syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: ap.Addr().As16()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa6.Port))[:], ap.Port())
		sa, n = unsafe.Pointer(&sa6), syscall.SizeofSockaddrInet6
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(sa), n); e != 0 {
		return e
	}
	return nil
}

// setSockopts sets SO_MARK and IP(V6)_TRANSPARENT before bind and connect.
func setSockopts(rc syscall.RawConn, network string, mark int, transparent bool) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if mark != 0 {
			if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, mark); err != nil {
				serr = fmt.Errorf("set SO_MARK: %w", err)
				return
			}
		}
		if transparent {
			level, opt := syscall.IPPROTO_IP, syscall.IP_TRANSPARENT
			if network == "tcp6" {
				level, opt = syscall.IPPROTO_IPV6, ipv6Transparent
			}
			if err := syscall.SetsockoptInt(int(fd), level, opt, 1); err != nil {
				serr = fmt.Errorf("set transparent socket option: %w", err)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// ipv6Transparent is IPV6_TRANSPARENT from linux/in6.h.
const ipv6Transparent = 75
