// Package doctor checks a box for what stops oneport working and says the
// fix for each problem: capabilities, containers, kernel support for the
// crash-safe redirect, leftovers of an sslh setup, sshd, the listen port,
// the clock, DNS, the systemd unit and certificates.
//
// Every check reads the box only through Env, so each one is tested with
// an injected environment; System fills Env from the real box.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"
)

// Level is a check's verdict.
type Level string

// Verdicts, from fine to broken.
const (
	OK   Level = "OK"
	Warn Level = "WARN"
	Fail Level = "FAIL"
)

// Result is one check's verdict, what it found, and the fix when it is
// not OK.
type Result struct {
	Check  string `json:"check"`
	Level  Level  `json:"level"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// check is one check.
type check struct {
	name string
	run  func(ctx context.Context, e *Env) Result
}

var checks = []check{
	{"capabilities", checkCaps},
	{"container", checkContainer},
	{"kernel", checkKernel},
	{"sslh", checkSSLH},
	{"port 22 redirect", checkRedirect22},
	{"sshd", checkSSHD},
	{"listen port", checkListenPort},
	{"clock", checkClock},
	{"hostnames", checkHostnames},
	{"systemd unit", checkUnit},
	{"certificates", checkCerts},
}

// Run runs every check, each bounded by a few seconds, in a fixed order.
func Run(ctx context.Context, e *Env) []Result {
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r := c.run(cctx, e)
		cancel()
		r.Check = c.name
		out = append(out, r)
	}
	return out
}

// Failed reports whether any result is a FAIL.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Level == Fail {
			return true
		}
	}
	return false
}

// WriteTable writes results as a table, each fix on a line of its own
// under its check.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Level, r.Check, r.Detail)
		if r.Fix != "" {
			for _, line := range strings.Split(r.Fix, "\n") {
				fmt.Fprintf(tw, "\t\t  fix: %s\n", line)
			}
		}
	}
	return tw.Flush()
}

// WriteJSON writes results as a JSON array.
func WriteJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rs)
}

func ok(format string, a ...any) Result { return Result{Level: OK, Detail: fmt.Sprintf(format, a...)} }

func warn(fix, format string, a ...any) Result {
	return Result{Level: Warn, Detail: fmt.Sprintf(format, a...), Fix: fix}
}

func fail(fix, format string, a ...any) Result {
	return Result{Level: Fail, Detail: fmt.Sprintf(format, a...), Fix: fix}
}

// minBuildYear is a lower bound of when any oneport was built, for builds
// without VCS information.
const minBuildYear = 2025

// BuildYear is the year of the commit this binary was built from, or
// minBuildYear when the build does not say.
func BuildYear() int {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.time" {
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil && t.Year() > minBuildYear {
					return t.Year()
				}
			}
		}
	}
	return minBuildYear
}

// Write writes rs as `oneport doctor` prints them: JSON when asJSON,
// else the table.
func Write(w io.Writer, rs []Result, asJSON bool) error {
	if asJSON {
		return WriteJSON(w, rs)
	}
	return WriteTable(w, rs)
}
