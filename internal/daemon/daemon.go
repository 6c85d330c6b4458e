package daemon

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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/admin"
	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/discover"
	"github.com/oneport/oneport/internal/tunnel"
	"github.com/oneport/oneport/mux"
	"github.com/oneport/oneport/sshfwd"
)

// Options are the parts of serving that the command line, tests and
// systemd provide.
type Options struct {
	// Load reads the configuration again for a reload: the command line
	// and the config file it names. Nil refuses reloads.
	Load func() (*config.Config, *config.Resolved, error)
	// Listener, if set, is served instead of listening on cfg.Listen.
	Listener net.Listener
	// Reload, if set, triggers reloads as SIGHUP does.
	Reload <-chan struct{}
	// OnReady is called with the served address once serving.
	OnReady func(net.Addr)
	// Notify sends a systemd notification; nil means sd.SdNotify.
	Notify func(state string)
	// AdminRetry bounds the wait between tries to take an admin socket a
	// draining oneport still holds; zero means the admin package's default.
	AdminRetry time.Duration
	// OnDiscover, if set, is called after each discovery scan has been
	// applied to the discovered routes.
	OnDiscover func(*discover.Snapshot)
	// DiscoverSkip, if set, is discovery's discover.Scanner.Skip: the
	// listeners it returns true for are neither probed nor routed. The
	// command line never sets it, so oneport discovers every server on
	// the box; tests set it so that they see only the servers they
	// started, not another test run's on the same machine.
	DiscoverSkip func(discover.Listener) bool
	// KeyFlush is how often keys' last use is written to the key store;
	// zero means every minute.
	KeyFlush time.Duration
}

// Run serves until SIGINT or SIGTERM, reloading on SIGHUP, with the
// socket systemd passed if there is one.
func Run(cfg *config.Config, res *config.Resolved, log *slog.Logger, opts Options) error {
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
	opts.Reload = reload
	if opts.Listener == nil {
		ln, err := activatedListener(log)
		if err != nil {
			return err
		}
		opts.Listener = ln
	}
	return Serve(ctx, cfg, res, log, opts)
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
	opts    Options
	addr    net.Addr
	handler *httproute.Handler
	ssh     swapTarget
	mux     *mux.Server
	kernel  *kernelSetup
	http    *httproute.Server
	tls     tlsTarget
	metrics *metrics
	disc    atomic.Pointer[discovery]
	page    *statusPage
	keys    *keyGate
	tunnel  *tunnel.Server
	gw      *gateways

	mu  sync.Mutex     // serializes reloads and admin changes
	cfg *config.Config // guarded by mu
	cur atomic.Pointer[config.Config]
}

func (s *server) notify(state string) {
	if s.opts.Notify != nil {
		s.opts.Notify(state)
		return
	}
	sd.SdNotify(false, state)
}

