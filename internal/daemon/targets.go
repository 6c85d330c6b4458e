package daemon

import (
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/mux"
	"github.com/oneport/oneport/netfilter"
	"github.com/oneport/oneport/sshfwd"
)

func newSSHTarget(cfg *config.Config, log *slog.Logger) *sshfwd.Forwarder {
	f := &sshfwd.Forwarder{Addr: cfg.SSH, Logger: log, Transparent: cfg.Transparent}
	if cfg.RedirectLocal || cfg.Transparent {
		// Keeps our own dial to sshd out of the local redirect, and marks
		// transparent connections for their policy routing.
		f.Mark = netfilter.Mark
	}
	return f
}

// swapTarget is a mux target whose destination a reload can replace;
// connections already handed off keep theirs.
type swapTarget struct {
	p atomic.Pointer[sshfwd.Forwarder]
}

func (t *swapTarget) Store(f *sshfwd.Forwarder) { t.p.Store(f) }
func (t *swapTarget) HandleConn(c net.Conn)     { t.p.Load().HandleConn(c) }
func (t *swapTarget) String() string            { return t.p.Load().String() }

// choose turns an on_timeout or fallback value into a target.
func choose(v string, ssh mux.Target, log *slog.Logger) mux.Target {
	switch v {
	case "ssh", "":
		return ssh
	case "close":
		return refuse{"close", "closed by configuration"}
	}
	return &sshfwd.Forwarder{Addr: v, Name: "tcp " + v, Logger: log}
}

// refuse is a target that closes connections.
type refuse struct{ name, why string }

func (r refuse) HandleConn(c net.Conn) { c.Close() }
func (r refuse) String() string        { return r.name + " (" + r.why + ")" }
