package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"

	"github.com/oneport/oneport/httproute"
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
	q := url.Values{}
	if persist {
		q.Set("persist", "true")
	}
	switch {
	case (args[0] == "drain" || args[0] == "enable") && fl.NArg() == 1:
		var ups []httproute.UpstreamStatus
		if err := client.Call("POST", "/upstreams/"+url.PathEscape(fl.Arg(0))+"/"+args[0], nil, &ups); err != nil {
			fmt.Fprintln(stderr, "oneport upstream:", err)
			return 1
		}
		for _, u := range ups {
			fmt.Fprintf(stdout, "%s\t%s\n", u.Address, admin.UpstreamState(u))
		}
		return 0
	case (args[0] == "add" || args[0] == "rm") && fl.NArg() == 2:
		q.Set("route", fl.Arg(0))
		var routes []admin.Route
		if args[0] == "add" {
			err = client.Call("POST", "/upstreams?"+q.Encode(), admin.Upstream{Address: fl.Arg(1), Weight: weight, Tags: tags}, &routes)
		} else {
			err = client.Call("DELETE", "/upstreams/"+url.PathEscape(fl.Arg(1))+"?"+q.Encode(), nil, &routes)
		}
		if err != nil {
			fmt.Fprintln(stderr, "oneport upstream:", err)
			return 1
		}
		admin.WriteRoutes(stdout, routes)
		return 0
	}
	fmt.Fprintln(stderr, usage)
	return 2
}
