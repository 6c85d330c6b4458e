package daemon

// The SSH-over-WebSocket tunnel on the one port: built from tunnel_path
// and tunnel_targets, reloaded with them, dialing the SSH target the mux
// sends SSH to.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/tunnel"
	"github.com/oneport/oneport/netfilter"
	"github.com/oneport/oneport/sshfwd"
)

// newTunnel returns the tunnel server for cfg, dialing through s's SSH
// target.
func newTunnel(s *server, cfg *config.Config, log *slog.Logger) *tunnel.Server {
	t := &tunnel.Server{Logger: log, Dial: s.dialTunnel}
	t.SetConfig(tunnelConfig(cfg))
	return t
}

func tunnelConfig(cfg *config.Config) tunnel.Config {
	return tunnel.Config{Path: cfg.TunnelPath, Targets: cfg.TunnelTargets}
}

// dialTunnel connects a tunnel to the SSH target in force, or to an
// allow-listed target, with the same mark as the mux's own dials so a
// local redirect does not send it back to oneport.
func (s *server) dialTunnel(ctx context.Context, target string) (net.Conn, error) {
	if target == tunnel.SSH {
		return s.ssh.p.Load().DialUpstream(ctx)
	}
	f := &sshfwd.Forwarder{Addr: target}
	if cfg := s.config(); cfg.RedirectLocal || cfg.Transparent {
		f.Mark = netfilter.Mark
	}
	return f.DialUpstream(ctx)
}

// serveTunnel serves r if it is for the tunnel, and reports whether it
// was.
func (s *server) serveTunnel(w http.ResponseWriter, r *http.Request) bool {
	if s.config().TunnelPath == "off" || !s.tunnel.Match(r) {
		return false
	}
	s.tunnel.ServeHTTP(w, r)
	return true
}

// reloadTunnel applies cfg's tunnel settings to new sessions.
func (s *server) reloadTunnel(cfg *config.Config) { s.tunnel.SetConfig(tunnelConfig(cfg)) }

// tunnelStatus is the tunnel's line in `oneport status`.
func (s *server) tunnelStatus() string {
	cfg := s.config()
	if cfg.TunnelPath == "off" {
		return ""
	}
	targets := append([]string{tunnel.SSH}, cfg.TunnelTargets...)
	return fmt.Sprintf("%s, %d open, targets %s", s.tunnel.Path(), s.tunnel.Stats().Open, strings.Join(targets, ", "))
}

var (
	descTunnels     = prometheus.NewDesc("oneport_tunnel_sessions_total", "WebSocket tunnel sessions opened, by target (ssh or host:port).", []string{"target"}, nil)
	descTunnelsOpen = prometheus.NewDesc("oneport_tunnel_sessions_open", "WebSocket tunnel sessions open now.", nil, nil)
	descTunnelBytes = prometheus.NewDesc("oneport_tunnel_bytes_total", "Bytes of ended tunnel sessions, by direction (rx: from clients).", []string{"direction"}, nil)
)

func (c collector) collectTunnel(ch chan<- prometheus.Metric) {
	st := c.s.tunnel.Stats()
	for t, n := range st.Sessions {
		ch <- prometheus.MustNewConstMetric(descTunnels, prometheus.CounterValue, float64(n), t)
	}
	ch <- prometheus.MustNewConstMetric(descTunnelsOpen, prometheus.GaugeValue, float64(st.Open))
	ch <- prometheus.MustNewConstMetric(descTunnelBytes, prometheus.CounterValue, float64(st.RxBytes), "rx")
	ch <- prometheus.MustNewConstMetric(descTunnelBytes, prometheus.CounterValue, float64(st.TxBytes), "tx")
}
