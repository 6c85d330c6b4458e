// Command oneport lets one TCP port carry SSH, HTTP and TLS: it sniffs
// each connection's first bytes, sends SSH to sshd and routes HTTP by host
// and path to local servers.
//
// This package only reads the command line and hands over: the daemon
// lives in internal/daemon, settings in internal/config, the admin API in
// internal/admin. Each subcommand has a file of its own.
package main

import (
	"io"
	"os"

	"github.com/oneport/oneport/internal/daemon"
)

func main() {
	daemon.ApplyGCDefault(os.Getenv("GOGC"))
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// commands are the subcommands; anything else is serve's flags.
var commands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"version":  runVersion,
	"check":    runCheck,
	"redirect": runRedirect,
	"install":  runInstall,
	"ca":       runCA,
	"connect":  runConnect,
	"certs":    runCerts,
	"status":   runStatus,
	"route":    runRoute,
	"upstream": runUpstream,
	"discover": runDiscover,
	"doctor":   runDoctor,
	"key":      runKey,
	"help":     runHelp,
	"-h":       runHelp,
	"--help":   runHelp,
	"-help":    runHelp,
}

// run executes one oneport command and returns its exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if cmd, ok := commands[args[0]]; ok {
			return cmd(args[1:], stdout, stderr)
		}
	}
	return runServe(args, stdout, stderr)
}
