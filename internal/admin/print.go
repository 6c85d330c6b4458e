package admin

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/oneport/oneport/httproute"
)

// WriteStatus writes st as `oneport status` prints it: listeners,
// routes, upstream health, connections and, when any, keys.
func WriteStatus(w io.Writer, st Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "listen\t%s\n", st.Listen)
	fmt.Fprintf(tw, "ssh\t%s\n", st.SSH)
	if len(st.Redirect) > 0 {
		fmt.Fprintf(tw, "redirect\ttcp %v -> listen (crash-safe: %v)\n", st.Redirect, st.CrashSafe)
	}
	fmt.Fprintf(tw, "tls\t%s\n", st.TLS)
	if st.Tunnel != "" {
		fmt.Fprintf(tw, "tunnel\t%s\n", st.Tunnel)
	}
	var conns []string
	for p, n := range st.Connections {
		if n > 0 {
			conns = append(conns, fmt.Sprintf("%s %d", p, n))
		}
	}
	fmt.Fprintf(tw, "connections\t%s\n", strings.Join(conns, ", "))
	tw.Flush()
	fmt.Fprintln(w, "\nROUTES")
	WriteRoutes(w, st.Routes)
	fmt.Fprintln(w, "\nUPSTREAMS")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tSTATE\tIN FLIGHT")
	for _, u := range st.Upstreams {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", u.Address, UpstreamState(u), u.Active)
	}
	tw.Flush()
	if len(st.Keys) > 0 {
		fmt.Fprintln(w, "\nKEYS")
		WriteKeys(w, st.Keys)
	}
}

// UpstreamState is the one-word state of u `oneport status` shows.
func UpstreamState(u httproute.UpstreamStatus) string {
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

// WriteRoutes writes routes as the table `oneport route ls` prints.
func WriteRoutes(w io.Writer, routes []Route) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSPEC\tPOLICY\tTAG")
	for _, r := range routes {
		policy := r.Policy
		if policy == "" {
			policy = "least_conn"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Spec, policy, r.Tag)
	}
	tw.Flush()
}
