package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"

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
	q := ""
	if persist {
		q = "?persist=true"
	}
	var routes []admin.Route
	switch {
	case args[0] == "ls" && fl.NArg() == 0:
		err = client.Call("GET", "/routes", nil, &routes)
	case args[0] == "add" && fl.NArg() == 1:
		err = client.Call("POST", "/routes"+q, admin.Route{Name: name, Spec: fl.Arg(0)}, &routes)
	case args[0] == "set" && fl.NArg() == 2: // replaces the route, keeping its name (PUT /routes/NAME)
		err = client.Call("PUT", "/routes/"+url.PathEscape(fl.Arg(0))+q, admin.Route{Spec: fl.Arg(1)}, &routes)
	case args[0] == "rm" && fl.NArg() == 1:
		err = client.Call("DELETE", "/routes/"+url.PathEscape(fl.Arg(0))+q, nil, &routes)
	case args[0] == "tag" && fl.NArg() == 2:
		tag := fl.Arg(1)
		err = client.Call("POST", "/tag/"+url.PathEscape(fl.Arg(0))+q, map[string]*string{"tag": &tag}, &routes)
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "oneport route:", err)
		return 1
	}
	admin.WriteRoutes(stdout, routes)
	return 0
}
