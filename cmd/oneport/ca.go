package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/daemon"
)

// runCA prints the internal CA's root certificate (PEM, stdout) and its
// SHA-256 fingerprint (stderr), creating the CA on first use.
func runCA(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("oneport ca", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	dir := fl.String("state-dir", config.DefaultStateDir(), "")
	if err := fl.Parse(args); err != nil || fl.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: oneport ca [--state-dir DIR]")
		return 2
	}
	pem, fp, err := daemon.RootCA(*dir)
	if err != nil {
		return failed(stderr, "oneport ca:", err)
	}
	stdout.Write(pem)
	fmt.Fprintf(stderr, "SHA-256 fingerprint: %s\n", fp)
	return 0
}
