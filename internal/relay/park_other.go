//go:build !linux

package relay

import (
	"errors"
	"net"
)

// Parking idle directions in an epoll set is Linux only: elsewhere each
// direction waits in the runtime's poller in a goroutine of its own.
const parkSupported = false

var errParked = errors.New("relay: parked")

type parker struct{}

var thePark parker

func (*parker) enroll(*dir)             {}
func (*parker) forget(*dir)             {}
func (*parker) park(*dir) parkResult    { return cannotPark }
func (*parker) takeFailed(*pair) []*dir { return nil }
func (*parker) lock()                   {}
func (*parker) unlock()                 {}
func parkable(*net.TCPConn) bool        { return false }

// Parked returns how many directions of relayed connections wait parked:
// none, on this system.
func Parked() int { return 0 }
