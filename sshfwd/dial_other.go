//go:build !linux

package sshfwd

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"time"
)

// errSockopts says that socket marks and transparent dials are Linux's.
var errSockopts = fmt.Errorf("socket mark and transparent dial: not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// dialAddrPort connects to ap with net.Dialer; a socket mark is Linux's.
func dialAddrPort(ap netip.AddrPort, timeout time.Duration, mark int, keepAlive time.Duration) (net.Conn, error) {
	if mark != 0 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: errSockopts}
	}
	d := net.Dialer{Timeout: timeout, KeepAlive: keepAlive}
	return d.Dial("tcp", netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String())
}

// setSockopts fails: SO_MARK and IP_TRANSPARENT are Linux's.
func setSockopts(rc syscall.RawConn, network string, mark int, transparent bool) error {
	return errSockopts
}
