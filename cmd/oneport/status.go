package main

import (
	"fmt"
	"io"

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
		return failed(stderr, "oneport status:", err)
	}
	admin.WriteStatus(stdout, st)
	return 0
}
