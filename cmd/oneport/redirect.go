package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/oneport/oneport/netfilter"
)

// runRedirect shows or clears the port redirect installed in the kernel.
func runRedirect(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || (args[0] != "status" && args[0] != "clear") {
		fmt.Fprintln(stderr, "usage: oneport redirect status|clear")
		return 2
	}
	cfg := netfilter.Config{}
	if args[0] == "clear" {
		removed, err := netfilter.Clear(cfg)
		switch {
		case errors.Is(err, netfilter.ErrHeld):
			fmt.Fprintln(stderr, "oneport redirect clear:", err, "- it is removed when that oneport stops")
			return 1
		case err != nil:
			return failed(stderr, "oneport redirect clear:", err)
		case removed:
			fmt.Fprintln(stdout, "removed the stale redirect table; port 22 reaches sshd directly")
		default:
			fmt.Fprintln(stdout, "no redirect table installed")
		}
		return 0
	}
	st, err := netfilter.Status(cfg)
	if err != nil {
		return failed(stderr, "oneport redirect status:", err)
	}
	st.Write(stdout, cfg.Table)
	return 0
}
