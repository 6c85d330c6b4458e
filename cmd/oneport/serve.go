package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/mux"
	"github.com/oneport/oneport/netfilter"
	"github.com/oneport/oneport/sshfwd"
)

// runOptions are the parts of serving that tests and systemd replace.
type runOptions struct {
	// args are the command-line arguments; a reload parses them again,
	// with the config file they name.
	args []string
	// listener, if set, is served instead of listening on cfg.Listen.
	listener net.Listener
	// reload, if set, triggers reloads as SIGHUP does.
	reload <-chan struct{}
	// onReady is called with the served address once serving.
	onReady func(net.Addr)
	// notify sends a systemd notification; nil means daemon.SdNotify.
	notify func(state string)
}

// serve runs oneport until SIGINT or SIGTERM, reloading on SIGHUP.
func serve(cfg *Config, res *resolved, log *slog.Logger, opts runOptions) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	opts.reload = reload
	if opts.listener == nil {
		ln, err := activatedListener(log)
		if err != nil {
			return err
		}
		opts.listener = ln
	}
	return serveContext(ctx, cfg, res, log, opts)
}

// activatedListener returns the socket systemd passed (socket
// activation), or nil. go-systemd unsets LISTEN_* on the way, so this is
// called once.
func activatedListener(log *slog.Logger) (net.Listener, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	var out net.Listener
	for _, ln := range lns {
		switch {
		case ln == nil:
		case out == nil:
			out = ln
		default:
			log.Warn("socket activation passed more than one socket; serving the first", "ignored", ln.Addr().String())
			ln.Close()
		}
	}
	if out != nil {
		log.Info("using the socket passed by systemd; listen is ignored", "addr", out.Addr().String())
	}
	return out, nil
}

// server is a running oneport: what a reload may change lives here.
type server struct {
	log     *slog.Logger
	opts    runOptions
	addr    net.Addr
	handler *httproute.Handler
	ssh     swapTarget
	mux     *mux.Server
	kernel  *kernelSetup
	http    *httproute.Server
	tls     tlsTarget
	metrics *metrics

	mu  sync.Mutex // serializes reloads and admin changes
	cfg *Config    // guarded by mu
	cur atomic.Pointer[Config]
}

func (s *server) notify(state string) {
	if s.opts.notify != nil {
		s.opts.notify(state)
		return
	}
	daemon.SdNotify(false, state)
}

