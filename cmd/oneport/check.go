package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/oneport/oneport/internal/auth"
	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/daemon"
)

// runCheck validates a config file and prints what it resolves to.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("oneport check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "")
	if err := fs.Parse(args); err != nil || *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: oneport check --config FILE")
		return 2
	}
	cfg, err := config.Load(*path)
	var res *config.Resolved
	if err == nil {
		cfg.Defaults()
		res, err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "oneport check: %s is invalid:\n%s\n", *path, indent(err.Error()))
		return 1
	}
	cfg.Describe(stdout, res)
	if err := daemon.CheckSSHTarget(cfg.SSH); err != nil {
		fmt.Fprintf(stderr, "oneport check: warning: %v\n", err)
	}
	if err := (auth.Store{Path: cfg.KeyPath()}).Check(stdout); err != nil {
		fmt.Fprintf(stderr, "oneport check: %v\n", err)
		return 1
	}
	return 0
}
