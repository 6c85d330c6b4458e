package discover

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes a snapshot as `oneport discover` prints it: one line
// per server, then the routes discovery would serve, with replicas named.
func WriteTable(w io.Writer, s *Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LISTEN\tKIND\tMODELS\tPROCESS\tDETAIL")
	for _, sv := range s.Servers {
		proc := sv.Process
		if sv.PID != 0 {
			proc = fmt.Sprintf("%s[%d]", sv.Process, sv.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", sv.Listen, sv.Kind, dash(strings.Join(sv.Models, ",")), dash(proc), sv.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	routes := Routes(s)
	if len(routes) == 0 {
		_, err := fmt.Fprintln(w, "\nno model servers or apps found to route")
		return err
	}
	fmt.Fprintln(w, "\nROUTES (with discover on)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range routes {
		note := ""
		if len(r.Upstreams) > 1 {
			note = fmt.Sprintf("%d replicas", len(r.Upstreams))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Path, strings.Join(r.Upstreams, ","), note)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteJSON writes a snapshot as `oneport discover --json` prints it: the
// snapshot's fields and "routes", each path with its upstreams.
func WriteJSON(w io.Writer, s *Snapshot) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	routes := map[string][]string{}
	for _, r := range Routes(s) {
		routes[r.Path] = r.Upstreams
	}
	return enc.Encode(struct {
		*Snapshot
		Routes map[string][]string `json:"routes"`
	}{s, routes})
}

// Write writes s as `oneport discover` prints it: JSON when asJSON, else
// the table.
func Write(w io.Writer, s *Snapshot, asJSON bool) error {
	if asJSON {
		return WriteJSON(w, s)
	}
	return WriteTable(w, s)
}
