package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/oneport/oneport/internal/admin"
)

// runRoute is oneport route ls|add|set|rm|tag.
func runRoute(args []string, stdout, stderr io.Writer) int {
	usage := "usage: oneport route ls | add SPEC [--name N] [--persist] | set NAME SPEC [--persist] | rm NAME [--persist] | tag NAME TAG [--persist]  (each takes --admin-socket PATH)"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var name string
	var persist bool
	fl, client, err := clientFlags("oneport route", args[1:], func(fl *flag.FlagSet) {
		fl.StringVar(&name, "name", "", "")
		fl.BoolVar(&persist, "persist", false, "")
	})
	if err != nil {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var routes []admin.Route
	switch {
	case args[0] == "ls" && fl.NArg() == 0:
		routes, err = client.Routes()
	case args[0] == "add" && fl.NArg() == 1:
		routes, err = client.AddRoute(admin.Route{Name: name, Spec: fl.Arg(0)}, persist)
	case args[0] == "set" && fl.NArg() == 2: // replaces the route, keeping its name
		routes, err = client.SetRoute(fl.Arg(0), fl.Arg(1), persist)
	case args[0] == "rm" && fl.NArg() == 1:
		routes, err = client.RemoveRoute(fl.Arg(0), persist)
	case args[0] == "tag" && fl.NArg() == 2:
		routes, err = client.TagRoute(fl.Arg(0), fl.Arg(1), persist)
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if err != nil {
		return failed(stderr, "oneport route:", err)
	}
	admin.WriteRoutes(stdout, routes)
	return 0
}