// Serve runs oneport until ctx is done, then shuts down gracefully within
// the configured grace period.
func Serve(ctx context.Context, cfg *config.Config, res *config.Resolved, log *slog.Logger, opts Options) error {
	ln := opts.Listener
	if ln == nil {
		var err error
		if ln, err = mux.Listen(ctx, "tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	s, err := newServer(ctx, ln.Addr(), cfg, res, log, opts)
	if err != nil {
		ln.Close()
		return err
	}
	muxDone := make(chan error, 1)
	served := make(chan struct{})
	go func() {
		defer close(served)
		muxDone <- s.mux.Serve(ln)
	}()
	adm := &admin.Server{Router: s.handler, Daemon: adminView{s}, Keys: s.keys, Log: log, Mu: &s.mu, Full: func() any { return s.facts("") }}
	stopAdmin, err := adm.Start(ctx, admin.Options{Socket: cfg.AdminSocket, Listen: cfg.AdminListen, Token: cfg.AdminToken,
		RetryMin: opts.AdminRetry, RetryMax: 50 * opts.AdminRetry})
	if err != nil {
		// The admin API is a convenience: serving goes on without it.
		log.Error("admin API disabled", "err", err)
		stopAdmin = func() {}
	}
	defer stopAdmin()
	warnSSHTarget(cfg.SSH, log)
	s.startDiscovery(ctx, cfg, res)
	log.Info("oneport serving", "listen", ln.Addr().String(), "ssh", cfg.SSH,
		"routes", admin.Summary(res.Table), "sniff_timeout", time.Duration(cfg.SniffTimeout), "procs", runtime.GOMAXPROCS(0))
	s.notify(sd.SdNotifyReady)
	s.notify("STATUS=" + s.status(res.Table))
	if opts.OnReady != nil {
		opts.OnReady(ln.Addr())
	}
	serveErr := s.loop(ctx, muxDone)
	s.shutdown(served)
	if err := <-muxDone; serveErr == nil && !errors.Is(err, mux.ErrServerClosed) {
		serveErr = err
	}
	return serveErr
}

// newServer builds what serves addr: router, kernel redirect, SSH target,
// HTTP server, TLS terminator and mux.
func newServer(ctx context.Context, addr net.Addr, cfg *config.Config, res *config.Resolved, log *slog.Logger, opts Options) (*server, error) {
	s := &server{log: log, opts: opts, addr: addr, cfg: cfg}
	s.cur.Store(cfg)
	s.metrics = newMetrics(s)
	s.page = newStatusPage(s)
	handler, err := httproute.NewHandler(nil, httproute.WithLogger(log), httproute.WithObserver(s.metrics.observe),
		httproute.WithAccessAttrs(keyAttrs))
	if err != nil {
		return nil, err
	}
	if s.gw, err = newGateways(log, s.metrics.reg); err != nil {
		return nil, err
	}
	s.gw.ModelAllowed, s.gw.KeyName = keyAllowsModel, keyName
	table, commit, err := s.gw.prepare(res)
	if err != nil {
		return nil, err
	}
	handler.SetTable(table)
	commit()
	s.handler = handler
	if s.kernel, err = setupKernel(cfg, addr, log); err != nil {
		return nil, err
	}
	front, err := s.setupKeys(cfg)
	if err != nil {
		s.kernel.Close()
		return nil, err
	}
	s.ssh.Store(newSSHTarget(cfg, log))
	s.tunnel = newTunnel(s, cfg, log)
	s.http = httproute.NewServer(front, log)
	s.http.Engine = cfg.HTTPEngine
	s.setTLS(ctx, cfg)
	s.mux = &mux.Server{
		SSH:              &s.ssh,
		HTTP:             s.http,
		TLS:              &mux.SNIRouter{Routes: passthroughRoutes(cfg, log), Default: &s.tls},
		OnTimeout:        choose(cfg.OnTimeout, &s.ssh, log),
		Fallback:         choose(cfg.Fallback, &s.ssh, log),
		SniffTimeout:     time.Duration(cfg.SniffTimeout),
		MaxPendingSniffs: cfg.MaxPendingSniffs,
		MaxConns:         cfg.MaxConns,
		Logger:           log,
	}
	for _, p := range res.Probes {
		s.mux.Probes = append(s.mux.Probes, mux.Probe{Name: p.Name, Prefix: p.Prefix, Regexp: p.Regexp,
			Target: &sshfwd.Forwarder{Addr: p.Target, Name: p.Name + " " + p.Target, Logger: log}})
	}
	return s, nil
}

// loop serves reloads and the watchdog until ctx is done or the mux
// stops; it returns the mux's error in that case, leaving it in muxDone.
func (s *server) loop(ctx context.Context, muxDone chan error) error {
	wdCtx, wdStop := context.WithCancel(ctx)
	wdDone := make(chan struct{})
	go func() {
		defer close(wdDone)
		s.watchdog(wdCtx)
	}()
	defer func() {
		wdStop()
		<-wdDone
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-muxDone:
			muxDone <- err
			return err
		case <-s.opts.Reload:
			s.reload()
		}
	}
}

// shutdown drains open connections within the grace period, waits for
// the mux's Serve to return (served), then releases everything newServer
// set up.
func (s *server) shutdown(served <-chan struct{}) {
	s.notify(sd.SdNotifyStopping)
	grace := time.Duration(s.config().ShutdownGrace)
	s.log.Info("shutting down", "grace", grace)
	// First, so new connections to the redirected ports reach sshd
	// directly while open sessions drain.
	if err := s.kernel.redirectOff(); err != nil {
		s.log.Warn("redirect removal failed", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	// Stop accepting, and let connections already accepted reach their
	// targets before those shut down: a client that connected just before
	// the signal is served, not dropped.
	s.mux.StopAccepting(sctx)
	var sw sync.WaitGroup
	sw.Add(2)
	go func() { defer sw.Done(); s.http.Shutdown(sctx) }()
	go func() {
		defer sw.Done()
		if err := s.mux.Shutdown(sctx); err != nil {
			s.log.Warn("grace period over; closed remaining connections", "err", err)
		}
	}()
	sw.Wait()
	s.http.Close()
	<-served
	s.handler.CloseIdleConnections()
	s.stopDiscovery()
	s.keys.close()
	s.gw.close()
	s.closeTLS()
	if err := s.kernel.Close(); err != nil {
		s.log.Warn("kernel cleanup failed", "err", err)
	}
}

// config returns the configuration in force, without locking.
func (s *server) config() *config.Config { return s.cur.Load() }

func (s *server) status(t *httproute.Table) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked(t)
}

func (s *server) statusLocked(t *httproute.Table) string {
	st := fmt.Sprintf("serving SSH (to %s) and HTTP (%d routes) on %s", s.cfg.SSH, t.Len(), s.addr)
	if s.kernel.redirect != nil && len(s.kernel.redirect.Config().Ports) > 0 {
		st += fmt.Sprintf(", redirecting %v", s.kernel.redirect.Config().Ports)
	}
	return st
}

// serveHTTP answers ACME HTTP-01 challenges and, if configured, metrics
// and the SSH tunnel, then routes.
func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if mp := s.config().MetricsPath; mp != "" && r.URL.Path == mp {
		s.metrics.handler().ServeHTTP(w, r)
		return
	}
	if s.serveTLSHelpers(w, r) || s.serveTunnel(w, r) || s.serveStatus(w, r) {
		return
	}
	setHSTS(s.config(), w, r)
	s.routeHTTP(w, r)
}

// oneLine joins a multi-line error for a log attribute or a status.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
