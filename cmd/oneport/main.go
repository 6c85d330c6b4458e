// Command oneport lets one TCP port carry SSH, HTTP and TLS: it sniffs
// each connection's first bytes, sends SSH to sshd and routes HTTP by host
// and path to local servers.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

const usage = `oneport: one TCP port for SSH, HTTP and TLS.

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
  oneport route ls|add SPEC [--name N]|rm NAME|tag NAME TAG [--persist]
                                  change routes of the running oneport; --persist writes them
                                  to the config file
  oneport upstream drain|enable ADDRESS
                                  stop or resume sending new requests to an upstream
  oneport upstream add ROUTE ADDRESS [--weight N] [--tag T]... | rm ROUTE ADDRESS [--persist]
                                  add an upstream to a route's pool, or remove it
  (status, route and upstream take --admin-socket PATH)

Flags (each overrides the config file's key of the same name):
  --config FILE            TOML config file (keys: listen, ssh, sniff_timeout, on_timeout,
                           fallback, max_pending_sniffs, max_conns, shutdown_grace,
                           log_format, log_level, redirect, redirect_interfaces, redirect_addresses,
                           redirect_local, transparent, state_dir, admin_socket, admin_listen,
                           admin_token, metrics_path, [tls], [[route]], [[protocol]];
                           TLS, pools and TCP admin are configured in the file, see README)
  --listen ADDR            address to listen on (default :2222)
  --ssh ADDR               where SSH goes (default 127.0.0.1:22)
  --route SPEC             HTTP route, repeatable; replaces the file's [[route]] tables.
                           SPEC is [HOST]PATH=UPSTREAM[,UPSTREAM...], PATH one of
                           /prefix (stripped before forwarding), =/exact, ~regexp;
                           UPSTREAM one of host:port, http://..., h2c://..., unix:/path.sock,
                           optionally followed by *WEIGHT and #TAG (pools, see README)
  --sniff-timeout D        how long a client may stay silent before it goes to
                           on_timeout (default 2s)
  --on-timeout T           where silent clients go: ssh, close or host:port (default ssh)
  --fallback T             where unrecognised bytes go: ssh, close or host:port (default ssh)
  --max-pending-sniffs N   connections sniffed at once; past it the oldest is closed (default 1024)
  --max-conns N            open connections; past it new ones are refused (default 0: no limit)
  --shutdown-grace D       on SIGINT/SIGTERM, how long open sessions may finish (default 30s)
  --log-format F           text or json (default text)
  --log-level L            debug, info, warn or error (default info)
  --redirect PORTS         redirect these TCP ports (e.g. 22) to the listen port with an nftables
                           table that the kernel removes when oneport exits or dies (needs
                           CAP_NET_ADMIN; --listen must cover all addresses, e.g. :2222)
  --redirect-interface I   only redirect connections arriving on these interfaces (comma-separated)
  --redirect-address A     only redirect connections to these local addresses (comma-separated)
  --redirect-local         also redirect connections made on the box itself (ssh localhost)
  --state-dir DIR          certificates, the internal CA and ACME accounts (default
                           /var/lib/oneport for root, else $XDG_DATA_HOME/oneport)
  --admin-socket PATH      the admin API's unix socket, mode 0660 (default /run/oneport/admin.sock
                           for root, else in $XDG_RUNTIME_DIR; "off" turns it off)
  --transparent            sshd sees each client's real address instead of 127.0.0.1 (fail2ban,
                           AllowUsers user@host, last); oneport sets up the marks and policy
                           routing itself and removes them on exit (needs CAP_NET_ADMIN; sshd
                           must listen on the box's addresses, as it does by default)

Examples:
  oneport --listen :2222 --route /=127.0.0.1:30000 --route /embedding-model/=127.0.0.1:30001
  oneport --listen :2222 --redirect 22 --route /=127.0.0.1:30000
  oneport check --config /etc/oneport/oneport.toml
`

