package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"

	"github.com/oneport/oneport/internal/tunnel"
)

const connectUsage = `usage: oneport connect [flags] URL

Joins stdin and stdout to SSH on the oneport at URL, through its WebSocket
tunnel (https:// or http://), for use as an OpenSSH ProxyCommand:

  ssh -o ProxyCommand='oneport connect https://box.example:2222' user@box

  --ssh-config NAME   print a ~/.ssh/config stanza for "ssh NAME" and exit
  -L [ADDR:]PORT:HOST:PORT
                      listen on ADDR:PORT (127.0.0.1 by default) and forward
                      each connection to HOST:PORT, which the box must list in
                      tunnel_targets
  --proxy URL         HTTP proxy (http://[user:pass@]host:port), "direct" for
                      none; default: HTTPS_PROXY / HTTP_PROXY minus NO_PROXY
  --key KEY           API key, sent as Authorization: Bearer (env ONEPORT_KEY)
  --ca FILE           trust only this PEM root (no system roots, no pinning)
  --known-hosts FILE  where roots are pinned on first use
                      (default: the user's config dir, oneport/known_hosts)
  --sni NAME          TLS server name to send instead of URL's host
  --host NAME         HTTP Host header to send instead of URL's host
  --ping D            WebSocket ping interval (default 20s; 0 turns it off)
  --http2             open the WebSocket over HTTP/2 (RFC 8441 extended
                      CONNECT) instead of an HTTP/1.1 upgrade, for fronts that
                      pass HTTP/2 but not upgrades; needs a oneport that offers
                      it (GODEBUG http2xconnect=0 on the box turns it off)
`

// runConnect is `oneport connect`: it hands over to package tunnel.
func runConnect(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("oneport connect", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	var c tunnel.Client
	sshConfig := fl.String("ssh-config", "", "")
	forward := fl.String("L", "", "")
	fl.StringVar(&c.Proxy, "proxy", "", "")
	fl.StringVar(&c.Key, "key", os.Getenv("ONEPORT_KEY"), "")
	fl.StringVar(&c.Trust.CAFile, "ca", "", "")
	fl.StringVar(&c.Trust.KnownHosts, "known-hosts", "", "")
	fl.StringVar(&c.SNI, "sni", "", "")
	fl.StringVar(&c.Host, "host", "", "")
	ping := fl.Duration("ping", tunnel.DefaultPing, "")
	fl.BoolVar(&c.HTTP2, "http2", false, "")
	err := parseInterspersed(fl, args)
	rest := fl.Args()
	if err == flag.ErrHelp {
		fmt.Fprint(stdout, connectUsage)
		return 0
	}
	if err != nil || len(rest) != 1 {
		if err != nil {
			fmt.Fprintln(stderr, "oneport connect:", err)
		}
		fmt.Fprint(stderr, connectUsage)
		return 2
	}
	u, err := url.Parse(rest[0])
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		fmt.Fprintf(stderr, "oneport connect: URL %q: want https://HOST[:PORT] or http://HOST[:PORT]\n", rest[0])
		return 2
	}
	c.URL = u
	if *sshConfig != "" {
		var extra []string
		fl.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "proxy", "ca", "known-hosts", "sni", "host", "ping":
				extra = append(extra, "--"+f.Name, f.Value.String())
			case "http2":
				if c.HTTP2 {
					extra = append(extra, "--http2")
				}
			case "key":
				fmt.Fprintln(stderr, "oneport connect: the key is left out of the stanza; set ONEPORT_KEY in your environment")
			}
		})
		fmt.Fprint(stdout, tunnel.SSHConfigHere(*sshConfig, rest[0], extra))
		return 0
	}
	c.Ping = *ping
	if c.Ping == 0 {
		c.Ping = -1
	}
	if c.Trust.KnownHosts == "" && c.Trust.CAFile == "" {
		if c.Trust.KnownHosts, err = tunnel.DefaultKnownHosts(); err != nil {
			fmt.Fprintln(stderr, "oneport connect: pinning off:", err)
		}
	}
	c.Trust.Notice = stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *forward == "" {
		err = c.Stdio(ctx, os.Stdin, os.Stdout)
	} else if listen, target, perr := tunnel.ParseForward(*forward); perr != nil {
		fmt.Fprintln(stderr, "oneport connect:", perr)
		return 2
	} else {
		err = c.ListenAndForward(ctx, listen, target, stderr)
	}
	if err != nil {
		return failed(stderr, "oneport connect:", err)
	}
	return 0
}
