package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/oneport/oneport/internal/admin"
	"github.com/oneport/oneport/internal/config"
)

// clientFlags parses --admin-socket (and the flags extra adds) for the
// commands that talk to the admin API.
func clientFlags(name string, args []string, extra func(*flag.FlagSet)) (*flag.FlagSet, *admin.Client, error) {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	socket := fl.String("admin-socket", config.DefaultAdminSocket(), "")
	if extra != nil {
		extra(fl)
	}
	err := parseInterspersed(fl, args)
	return fl, admin.NewClient(*socket), err
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

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// failed prints "prefix err" and returns exit code 1.
func failed(stderr io.Writer, prefix string, err error) int {
	fmt.Fprintln(stderr, prefix, err)
	return 1
}
