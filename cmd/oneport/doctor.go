package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/oneport/oneport/internal/doctor"
)

// runDoctor checks this box for what stops oneport working; it exits 1
// when a check fails. It hands over to package doctor.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("oneport doctor", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	asJSON := fl.Bool("json", false, "")
	path := fl.String("config", "", "")
	listen := fl.String("listen", "", "")
	ssh := fl.String("ssh", "", "")
	if err := fl.Parse(args); err != nil || fl.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: oneport doctor [--json] [--config FILE] [--listen ADDR] [--ssh ADDR]")
		return 2
	}
	env, err := doctor.Load(*path, *listen, *ssh)
	if err != nil {
		fmt.Fprintln(stderr, "oneport doctor:", err)
		return 2
	}
	results := doctor.Run(context.Background(), env)
	if err := doctor.Write(stdout, results, *asJSON); err != nil {
		return failed(stderr, "oneport doctor:", err)
	}
	if doctor.Failed(results) {
		return 1
	}
	return 0
}
