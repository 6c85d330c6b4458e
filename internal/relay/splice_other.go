//go:build !linux

package relay

import (
	"errors"
	"net"
)

var errNoSplice = errors.New("splice not supported")

// spliceCopy is Linux only; elsewhere Copy copies in user space.
func spliceCopy(dst, src *net.TCPConn) (int64, error) { return 0, errNoSplice }
