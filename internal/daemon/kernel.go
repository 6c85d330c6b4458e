package daemon

import (
	"errors"
	"log/slog"
	"net"
	"strconv"

	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/netfilter"
)

// kernelSetup is what oneport installs in the kernel: the redirect table
// and transparent mode's policy routing.
type kernelSetup struct {
	redirect *netfilter.Redirect
	routing  *netfilter.Routing
}

// Close removes what was installed.
func (k *kernelSetup) Close() error {
	var errs []error
	if k.redirect != nil {
		errs = append(errs, k.redirect.Close())
	}
	if k.routing != nil {
		errs = append(errs, k.routing.Close())
	}
	return errors.Join(errs...)
}

// setupKernel installs the redirect and transparent routing the config
// asks for.
func setupKernel(cfg *config.Config, ln net.Addr, log *slog.Logger) (*kernelSetup, error) {
	k := &kernelSetup{}
	if len(cfg.Redirect) == 0 && !cfg.Transparent {
		return k, nil
	}
	r, err := installRedirect(cfg, ln, log)
	if err != nil {
		return nil, err
	}
	k.redirect = r
	if cfg.Transparent {
		if k.routing, err = netfilter.SetupRouting(0); err != nil {
			k.Close()
			return nil, err
		}
		log.Info("transparent mode: sshd sees client addresses")
	}
	return k, nil
}

func installRedirect(cfg *config.Config, ln net.Addr, log *slog.Logger) (*netfilter.Redirect, error) {
	_, portStr, _ := net.SplitHostPort(ln.String())
	port, _ := strconv.Atoi(portStr)
	nc := netfilter.Config{ToPort: uint16(port), Interfaces: cfg.RedirectIfaces, Local: cfg.RedirectLocal,
		Transparent: cfg.Transparent, Logger: log}
	for _, p := range cfg.Redirect {
		nc.Ports = append(nc.Ports, uint16(p))
	}
	for _, a := range cfg.RedirectAddrs {
		nc.Addresses = append(nc.Addresses, net.ParseIP(a))
	}
	r, err := netfilter.Install(nc)
	if err != nil {
		return nil, err
	}
	if len(cfg.Redirect) > 0 {
		log.Info("redirect installed", "ports", cfg.Redirect, "to", port, "crash_safe", r.Owned())
	}
	return r, nil
}

// redirectOff removes the port redirect but keeps transparent mode's
// table and routing, which open sessions still need.
func (k *kernelSetup) redirectOff() error {
	if k.redirect == nil || len(k.redirect.Config().Ports) == 0 {
		return nil
	}
	if k.routing != nil {
		return k.redirect.Update(nil, 0)
	}
	err := k.redirect.Close()
	k.redirect = nil
	return err
}
