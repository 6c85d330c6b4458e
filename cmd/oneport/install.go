package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/oneport/oneport/packaging"
)

// runInstall prints, or with --write writes, what the .deb installs, for a
// box without the package: it hands over to package packaging.
func runInstall(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("oneport install", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	write := fl.Bool("write", false, "")
	root := fl.String("root", "/", "")
	if err := fl.Parse(args); err != nil || fl.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: oneport install [--write] [--root DIR]")
		return 2
	}
	bin, err := os.Executable()
	if err == nil {
		bin, err = filepath.EvalSymlinks(bin)
	}
	if err != nil {
		return failed(stderr, "oneport install:", err)
	}
	if !*write {
		packaging.Print(stdout, bin)
		return 0
	}
	if err := packaging.Install(stdout, *root, bin); err != nil {
		return failed(stderr, "oneport install:", err)
	}
	return 0
}
