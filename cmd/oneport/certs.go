package main

import (
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
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
			fmt.Fprintln(stderr, "oneport certs:", err)
			return 1
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
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAMES\tISSUER\tSOURCE\tEXPIRES")
	for _, c := range certs {
		exp := c.Expires.Format(time.RFC3339)
		if time.Now().After(c.Expires) {
			exp += " (EXPIRED)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Names, c.Issuer, c.Source, exp)
	}
	w.Flush()
	return 0
}
