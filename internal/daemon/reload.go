package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/oneport/oneport/internal/admin"
	"github.com/oneport/oneport/internal/config"
)

// reload reads the configuration again and applies what may change while
// serving: routes and upstreams, the SSH target, the TLS certificates, the
// redirect's ports. A config that does not validate or apply changes
// nothing: the running one stays in force.
func (s *server) reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notify(sd.SdNotifyReloading)
	defer s.notify(sd.SdNotifyReady)
	if s.opts.Load == nil {
		s.refuse(errors.New("no way to read the configuration again"))
		return
	}
	cfg, res, err := s.opts.Load()
	if err != nil {
		s.refuse(err)
		return
	}
	table, commitGateways, err := s.gw.prepare(res)
	if err != nil {
		s.refuse(err)
		return
	}
	commitKeys, err := s.keys.reload(cfg)
	if err != nil {
		s.refuse(err)
		return
	}
	if err := s.applyRedirect(cfg); err != nil {
		s.refuse(err)
		return
	}
	commitKeys()
	s.reloadRoutes(cfg, table)
	commitGateways()
	s.startDiscovery(context.Background(), cfg, res)
	s.reloadTLS(s.cfg, cfg)
	s.reloadTunnel(cfg)
	if cfg.SSH != s.cfg.SSH {
		s.ssh.Store(newSSHTarget(cfg, s.log))
		warnSSHTarget(cfg.SSH, s.log)
	}
	for _, k := range config.RestartOnly(s.cfg, cfg) {
		s.log.Warn("changed setting needs a restart to apply", "setting", k)
	}
	s.cfg = cfg
	s.cur.Store(cfg)
	s.log.Info("reloaded", "routes", admin.Summary(s.handler.Table()), "ssh", cfg.SSH)
	s.notify("STATUS=" + s.statusLocked(s.handler.Table()))
}

func (s *server) refuse(err error) {
	s.log.Error("reload refused; still serving the previous configuration", "err", oneLine(err))
	s.notify("STATUS=reload refused: " + oneLine(err))
}

// applyRedirect moves the redirect to cfg's ports.
func (s *server) applyRedirect(cfg *config.Config) error {
	if cfg.Transparent != s.cfg.Transparent || cfg.RedirectLocal != s.cfg.RedirectLocal ||
		!slices.Equal(cfg.RedirectIfaces, s.cfg.RedirectIfaces) || !slices.Equal(cfg.RedirectAddrs, s.cfg.RedirectAddrs) {
		return errors.New("transparent, redirect_local, redirect_interfaces and redirect_addresses change only with a restart")
	}
	if slices.Equal(cfg.Redirect, s.cfg.Redirect) {
		return nil
	}
	_, portStr, _ := net.SplitHostPort(s.addr.String())
	var port int
	fmt.Sscan(portStr, &port)
	var ports []uint16
	for _, p := range cfg.Redirect {
		ports = append(ports, uint16(p))
	}
	if s.kernel.redirect == nil {
		k, err := setupKernel(cfg, s.addr, s.log)
		if err != nil {
			return err
		}
		s.kernel.redirect = k.redirect
		return nil
	}
	if len(ports) == 0 && s.kernel.routing == nil {
		err := s.kernel.redirect.Close()
		s.kernel.redirect = nil
		return err
	}
	return s.kernel.redirect.Update(ports, uint16(port))
}
