package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/oneport/oneport/internal/discover"
)

// runDiscover lists the box's listening servers and what each one is.
func runDiscover(args []string, stdout, stderr io.Writer) int {
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
	snap, err := (&discover.Scanner{ProbeTimeout: *timeout}).Scan(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "oneport discover:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		routes := map[string][]string{}
		for _, r := range discover.Routes(snap) {
			routes[r.Path] = r.Upstreams
		}
		err = enc.Encode(struct {
			*discover.Snapshot
			Routes map[string][]string `json:"routes"`
		}{snap, routes})
	} else {
		err = discover.WriteTable(stdout, snap)
	}
	if err != nil {
		fmt.Fprintln(stderr, "oneport discover:", err)
		return 1
	}
	return 0
}