// serveContext runs oneport until ctx is done, then shuts down gracefully
// within the configured grace period.
func serveContext(ctx context.Context, cfg *Config, res *resolved, log *slog.Logger, opts runOptions) error {
	ln := opts.listener
	if ln == nil {
		var err error
		if ln, err = mux.Listen(ctx, "tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	s := &server{log: log, opts: opts, addr: ln.Addr(), cfg: cfg}
	s.cur.Store(cfg)
	s.metrics = newMetrics(s)
	handler, err := httproute.NewHandler(nil, httproute.WithLogger(log), httproute.WithObserver(s.metrics.observe))
	if err != nil {
		ln.Close()
		return err
	}
	handler.SetTable(res.table)
	s.handler = handler
	kernel, err := setupKernel(cfg, ln.Addr(), log)
	if err != nil {
		ln.Close()
		return err
	}
	s.kernel = kernel
	s.ssh.Store(newSSHTarget(cfg, log))
	hs := httproute.NewServer(http.HandlerFunc(s.serveHTTP), log)
	s.http = hs
	s.setTLS(ctx, cfg)
	s.mux = &mux.Server{
		SSH:              &s.ssh,
		HTTP:             hs,
		TLS:              &mux.SNIRouter{Routes: passthroughRoutes(cfg, log), Default: &s.tls},
		OnTimeout:        choose(cfg.OnTimeout, &s.ssh, log),
		Fallback:         choose(cfg.Fallback, &s.ssh, log),
		SniffTimeout:     time.Duration(cfg.SniffTimeout),
		MaxPendingSniffs: cfg.MaxPendingSniffs,
		MaxConns:         cfg.MaxConns,
		Logger:           log,
	}
	for _, p := range res.probes {
		s.mux.Probes = append(s.mux.Probes, mux.Probe{Name: p.name, Prefix: p.prefix, Regexp: p.re,
			Target: &sshfwd.Forwarder{Addr: p.target, Name: p.name + " " + p.target, Logger: log}})
	}

	var wg sync.WaitGroup
	wg.Add(1)
	muxDone := make(chan error, 1)
	go func() {
		defer wg.Done()
		muxDone <- s.mux.Serve(ln)
	}()
	stopAdmin, err := s.serveAdmin(cfg, log)
	if err != nil {
		// The admin API is a convenience: serving goes on without it.
		log.Error("admin API disabled", "err", err)
		stopAdmin = func() {}
	}
	defer stopAdmin()
	log.Info("oneport serving", "listen", ln.Addr().String(), "ssh", cfg.SSH,
		"routes", routeSummary(res.table), "sniff_timeout", time.Duration(cfg.SniffTimeout), "procs", runtime.GOMAXPROCS(0))
	s.notify(daemon.SdNotifyReady)
	s.notify("STATUS=" + s.status(res.table))
	if opts.onReady != nil {
		opts.onReady(ln.Addr())
	}
	wdCtx, wdStop := context.WithCancel(ctx)
	wdDone := make(chan struct{})
	go func() {
		defer close(wdDone)
		s.watchdog(wdCtx)
	}()

	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case serveErr = <-muxDone:
			muxDone <- serveErr
			break loop
		case <-opts.reload:
			s.reload()
		}
	}
	wdStop()
	<-wdDone
	s.notify(daemon.SdNotifyStopping)
	log.Info("shutting down", "grace", time.Duration(cfg.ShutdownGrace))
	// First, so new connections to the redirected ports reach sshd
	// directly while open sessions drain.
	if err := kernel.redirectOff(); err != nil {
		log.Warn("redirect removal failed", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.config().ShutdownGrace))
	defer cancel()
	// Stop accepting, and let connections already accepted reach their
	// targets before those shut down: a client that connected just before
	// the signal is served, not dropped.
	s.mux.StopAccepting(sctx)
	var sw sync.WaitGroup
	sw.Add(2)
	go func() { defer sw.Done(); hs.Shutdown(sctx) }()
	go func() {
		defer sw.Done()
		if err := s.mux.Shutdown(sctx); err != nil {
			log.Warn("grace period over; closed remaining connections", "err", err)
		}
	}()
	sw.Wait()
	hs.Close()
	wg.Wait()
	handler.CloseIdleConnections()
	if t := s.tls.term.Swap(nil); t != nil {
		t.Close()
	}
	if err := kernel.Close(); err != nil {
		log.Warn("kernel cleanup failed", "err", err)
	}
	if err := <-muxDone; serveErr == nil && !errors.Is(err, mux.ErrServerClosed) {
		serveErr = err
	}
	return serveErr
}

// config returns the configuration in force, without locking.
func (s *server) config() *Config { return s.cur.Load() }

func (s *server) status(t *httproute.Table) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked(t)
}

// reload parses the command line and config file again and applies what
// may change while serving: routes and upstreams, the SSH target, the
// redirect's ports. A config that does not validate changes nothing.
func (s *server) reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notify(daemon.SdNotifyReloading)
	defer s.notify(daemon.SdNotifyReady)
	cfg, err := parseServeFlags(s.opts.args, nil)
	var res *resolved
	if err == nil {
		res, err = cfg.validate()
	}
	if err != nil {
		s.log.Error("reload refused; still serving the previous configuration", "err", strings.ReplaceAll(err.Error(), "\n", "; "))
		s.notify("STATUS=reload refused: " + strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	if err := s.applyRedirect(cfg); err != nil {
		s.log.Error("reload refused; still serving the previous configuration", "err", err)
		s.notify("STATUS=reload refused: " + err.Error())
		return
	}
	s.handler.SetTable(res.table)
	if tlsChanged(s.cfg, cfg) {
		s.setTLS(context.Background(), cfg)
	} else if t := s.tls.term.Load(); t != nil {
		t.ReloadFiles()
	}
	if cfg.SSH != s.cfg.SSH {
		s.ssh.Store(newSSHTarget(cfg, s.log))
	}
	for _, k := range restartOnly(s.cfg, cfg) {
		s.log.Warn("changed setting needs a restart to apply", "setting", k)
	}
	s.cfg = cfg
	s.cur.Store(cfg)
	s.log.Info("reloaded", "routes", routeSummary(res.table), "ssh", cfg.SSH)
	s.notify("STATUS=" + s.statusLocked(res.table))
}

func (s *server) statusLocked(t *httproute.Table) string {
	st := fmt.Sprintf("serving SSH (to %s) and HTTP (%d routes) on %s", s.cfg.SSH, t.Len(), s.addr)
	if s.kernel.redirect != nil && len(s.kernel.redirect.Config().Ports) > 0 {
		st += fmt.Sprintf(", redirecting %v", s.kernel.redirect.Config().Ports)
	}
	return st
}

// setTLS builds the TLS terminator for cfg and swaps it in. If it cannot
// be built, TLS connections are refused with an error in the log, and
// everything else keeps serving: TLS must never cost the box its SSH.
func (s *server) setTLS(ctx context.Context, cfg *Config) {
	t, err := newTLS(ctx, cfg, listenPort(s.addr), s.http, &s.ssh, s.log)
	if err != nil {
		s.log.Error("TLS disabled", "err", err)
	} else if t != nil && t.CA != nil {
		s.log.Info("TLS terminated with the internal CA; trust its root with `oneport ca`", "fingerprint", t.CA.Fingerprint())
	}
	if old := s.tls.term.Swap(t); old != nil {
		old.Close()
	}
}

// serveHTTP answers ACME HTTP-01 challenges and, if configured, metrics,
// then routes.
func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if mp := s.config().MetricsPath; mp != "" && r.URL.Path == mp {
		s.metrics.handler().ServeHTTP(w, r)
		return
	}
	if httpsRedirect(s.config(), w, r) {
		return
	}
	if t := s.tls.term.Load(); t != nil && strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
		t.HTTPChallenge(s.handler).ServeHTTP(w, r)
		return
	}
	s.handler.ServeHTTP(w, r)
}

