package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/daemon"
)

// runCerts lists the certificates in the state directory and the files
// the config names.
func runCerts(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("oneport certs", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	dir := fl.String("state-dir", config.DefaultStateDir(), "")
	cfgPath := fl.String("config", "", "")
	if err := fl.Parse(args); err != nil || fl.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: oneport certs [--state-dir DIR] [--config FILE]")
		return 2
	}
	var files []config.CertFile
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return failed(stderr, "oneport certs:", err)
		}
		files = cfg.TLS.Certs
	}
	certs := daemon.ListCerts(*dir, files, func(path string, err error) {
		fmt.Fprintf(stderr, "oneport certs: %s: %v\n", path, err)
	})
	if len(certs) == 0 {
		fmt.Fprintf(stdout, "no certificates in %s\n", *dir)
		return 0
	}
	daemon.WriteCerts(stdout, certs, time.Now())
	return 0
}
