package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/oneport/oneport/internal/discover"
)

// runDiscover lists the box's listening servers and what each one is.
func runDiscover(args []string, stdout, stderr io.Writer) int {
	return discoverSkipping(nil, args, stdout, stderr)
}

// discoverSkipping is runDiscover leaving out the listeners skip returns
// true for (discover.Scanner.Skip; nil leaves out none). Tests pass one
// that keeps only the servers they started.
func discoverSkipping(skip func(discover.Listener) bool, args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("oneport discover", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	asJSON := fl.Bool("json", false, "")
	timeout := fl.Duration("probe-timeout", discover.DefaultProbeTimeout, "")
	if err := fl.Parse(args); err != nil || fl.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: oneport discover [--json] [--probe-timeout D]")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	snap, err := (&discover.Scanner{Skip: skip, ProbeTimeout: *timeout}).Scan(ctx)
	if err != nil {
		return failed(stderr, "oneport discover:", err)
	}
	if err := discover.Write(stdout, snap, *asJSON); err != nil {
		return failed(stderr, "oneport discover:", err)
	}
	return 0
}