func main() {
	applyGCDefault(os.Getenv("GOGC"))
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// defaultGCPercent is GOGC when the environment does not set it.
const defaultGCPercent = 400

// applyGCDefault sets defaultGCPercent unless gogc, the environment's
// GOGC, is set. oneport's live heap is a few MiB and every request leaves
// garbage, so with Go's default the collector runs at 4 MiB, dozens of
// times a second under load, for a tenth of oneport's CPU. Collecting at
// 16 MiB costs about 13 MiB of memory more.
func applyGCDefault(gogc string) {
	if gogc == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// run executes one oneport command and returns its exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Fprintln(stdout, "oneport", version())
			return 0
		case "check":
			return runCheck(args[1:], stdout, stderr)
		case "redirect":
			return runRedirect(args[1:], stdout, stderr)
		case "install":
			return runInstall(args[1:], stdout, stderr)
		case "ca":
			return runCA(args[1:], stdout, stderr)
		case "status":
			return runStatus(args[1:], stdout, stderr)
		case "route":
			return runRoute(args[1:], stdout, stderr)
		case "upstream":
			return runUpstream(args[1:], stdout, stderr)
		case "certs":
			return runCerts(args[1:], stdout, stderr)
		case "help", "-h", "--help", "-help":
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	cfg, err := parseServeFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintln(stderr, "oneport:", err)
		return 2
	}
	res, err := cfg.validate()
	if err != nil {
		fmt.Fprintln(stderr, "oneport: invalid configuration:")
		fmt.Fprintln(stderr, indent(err.Error()))
		return 2
	}
	logOut := newLineBatcher(stderr, logFlushInterval)
	defer logOut.Flush()
	log, _ := newLogger(cfg, logOut)
	if err := serve(cfg, res, log, runOptions{args: args}); err != nil {
		log.Error("oneport stopped", "err", err)
		return 1
	}
	return 0
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// parseServeFlags loads --config, if given, and lays the other flags over
// it.
func parseServeFlags(args []string, stderr io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("oneport", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		configPath   string
		routes       stringList
		flagCfg      Config
		sniff, grace time.Duration
		redirect     string
		ifaces       string
		addrs        string
	)
	fs.StringVar(&configPath, "config", "", "")
	fs.StringVar(&flagCfg.Listen, "listen", "", "")
	fs.StringVar(&flagCfg.SSH, "ssh", "", "")
	fs.Var(&routes, "route", "")
	fs.DurationVar(&sniff, "sniff-timeout", 0, "")
	fs.StringVar(&flagCfg.OnTimeout, "on-timeout", "", "")
	fs.StringVar(&flagCfg.Fallback, "fallback", "", "")
	fs.IntVar(&flagCfg.MaxPendingSniffs, "max-pending-sniffs", 0, "")
	fs.IntVar(&flagCfg.MaxConns, "max-conns", 0, "")
	fs.DurationVar(&grace, "shutdown-grace", 0, "")
	fs.StringVar(&flagCfg.LogFormat, "log-format", "", "")
	fs.StringVar(&flagCfg.LogLevel, "log-level", "", "")
	fs.StringVar(&redirect, "redirect", "", "")
	fs.StringVar(&ifaces, "redirect-interface", "", "")
	fs.StringVar(&addrs, "redirect-address", "", "")
	fs.BoolVar(&flagCfg.RedirectLocal, "redirect-local", false, "")
	fs.BoolVar(&flagCfg.Transparent, "transparent", false, "")
	fs.StringVar(&flagCfg.StateDir, "state-dir", "", "")
	fs.StringVar(&flagCfg.AdminSocket, "admin-socket", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%v (see oneport --help)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see oneport --help)", fs.Arg(0))
	}
	cfg := &Config{}
	if configPath != "" {
		var err error
		if cfg, err = loadFile(configPath); err != nil {
			return nil, err
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["listen"] {
		cfg.Listen = flagCfg.Listen
	}
	if set["ssh"] {
		cfg.SSH = flagCfg.SSH
	}
	if set["sniff-timeout"] {
		if sniff <= 0 {
			return nil, fmt.Errorf("--sniff-timeout %v: must be positive", sniff)
		}
		cfg.SniffTimeout = duration(sniff)
	}
	if set["on-timeout"] {
		cfg.OnTimeout = flagCfg.OnTimeout
	}
	if set["fallback"] {
		cfg.Fallback = flagCfg.Fallback
	}
	if set["max-pending-sniffs"] {
		cfg.MaxPendingSniffs = flagCfg.MaxPendingSniffs
	}
	if set["max-conns"] {
		cfg.MaxConns = flagCfg.MaxConns
	}
	if set["shutdown-grace"] {
		cfg.ShutdownGrace = duration(grace)
	}
	if set["log-format"] {
		cfg.LogFormat = flagCfg.LogFormat
	}
	if set["log-level"] {
		cfg.LogLevel = flagCfg.LogLevel
	}
	if set["redirect"] {
		ports, err := parsePorts(redirect)
		if err != nil {
			return nil, fmt.Errorf("--redirect %q: %v", redirect, err)
		}
		cfg.Redirect = ports
	}
	if set["redirect-interface"] {
		cfg.RedirectIfaces = strings.Split(ifaces, ",")
	}
	if set["redirect-address"] {
		cfg.RedirectAddrs = strings.Split(addrs, ",")
	}
	if set["redirect-local"] {
		cfg.RedirectLocal = flagCfg.RedirectLocal
	}
	if set["transparent"] {
		cfg.Transparent = flagCfg.Transparent
	}
	if set["state-dir"] {
		cfg.StateDir = flagCfg.StateDir
	}
	if set["admin-socket"] {
		cfg.AdminSocket = flagCfg.AdminSocket
	}
	cfg.routeSpecs = routes
	cfg.defaults()
	return cfg, nil
}

// parsePorts reads a comma-separated port list such as "22" or "22,2200".
func parsePorts(s string) ([]int, error) {
	var ports []int
	for f := range strings.SplitSeq(s, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("want ports such as 22 or 22,2200")
		}
		ports = append(ports, p)
	}
	return ports, nil
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("oneport check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "")
	if err := fs.Parse(args); err != nil || *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: oneport check --config FILE")
		return 2
	}
	cfg, err := loadFile(*path)
	if err != nil {
		fmt.Fprintf(stderr, "oneport check: %s is invalid:\n%s\n", *path, indent(err.Error()))
		return 1
	}
	cfg.defaults()
	res, err := cfg.validate()
	if err != nil {
		fmt.Fprintf(stderr, "oneport check: %s is invalid:\n%s\n", *path, indent(err.Error()))
		return 1
	}
	printResolved(stdout, cfg, res)
	return 0
}

func printResolved(w io.Writer, cfg *Config, res *resolved) {
	fmt.Fprintf(w, "listen         %s\n", cfg.Listen)
	fmt.Fprintf(w, "ssh            %s\n", cfg.SSH)
	fmt.Fprintf(w, "sniff_timeout  %v (then %s)\n", time.Duration(cfg.SniffTimeout), cfg.OnTimeout)
	fmt.Fprintf(w, "fallback       %s\n", cfg.Fallback)
	if len(cfg.Redirect) > 0 {
		fmt.Fprintf(w, "redirect       tcp ports %v -> listen port (crash-safe nftables table)\n", cfg.Redirect)
	}
	if cfg.Transparent {
		fmt.Fprintln(w, "transparent    sshd sees client addresses")
	}
	switch src := cfg.TLS.Source; src {
	case "off":
		fmt.Fprintln(w, "tls            off (TLS connections are closed)")
	default:
		if src == "" {
			src = "internal"
		}
		fmt.Fprintf(w, "tls            terminated, certificates from %s (state in %s)\n", src, cfg.StateDir)
	}
	for _, c := range cfg.TLS.Certs {
		fmt.Fprintf(w, "tls cert       %s\n", c.Cert)
	}
	for _, p := range cfg.TLS.Passthrough {
		fmt.Fprintf(w, "tls passthrough sni=%q alpn=%q -> %s\n", p.SNI, p.ALPN, p.Upstream)
	}
	for _, p := range res.probes {
		fmt.Fprintf(w, "protocol       %s -> %s\n", p.name, p.target)
	}
	if res.table.Len() == 0 {
		fmt.Fprintln(w, "routes         none (HTTP answers with a welcome page)")
		return
	}
	fmt.Fprintln(w, "routes, in match order:")
	for _, r := range res.table.Routes() {
		host := r.Host
		if host == "" {
			host = "*"
		}
		extra := ""
		if r.StripPrefix != nil && !*r.StripPrefix {
			extra = "  (prefix kept)"
		}
		if r.Rewrite != "" {
			extra = "  (prefix rewritten to " + r.Rewrite + ")"
		}
		if r.Policy != "" {
			extra += "  policy " + r.Policy
		}
		if r.Tag != "" {
			extra += "  tag " + r.Tag
		}
		if r.Health.Kind != "" {
			extra += "  health " + r.Health.Kind
		}
		ups := r.Spec()[len(r.Host)+len(r.Path)+1:] // the upstreams part of HOST PATH=UPSTREAMS
		fmt.Fprintf(w, "  %-24s %-28s -> %s%s\n", host, r.Path, strings.ReplaceAll(ups, ",", ", "), extra)
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log_level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(cfg *Config, w io.Writer) (*slog.Logger, error) {
	level, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
