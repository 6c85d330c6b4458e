package daemon

import (
	"context"
	"fmt"
	"net"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// watchdog pings systemd's watchdog while the mux serves: each ping
// follows a probe connection that went through the accept loop and the
// sniffer, so a wedged server stops pinging and systemd restarts it.
func (s *server) watchdog(ctx context.Context) {
	every, err := sd.SdWatchdogEnabled(false)
	if err != nil || every <= 0 {
		return
	}
	every /= 3
	addr := probeAddr(s.addr)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, every)
		err := s.mux.Probe(pctx, addr)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("watchdog probe failed; not pinging systemd", "err", err)
			}
			continue
		}
		s.notify(sd.SdNotifyWatchdog)
	}
}

// probeAddr turns a listening address into one a probe can dial: the
// unspecified address becomes loopback.
func probeAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := ta.IP
	switch {
	case ip == nil || ip.Equal(net.IPv4zero):
		ip = net.IPv4(127, 0, 0, 1)
	case ip.Equal(net.IPv6unspecified):
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(ta.Port))
}
