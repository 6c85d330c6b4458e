package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/admin"
)

// runStatus prints listeners, routes, upstream health and connections.
func runStatus(args []string, stdout, stderr io.Writer) int {
	_, client, err := clientFlags("oneport status", args, nil)
	if err != nil {
		fmt.Fprintln(stderr, "usage: oneport status [--admin-socket PATH]")
		return 2
	}
	var st admin.Status
	if err := client.Call("GET", "/status", nil, &st); err != nil {
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
	if st.Tunnel != "" {
		fmt.Fprintf(w, "tunnel\t%s\n", st.Tunnel)
	}
	var conns []string
	for p, n := range st.Connections {
		if n > 0 {
			conns = append(conns, fmt.Sprintf("%s %d", p, n))
		}
	}
	fmt.Fprintf(w, "connections\t%s\n", strings.Join(conns, ", "))
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
	if len(st.Keys) > 0 {
		fmt.Fprintln(stdout, "\nKEYS")
		printKeys(stdout, st.Keys)
	}
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
