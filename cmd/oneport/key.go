package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/oneport/oneport/internal/admin"
	"github.com/oneport/oneport/internal/auth"
)

const keyUsage = `usage: oneport key add NAME [--routes R,...] [--models M,...] [--rate N/min] [--concurrency N] [--expires DATE] [--admin]
       oneport key ls
       oneport key rm NAME
  (each takes --admin-socket PATH, and --config FILE or --key-file PATH for when no oneport runs)`

// runKey is oneport key add|ls|rm: it hands over to admin.KeyEditor.
func runKey(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, keyUsage)
		return 2
	}
	var spec auth.Spec
	var routes, models, rate, expires, cfgPath, keyFile string
	fl, client, err := clientFlags("oneport key", args[1:], func(fl *flag.FlagSet) {
		fl.StringVar(&routes, "routes", "", "")
		fl.StringVar(&models, "models", "", "")
		fl.StringVar(&rate, "rate", "", "")
		fl.IntVar(&spec.Concurrency, "concurrency", 0, "")
		fl.StringVar(&expires, "expires", "", "")
		fl.BoolVar(&spec.Admin, "admin", false, "")
		fl.StringVar(&cfgPath, "config", "", "")
		fl.StringVar(&keyFile, "key-file", "", "")
	})
	if err == nil {
		err = admin.KeySpec(&spec, routes, models, rate, expires, time.Now())
	}
	if err != nil {
		fmt.Fprintf(stderr, "oneport key: %v\n%s\n", err, keyUsage)
		return 2
	}
	ed := admin.KeyEditor{Client: client, Notice: stderr, File: func() (string, error) { return admin.KeyFile(cfgPath, keyFile) }}
	switch {
	case args[0] == "add" && fl.NArg() == 1:
		spec.Name = fl.Arg(0)
		nk, err := ed.Add(spec)
		if err != nil {
			return failed(stderr, "oneport key add:", err)
		}
		fmt.Fprintf(stderr, "key %q made; it is shown this once, so keep it now:\n", nk.Name)
		fmt.Fprintln(stdout, nk.Key)
		return 0
	case args[0] == "ls" && fl.NArg() == 0:
		keys, err := ed.List()
		if err != nil {
			return failed(stderr, "oneport key ls:", err)
		}
		admin.WriteKeys(stdout, keys)
		return 0
	case args[0] == "rm" && fl.NArg() == 1:
		if err := ed.Remove(fl.Arg(0)); err != nil {
			return failed(stderr, "oneport key rm:", err)
		}
		fmt.Fprintf(stderr, "key %q removed\n", fl.Arg(0))
		return 0
	}
	fmt.Fprintln(stderr, keyUsage)
	return 2
}
