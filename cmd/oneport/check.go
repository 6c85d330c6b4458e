package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"

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
	return checkKeys(cfg, stdout, stderr)
}

// checkKeys reads the key store as a start would: one that does not parse
// fails the check; one this user may not read is only mentioned.
func checkKeys(cfg *config.Config, stdout, stderr io.Writer) int {
	keys, err := auth.Store{Path: cfg.KeyPath()}.Load()
	switch {
	case errors.Is(err, fs.ErrPermission):
		fmt.Fprintf(stdout, "keys: %s is not readable by this user; not checked\n", cfg.KeyPath())
	case err != nil:
		fmt.Fprintf(stderr, "oneport check: %v\n", err)
		return 1
	case len(keys) > 0:
		fmt.Fprintf(stdout, "keys: %d in %s; every HTTP request needs one unless its route sets auth = \"none\"\n", len(keys), cfg.KeyPath())
	}
	return 0
}
