//go:build !linux

package doctor

import (
	"context"
	"net"
	"os"
	"time"
)

// System fills what can be known of this box off Linux: the clock,
// addresses, DNS and dialing. The Linux-only facts stay unknown.
func System(e *Env) {
	e.Now = time.Now
	e.Self = os.Getpid()
	d := &net.Dialer{Timeout: 2 * time.Second}
	e.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	e.LookupIP = func(ctx context.Context, h string) ([]net.IP, error) {
		return net.DefaultResolver.LookupIP(ctx, "ip", h)
	}
	e.LocalIPs = func() ([]net.IP, error) {
		addrs, err := net.InterfaceAddrs()
		var out []net.IP
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				out = append(out, n.IP)
			}
		}
		return out, err
	}
}
