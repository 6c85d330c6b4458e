package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/oneport/oneport/httproute"
)

// callAdmin sends one request to the admin API and decodes its JSON
// answer into out; an error answer becomes an error with its message.
func callAdmin(socket, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://oneport"+path, rd)
	if err != nil {
		return err
	}
	resp, err := adminClient(socket).Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w (is oneport running? --admin-socket sets the path)", socket, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var e apiError
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("admin API: %s", resp.Status)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// clientFlags parses --admin-socket (and --persist, --name where given).
func clientFlags(name string, args []string, extra func(*flag.FlagSet)) (*flag.FlagSet, string, error) {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	socket := fl.String("admin-socket", defaultAdminSocket(), "")
	if extra != nil {
		extra(fl)
	}
	err := parseInterspersed(fl, args)
	return fl, *socket, err
}

// parseInterspersed parses flags placed before, between or after the
// positional arguments, which stay in order in fl.Args().
func parseInterspersed(fl *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			return err
		}
		if fl.NArg() == 0 {
			break
		}
		pos = append(pos, fl.Arg(0))
		args = fl.Args()[1:]
	}
	return fl.Parse(append([]string{"--"}, pos...))
}

// runStatus prints listeners, routes, upstream health and connections.
func runStatus(args []string, stdout, stderr io.Writer) int {
	_, socket, err := clientFlags("oneport status", args, nil)
	if err != nil {
		fmt.Fprintln(stderr, "usage: oneport status [--admin-socket PATH]")
		return 2
	}
	var st statusJSON
	if err := callAdmin(socket, "GET", "/status", nil, &st); err != nil {
		fmt.Fprintln(stderr, "oneport status:", err)
		return 1
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "listen\t%s\n", st.Listen)
	fmt.Fprintf(w, "ssh\t%s\n", st.SSH)
	if len(st.Redirect) > 0 {
		fmt.Fprintf(w, "redirect\ttcp %v -> listen (crash-safe: %v)\n", st.Redirect, st.CrashSafe)
	}
	fmt.Fprintf(w, "tls\t%s\n", st.TLS)
	var conns []string
	for p, n := range st.Connections {
		if n > 0 {
			conns = append(conns, fmt.Sprintf("%s %d", p, n))
		}
	}
	fmt.Fprintf(w, "connections\t%s\n", strings.Join(append(conns, "")[:max(len(conns), 1)], ", "))
	w.Flush()
	fmt.Fprintln(stdout, "\nROUTES")
	printRoutes(stdout, st.Routes)
	fmt.Fprintln(stdout, "\nUPSTREAMS")
	w = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ADDRESS\tSTATE\tIN FLIGHT")
	for _, u := range st.Upstreams {
		fmt.Fprintf(w, "%s\t%s\t%d\n", u.Address, upstreamState(u), u.Active)
	}
	w.Flush()
	return 0
}

func upstreamState(u httproute.UpstreamStatus) string {
	switch {
	case u.Drained:
		return "drained"
	case !u.Healthy:
		return "unhealthy"
	case u.Ejected:
		return "taken out (failures)"
	}
	return "healthy"
}

func printRoutes(w io.Writer, routes []routeJSON) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSPEC\tPOLICY\tTAG")
	for _, r := range routes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Spec, cmpOr(r.Policy, "least_conn"), r.Tag)
	}
	tw.Flush()
}

// runRoute is oneport route add|rm|ls|tag.
func runRoute(args []string, stdout, stderr io.Writer) int {
	usage := "usage: oneport route ls | add SPEC [--name N] [--persist] | rm NAME [--persist] | tag NAME TAG [--persist]  (each takes --admin-socket PATH)"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var name string
	var persist bool
	fl, socket, err := clientFlags("oneport route", args[1:], func(fl *flag.FlagSet) {
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
	var routes []routeJSON
	switch {
	case args[0] == "ls" && fl.NArg() == 0:
		err = callAdmin(socket, "GET", "/routes", nil, &routes)
	case args[0] == "add" && fl.NArg() == 1:
		err = callAdmin(socket, "POST", "/routes"+q, routeJSON{Name: name, Spec: fl.Arg(0)}, &routes)
	case args[0] == "rm" && fl.NArg() == 1:
		err = callAdmin(socket, "DELETE", "/routes/"+url.PathEscape(fl.Arg(0))+q, nil, &routes)
	case args[0] == "tag" && fl.NArg() == 2:
		tag := fl.Arg(1)
		err = callAdmin(socket, "POST", "/tag/"+url.PathEscape(fl.Arg(0))+q, map[string]*string{"tag": &tag}, &routes)
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "oneport route:", err)
		return 1
	}
	printRoutes(stdout, routes)
	return 0
}

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
	fl, socket, err := clientFlags("oneport upstream", args[1:], func(fl *flag.FlagSet) {
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
		if err := callAdmin(socket, "POST", "/upstreams/"+url.PathEscape(fl.Arg(0))+"/"+args[0], nil, &ups); err != nil {
			fmt.Fprintln(stderr, "oneport upstream:", err)
			return 1
		}
		for _, u := range ups {
			fmt.Fprintf(stdout, "%s\t%s\n", u.Address, upstreamState(u))
		}
		return 0
	case (args[0] == "add" || args[0] == "rm") && fl.NArg() == 2:
		q.Set("route", fl.Arg(0))
		var routes []routeJSON
		if args[0] == "add" {
			err = callAdmin(socket, "POST", "/upstreams?"+q.Encode(), upstreamJSON{Address: fl.Arg(1), Weight: weight, Tags: tags}, &routes)
		} else {
			err = callAdmin(socket, "DELETE", "/upstreams/"+url.PathEscape(fl.Arg(1))+"?"+q.Encode(), nil, &routes)
		}
		if err != nil {
			fmt.Fprintln(stderr, "oneport upstream:", err)
			return 1
		}
		printRoutes(stdout, routes)
		return 0
	}
	fmt.Fprintln(stderr, usage)
	return 2
}
