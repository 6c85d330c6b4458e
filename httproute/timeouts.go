package httproute

import (
	"errors"
	"fmt"
	"net"
)

// timeoutReason says, for a 504, which wait ran out and how long it was,
// naming the setting that changes it.
func timeoutReason(r *Route, err error) string {
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "dial" {
		d := r.DialTimeout
		if d <= 0 {
			d = DefaultDialTimeout
		}
		return fmt.Sprintf("no connection within %v (dial_timeout)", d)
	}
	d := r.ResponseHeaderTimeout
	if d <= 0 {
		d = DefaultResponseHeaderTimeout
	}
	return fmt.Sprintf("no response headers within %v (response_header_timeout; raise it on the route "+
		"for a model that loads on its first request)", d)
}
