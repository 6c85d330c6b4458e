package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/mux"
	"github.com/oneport/oneport/netfilter"
	"github.com/oneport/oneport/sshfwd"
)

// serve runs oneport until SIGINT or SIGTERM. onReady, if set, is called
// with the listening address once connections are being served.
func serve(cfg *Config, res *resolved, log *slog.Logger, onReady func(net.Addr)) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveContext(ctx, cfg, res, log, onReady)
}

// serveContext runs oneport until ctx is done, then shuts down gracefully
// within the configured grace period.
func serveContext(ctx context.Context, cfg *Config, res *resolved, log *slog.Logger, onReady func(net.Addr)) error {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	handler, err := httproute.NewHandler(nil, httproute.WithLogger(log))
	if err != nil {
		ln.Close()
		return err
	}
	handler.SetTable(res.table)
	httpLn := mux.NewListenerTarget("http", ln.Addr())
	hs := httproute.NewServer(handler, log)
	kernel, err := setupKernel(cfg, ln.Addr(), log)
	if err != nil {
		ln.Close()
		return err
	}
	sshTarget := &sshfwd.Forwarder{Addr: cfg.SSH, Logger: log, Transparent: cfg.Transparent}
	if cfg.RedirectLocal || cfg.Transparent {
		// Keeps our own dial to sshd out of the local redirect, and marks
		// transparent connections for their policy routing.
		sshTarget.Mark = netfilter.Mark
	}
	m := &mux.Server{
		SSH:              sshTarget,
		HTTP:             httpLn,
		TLS:              refuse{"tls", "TLS termination is not configured"},
		OnTimeout:        choose(cfg.OnTimeout, sshTarget, log),
		Fallback:         choose(cfg.Fallback, sshTarget, log),
		SniffTimeout:     time.Duration(cfg.SniffTimeout),
		MaxPendingSniffs: cfg.MaxPendingSniffs,
		MaxConns:         cfg.MaxConns,
		Logger:           log,
	}
	for _, p := range res.probes {
		m.Probes = append(m.Probes, mux.Probe{Name: p.name, Prefix: p.prefix, Regexp: p.re,
			Target: &sshfwd.Forwarder{Addr: p.target, Name: p.name + " " + p.target, Logger: log}})
	}

	var wg sync.WaitGroup
	wg.Add(2)
	httpDone := make(chan error, 1)
	go func() {
		defer wg.Done()
		httpDone <- hs.Serve(httpLn)
	}()
	muxDone := make(chan error, 1)
	go func() {
		defer wg.Done()
		muxDone <- m.Serve(ln)
	}()
	log.Info("oneport serving", "listen", ln.Addr().String(), "ssh", cfg.SSH,
		"routes", routeSummary(res.table), "sniff_timeout", time.Duration(cfg.SniffTimeout))
	if onReady != nil {
		onReady(ln.Addr())
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-muxDone:
		muxDone <- serveErr
	}
	log.Info("shutting down", "grace", time.Duration(cfg.ShutdownGrace))
	// First, so new connections to the redirected ports reach sshd
	// directly while open sessions drain.
	if err := kernel.redirectOff(); err != nil {
		log.Warn("redirect removal failed", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownGrace))
	defer cancel()
	var sw sync.WaitGroup
	sw.Add(2)
	go func() { defer sw.Done(); hs.Shutdown(sctx) }()
	go func() {
		defer sw.Done()
		if err := m.Shutdown(sctx); err != nil {
			log.Warn("grace period over; closed remaining connections", "err", err)
		}
	}()
	sw.Wait()
	httpLn.Close()
	hs.Close()
	wg.Wait()
	handler.CloseIdleConnections()
	if err := kernel.Close(); err != nil {
		log.Warn("kernel cleanup failed", "err", err)
	}
	if err := <-muxDone; serveErr == nil && !errors.Is(err, mux.ErrServerClosed) {
		serveErr = err
	}
	return serveErr
}

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
