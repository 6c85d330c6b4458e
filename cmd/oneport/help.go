package main

import (
	"fmt"
	"io"

	"github.com/oneport/oneport/internal/config"
)

const usageCommands = `oneport: one TCP port for SSH, HTTP and TLS.

Usage:
  oneport [flags]                 serve (with no flags: listen on :2222, SSH to 127.0.0.1:22)
  oneport check --config FILE     validate a config file and print what it resolves to
  oneport version                 print the version
  oneport redirect status         show the port redirect installed in the kernel
  oneport redirect clear          remove a redirect table left by a crashed run (old kernels)
  oneport install [--write]       print (or write) the systemd units, config and defaults the
                                  .deb installs, for a box without the package
  oneport ca [--state-dir DIR]    print the internal CA's root certificate (PEM on stdout, its
                                  SHA-256 fingerprint on stderr), e.g. for curl --cacert
  oneport certs [--state-dir DIR] [--config FILE]
                                  list certificates: names, issuer, source, expiry
  oneport status                  listeners, routes, upstream health, connections (admin API)
  oneport route ls|add SPEC [--name N]|set NAME SPEC|rm NAME|tag NAME TAG [--persist]
                                  change routes of the running oneport (set replaces one);
                                  --persist writes them to the config file; without it they
                                  last until oneport stops, or reloads its --config file
  oneport upstream drain|enable ADDRESS
                                  stop or resume sending new requests to an upstream
  oneport upstream add ROUTE ADDRESS [--weight N] [--tag T]... | rm ROUTE ADDRESS [--persist]
                                  add an upstream to a route's pool, or remove it
  oneport key add NAME [--routes R,...] [--models M,...] [--rate N/min] [--concurrency N]
                 [--expires DATE] [--admin]
                                  make an API key (printed once); HTTP then needs a key
  oneport key ls | rm NAME        list keys (names, scopes, use; never the keys) or remove one
  (status, route, upstream and key take --admin-socket PATH)
  oneport discover [--json] [--probe-timeout D]
                                  list this box's listening servers: model servers (vLLM, TEI,
                                  Ollama, Triton, ...) with their models, apps (Jupyter, Gradio,
                                  ComfyUI, TensorBoard), and the routes discover would serve
  oneport doctor [--json] [--config FILE] [--listen ADDR] [--ssh ADDR]
                                  check this box for what stops oneport working, with the fix;
                                  exits 1 when a check fails
  oneport connect [flags] URL     SSH from anywhere: join stdin/stdout to SSH through the
                                  tunnel at URL, as an OpenSSH ProxyCommand (--help for more)

`

const usageExamples = `
Examples:
  oneport --listen :2222 --route /=127.0.0.1:30000 --route /embedding-model/=127.0.0.1:30001
  oneport --listen :2222 --redirect 22 --route /=127.0.0.1:30000
  oneport --route /jupyter/+=127.0.0.1:8888      # + keeps the prefix (jupyter --ServerApp.base_url=/jupyter/)
  oneport check --config /etc/oneport/oneport.toml
`

// usage is --help: the commands, then the flags from the settings table.
func usage() string { return usageCommands + config.FlagHelp() + usageExamples }

// runHelp prints --help.
func runHelp(_ []string, stdout, _ io.Writer) int {
	fmt.Fprint(stdout, usage())
	return 0
}
