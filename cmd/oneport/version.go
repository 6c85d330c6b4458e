package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// runVersion prints the module version oneport was built as.
func runVersion(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, "oneport", version())
	return 0
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