func tlsChanged(old, cur *Config) bool {
	return fmt.Sprint(old.TLS, old.StateDir, routeHosts(old)) != fmt.Sprint(cur.TLS, cur.StateDir, routeHosts(cur))
}

// applyRedirect moves the redirect to cfg's ports.
func (s *server) applyRedirect(cfg *Config) error {
	if slices.Equal(cfg.Redirect, s.cfg.Redirect) {
		return nil
	}
	if cfg.Transparent != s.cfg.Transparent || cfg.RedirectLocal != s.cfg.RedirectLocal ||
		!slices.Equal(cfg.RedirectIfaces, s.cfg.RedirectIfaces) || !slices.Equal(cfg.RedirectAddrs, s.cfg.RedirectAddrs) {
		return errors.New("transparent, redirect_local, redirect_interfaces and redirect_addresses change only with a restart")
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

// restartOnly names settings that differ and apply only at start.
func restartOnly(old, cur *Config) []string {
	var out []string
	for _, c := range []struct {
		name string
		same bool
	}{
		{"listen", old.Listen == cur.Listen},
		{"sniff_timeout", old.SniffTimeout == cur.SniffTimeout},
		{"on_timeout", old.OnTimeout == cur.OnTimeout},
		{"fallback", old.Fallback == cur.Fallback},
		{"max_pending_sniffs", old.MaxPendingSniffs == cur.MaxPendingSniffs},
		{"max_conns", old.MaxConns == cur.MaxConns},
		{"log_format", old.LogFormat == cur.LogFormat},
		{"log_level", old.LogLevel == cur.LogLevel},
		{"protocol", fmt.Sprint(old.Protocols) == fmt.Sprint(cur.Protocols)},
		{"tls.passthrough", fmt.Sprint(old.TLS.Passthrough) == fmt.Sprint(cur.TLS.Passthrough)},
		{"admin_socket", old.AdminSocket == cur.AdminSocket},
		{"admin_listen", old.AdminListen == cur.AdminListen && old.AdminToken == cur.AdminToken},
	} {
		if !c.same {
			out = append(out, c.name)
		}
	}
	return out
}

// watchdog pings systemd's watchdog while the mux serves: each ping
// follows a probe connection that went through the accept loop and the
// sniffer, so a wedged server stops pinging and systemd restarts it.
func (s *server) watchdog(ctx context.Context) {
	every, err := daemon.SdWatchdogEnabled(false)
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
		s.notify(daemon.SdNotifyWatchdog)
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

func newSSHTarget(cfg *Config, log *slog.Logger) *sshfwd.Forwarder {
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

func routeSummary(t *httproute.Table) string {
	if t.Len() == 0 {
		return "none"
	}
	var parts []string
	for _, r := range t.Routes() {
		parts = append(parts, r.Spec())
	}
	return strings.Join(parts, " ")
}
