package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/daemon"
)

// runServe is oneport with flags: serve until SIGINT or SIGTERM.
func runServe(args []string, stdout, stderr io.Writer) int {
	cfg, err := config.ParseFlags(args)
	if errors.Is(err, config.ErrHelp) {
		fmt.Fprint(stdout, usage())
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "oneport:", err)
		return 2
	}
	res, err := cfg.Validate()
	if err != nil {
		fmt.Fprintln(stderr, "oneport: invalid configuration:")
		fmt.Fprintln(stderr, indent(err.Error()))
		return 2
	}
	logOut := daemon.NewLineBatcher(stderr, daemon.LogFlushInterval)
	defer logOut.Flush()
	log, _ := daemon.NewLogger(cfg, logOut)
	reload := func() (*config.Config, *config.Resolved, error) { return config.LoadFlags(args) }
	if err := daemon.Run(cfg, res, log, daemon.Options{Load: reload}); err != nil {
		log.Error("oneport stopped", "err", err)
		return 1
	}
	return 0
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
