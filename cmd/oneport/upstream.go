package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/oneport/oneport/internal/admin"
)

// runUpstream is oneport upstream drain|enable ADDR and add|rm ROUTE ADDR.
func runUpstream(args []string, stdout, stderr io.Writer) int {
	usage := "usage: oneport upstream drain|enable ADDRESS | add ROUTE ADDRESS [--weight N] [--tag T]... [--persist] | rm ROUTE ADDRESS [--persist]  (each takes --admin-socket PATH)"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var weight int
	var tags stringList
	var persist bool
	fl, client, err := clientFlags("oneport upstream", args[1:], func(fl *flag.FlagSet) {
		fl.IntVar(&weight, "weight", 0, "")
		fl.Var(&tags, "tag", "")
		fl.BoolVar(&persist, "persist", false, "")
	})
	if err != nil {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch {
	case (args[0] == "drain" || args[0] == "enable") && fl.NArg() == 1:
		ups, err := client.UpstreamOp(fl.Arg(0), args[0])
		if err != nil {
			return failed(stderr, "oneport upstream:", err)
		}
		for _, u := range ups {
			fmt.Fprintf(stdout, "%s\t%s\n", u.Address, admin.UpstreamState(u))
		}
		return 0
	case (args[0] == "add" || args[0] == "rm") && fl.NArg() == 2:
		var routes []admin.Route
		if args[0] == "add" {
			routes, err = client.AddUpstream(fl.Arg(0), admin.Upstream{Address: fl.Arg(1), Weight: weight, Tags: tags}, persist)
		} else {
			routes, err = client.RemoveUpstream(fl.Arg(0), fl.Arg(1), persist)
		}
		if err != nil {
			return failed(stderr, "oneport upstream:", err)
		}
		admin.WriteRoutes(stdout, routes)
		return 0
	}
	fmt.Fprintln(stderr, usage)
	return 2
}
