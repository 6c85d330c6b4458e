package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/mux"
)

// Settings is every key of the config file, in the reference's order.
// Adding a setting is one entry here plus the code that uses its field:
// the file's decoding, the flag, --help, the reference and the admin
// API's route names follow from it.
var Settings = []Setting{
	{Key: "listen", Restart: true, Flag: "listen", Arg: "ADDR", Default: ":2222", NotEmpty: true,
		Doc:      "address to listen on",
		describe: func(c *Config) string { return c.Listen },
		field:    fieldOf(func(c *Config) any { return &c.Listen }), check: str(func(v string) error { return hostPort("listen", v, true) })},
	{Key: "ssh", Flag: "ssh", Arg: "ADDR", Default: "127.0.0.1:22",
		Doc:      "where SSH goes",
		describe: func(c *Config) string { return c.SSH },
		field:    fieldOf(func(c *Config) any { return &c.SSH }), check: str(func(v string) error { return hostPort("ssh", v, false) })},
	{Key: "sniff_timeout", Restart: true, Flag: "sniff-timeout", Arg: "D", Default: mux.DefaultSniffTimeout.String(),
		Doc:      "how long a client may stay silent before it goes to on_timeout",
		describe: func(c *Config) string { return fmt.Sprintf("%v (then %s)", time.Duration(c.SniffTimeout), c.OnTimeout) },
		field:    fieldOf(func(c *Config) any { return &c.SniffTimeout }), setFlag: positiveSniff},
	{Key: "on_timeout", Restart: true, Flag: "on-timeout", Arg: "T", Default: "ssh",
		Doc:   "where silent clients go: ssh, close or host:port",
		field: fieldOf(func(c *Config) any { return &c.OnTimeout }), check: str(func(v string) error { return target("on_timeout", v) })},
	{Key: "fallback", Restart: true, Flag: "fallback", Arg: "T", Default: "ssh",
		Doc:      "where unrecognised bytes go: ssh, close or host:port",
		describe: func(c *Config) string { return c.Fallback },
		field:    fieldOf(func(c *Config) any { return &c.Fallback }), check: str(func(v string) error { return target("fallback", v) })},
	{Key: "max_pending_sniffs", Restart: true, Flag: "max-pending-sniffs", Arg: "N", Default: strconv.Itoa(mux.DefaultMaxPendingSniffs),
		Doc:   "connections sniffed at once; past it the oldest is closed",
		field: fieldOf(func(c *Config) any { return &c.MaxPendingSniffs })},
	{Key: "max_conns", Restart: true, Flag: "max-conns", Arg: "N", DefaultDoc: "0: no limit",
		Doc:   "open connections; past it new ones are refused",
		field: fieldOf(func(c *Config) any { return &c.MaxConns })},
	{Key: "shutdown_grace", Flag: "shutdown-grace", Arg: "D", Default: "30s",
		Doc:   "on SIGINT/SIGTERM, how long open sessions may finish",
		field: fieldOf(func(c *Config) any { return &c.ShutdownGrace })},
	{Key: "log_format", Restart: true, Flag: "log-format", Arg: "F", Default: "text",
		Doc:   "text or json",
		field: fieldOf(func(c *Config) any { return &c.LogFormat }), check: str(oneOf("log_format", "text", "json"))},
	{Key: "log_level", Restart: true, Flag: "log-level", Arg: "L", Default: "info",
		Doc:   "debug, info, warn or error",
		field: fieldOf(func(c *Config) any { return &c.LogLevel }), check: str(func(v string) error { _, err := ParseLevel(v); return err })},
	{Key: "redirect", Flag: "redirect", Arg: "PORTS",
		Doc: "redirect these TCP ports (e.g. 22) to the listen port with an nftables table that the kernel removes when " +
			"oneport exits or dies (needs CAP_NET_ADMIN; listen must cover all addresses, e.g. :2222)",
		describe: func(c *Config) string {
			if len(c.Redirect) == 0 {
				return ""
			}
			return fmt.Sprintf("tcp ports %v -> listen port (crash-safe nftables table)", c.Redirect)
		},
		field: fieldOf(func(c *Config) any { return &c.Redirect }), check: checkPorts, setFlag: flagPorts},
	{Key: "redirect_interfaces", Flag: "redirect-interface", Arg: "I",
		Doc:   "only redirect connections arriving on these interfaces (comma-separated)",
		field: fieldOf(func(c *Config) any { return &c.RedirectIfaces })},
	{Key: "redirect_addresses", Flag: "redirect-address", Arg: "A",
		Doc:   "only redirect connections to these local addresses (comma-separated)",
		field: fieldOf(func(c *Config) any { return &c.RedirectAddrs }), check: ips("redirect_addresses:")},
	{Key: "redirect_local", Flag: "redirect-local",
		Doc:   "also redirect connections made on the box itself (ssh localhost)",
		field: fieldOf(func(c *Config) any { return &c.RedirectLocal })},
	{Key: "transparent", Flag: "transparent",
		Doc: "sshd sees each client's real address instead of 127.0.0.1 (fail2ban, AllowUsers user@host, last); " +
			"oneport sets up the marks and policy routing itself and removes them on exit (needs CAP_NET_ADMIN; " +
			"sshd must listen on the box's addresses, as it does by default)",
		describe: func(c *Config) string {
			if !c.Transparent {
				return ""
			}
			return "sshd sees client addresses"
		},
		field: fieldOf(func(c *Config) any { return &c.Transparent })},
	{Key: "state_dir", Flag: "state-dir", Arg: "DIR", DefaultFunc: DefaultStateDir,
		DefaultDoc: "/var/lib/oneport for root, else $XDG_DATA_HOME/oneport",
		Doc:        "certificates, the internal CA and ACME accounts",
		field:      fieldOf(func(c *Config) any { return &c.StateDir })},
	{Key: "admin_socket", Restart: true, Flag: "admin-socket", Arg: "PATH", DefaultFunc: DefaultAdminSocket,
		DefaultDoc: "/run/oneport/admin.sock for root, else in $XDG_RUNTIME_DIR",
		Doc:        `the admin API's unix socket, mode 0660 ("off" turns it off)`,
		field:      fieldOf(func(c *Config) any { return &c.AdminSocket })},
	{Key: "admin_listen", Restart: true,
		Doc:   "also serve the admin API on this TCP address, behind admin_token",
		field: fieldOf(func(c *Config) any { return &c.AdminListen }), check: str(optional(func(v string) error { return hostPort("admin_listen", v, true) }))},
	{Key: "admin_token", Restart: true,
		Doc:   "the bearer token admin_listen requires, 16 or more characters",
		field: fieldOf(func(c *Config) any { return &c.AdminToken })},
	{Key: "metrics_path",
		Doc:   "serve Prometheus metrics at this HTTP path on the listen port (off when empty)",
		field: fieldOf(func(c *Config) any { return &c.MetricsPath }), check: str(func(v string) error {
			if v != "" && !strings.HasPrefix(v, "/") {
				return fmt.Errorf("metrics_path %q must start with /", v)
			}
			return nil
		})},
	{Key: "http_engine", Restart: true, Default: httproute.EngineOneport,
		Doc: "what serves plain HTTP/1 connections: oneport (its own request loop, which holds no buffer while a " +
			"keep-alive connection is idle) or net/http (Go's server); h2c and HTTPS are always served by net/http",
		field: fieldOf(func(c *Config) any { return &c.HTTPEngine }), check: str(httproute.CheckEngine)},
	{Key: "tls", Doc: "TLS termination: certificates, ACME, passthrough",
		describe: describeTLS,
		field:    fieldOf(func(c *Config) any { return &c.TLS }), Sub: tlsSettings},
	{Key: "route", Flag: "route", Arg: "SPEC", Array: true,
		Doc: "HTTP route, repeatable; replaces the file's [[route]] tables. SPEC is [HOST]PATH=UPSTREAM[,UPSTREAM...], " +
			"PATH one of /prefix (stripped before forwarding; /prefix/+ keeps it, for apps told their base URL such as " +
			"Jupyter), =/exact, ~regexp; UPSTREAM one of host:port, http://..., " +
			"h2c://..., unix:/path.sock, optionally followed by *WEIGHT and #TAG (pools, see README)",
		field: fieldOf(func(c *Config) any { return &c.Routes }), Sub: routeSettings,
		setFlag: func(c *Config, raw string) error { c.RouteSpecs = append(c.RouteSpecs, raw); return nil }},
	{Key: "protocol", Array: true, Restart: true, Doc: "a protocol of your own, recognised by its first bytes, sent to a target",
		field: fieldOf(func(c *Config) any { return &c.Protocols }), Sub: protocolSettings},
	{Key: "discover", Flag: "discover", DefaultDoc: "true when no routes are configured, else false",
		Doc: "find the model servers and apps listening on this box (vLLM, TEI, Ollama, Triton, Jupyter, Gradio, " +
			"ComfyUI, TensorBoard) and route /<model>/ and /<app>/ to them, after the configured routes",
		describe: func(c *Config) string {
			if c.Discover == nil {
				return "on when no routes are configured"
			}
			return strconv.FormatBool(*c.Discover)
		},
		field: fieldOf(func(c *Config) any { return &c.Discover })},
	{Key: "discover_interval", Flag: "discover-interval", Arg: "D", Default: "30s",
		Doc:   "time between discovery scans: servers that start, move or stop are followed within it",
		field: fieldOf(func(c *Config) any { return &c.DiscoverInterval }), check: func(v any) error {
			if d := time.Duration(*v.(*Duration)); d < 100*time.Millisecond {
				return fmt.Errorf("discover_interval %v is under 100ms", d)
			}
			return nil
		}},
	{Key: "key_file", Flag: "key-file", Arg: "PATH", DefaultDoc: "keys in state_dir",
		Doc: "the API key store (`oneport key add`); once it holds a key, every HTTP request needs one " +
			"unless its route sets auth = \"none\"",
		describe: func(c *Config) string { return c.KeyFile },
		field:    fieldOf(func(c *Config) any { return &c.KeyFile })},
	{Key: "tunnel_path", Flag: "tunnel-path", Arg: "PATH", Default: "/.oneport/ssh",
		Doc: "URL path of the SSH-over-WebSocket tunnel that `oneport connect` uses (\"off\" turns it off); " +
			"?target=HOST:PORT reaches one of tunnel_targets instead of SSH",
		field: fieldOf(func(c *Config) any { return &c.TunnelPath }), check: str(func(v string) error {
			if v != "off" && !strings.HasPrefix(v, "/") {
				return fmt.Errorf("tunnel_path %q must start with / (or be \"off\")", v)
			}
			return nil
		})},
	{Key: "tunnel_targets", Flag: "tunnel-target", Arg: "ADDR",
		Doc:   "host:port addresses the tunnel may also reach, besides SSH (comma-separated)",
		field: fieldOf(func(c *Config) any { return &c.TunnelTargets }), check: func(v any) error {
			for _, t := range *v.(*[]string) {
				if err := hostPort("tunnel_targets", t, false); err != nil {
					return err
				}
			}
			return nil
		}},
	{Key: "model", Array: true, Doc: "a model of the gateway routes (gateway = true): where it is served and the other names " +
		"that reach it; models the upstreams list themselves need no table",
		field: fieldOf(func(c *Config) any { return &c.Models }), Sub: modelSettings},
}

var modelSettings = []Setting{
	{Key: "name", Doc: "the model's name, as its server knows it", field: fieldOf(func(m *Model) any { return &m.Name })},
	{Key: "upstream", DefaultDoc: "found by asking the gateway's upstreams", Doc: "the model server serving it (host:port or http://...)",
		field: fieldOf(func(m *Model) any { return &m.Upstream })},
	{Key: "aliases", Doc: `other names clients may ask for ("gpt-4o-mini"); requests are sent with the model's name`,
		field: fieldOf(func(m *Model) any { return &m.Aliases })},
}

var tlsSettings = []Setting{
	{Key: "source", DefaultDoc: "internal", Doc: "where certificates come from: internal (oneport's own CA), acme or off",
		field: fieldOf(func(t *TLS) any { return &t.Source }), check: str(func(v string) error {
			switch v {
			case "", "internal", "acme", "off":
				return nil
			}
			return fmt.Errorf("tls source %q: want internal, acme or off", v)
		})},
	{Key: "hosts", Doc: "host names to hold certificates for, besides the routes' hosts",
		field: fieldOf(func(t *TLS) any { return &t.Hosts })},
	{Key: "ips", Doc: "IP addresses to hold certificates for", field: fieldOf(func(t *TLS) any { return &t.IPs }), check: ips("tls ips:")},
	{Key: "acme_ca", DefaultDoc: "Let's Encrypt", Doc: "the ACME directory URL", field: fieldOf(func(t *TLS) any { return &t.ACMECA })},
	{Key: "acme_email", Doc: "the ACME account's contact address", field: fieldOf(func(t *TLS) any { return &t.ACMEEmail })},
	{Key: "acme_profile", Doc: "the ACME profile for host names", field: fieldOf(func(t *TLS) any { return &t.ACMEProfile })},
	{Key: "acme_ip_profile", DefaultDoc: "shortlived", Doc: "the ACME profile for IP addresses", field: fieldOf(func(t *TLS) any { return &t.ACMEIPProfile })},
	{Key: "acme_ca_root", Doc: "a PEM file of roots to trust for the ACME server (test CAs)", field: fieldOf(func(t *TLS) any { return &t.ACMECARoot })},
	{Key: "redirect_http", Doc: "hosts whose plain-HTTP requests are redirected to https",
		field: fieldOf(func(t *TLS) any { return &t.RedirectHTTP }), check: func(v any) error {
			for _, h := range *v.(*[]string) {
				if h == "" || strings.ContainsAny(h, ":/ ") {
					return fmt.Errorf("tls redirect_http: %q is not a host name", h)
				}
			}
			return nil
		}},
	{Key: "dns_update_server", Doc: "DNS server taking RFC 2136 updates, for ACME DNS-01 (host:port)", field: fieldOf(func(t *TLS) any { return &t.DNSServer })},
	{Key: "dns_update_key_name", Doc: "the TSIG key's name", field: fieldOf(func(t *TLS) any { return &t.DNSKeyName })},
	{Key: "dns_update_key", Doc: "the TSIG key, base64", field: fieldOf(func(t *TLS) any { return &t.DNSKey })},
	{Key: "dns_update_key_alg", DefaultDoc: "hmac-sha256.", Doc: "the TSIG algorithm", field: fieldOf(func(t *TLS) any { return &t.DNSKeyAlg })},
	{Key: "dns_resolvers", Doc: "resolvers to check DNS-01 records with", field: fieldOf(func(t *TLS) any { return &t.DNSResolvers })},
	{Key: "dns_skip_propagation_check", Doc: "do not wait for DNS-01 records to propagate", field: fieldOf(func(t *TLS) any { return &t.DNSNoWait })},
	{Key: "cert", Array: true, Doc: "a certificate from files, served for the names it holds",
		field: fieldOf(func(t *TLS) any { return &t.Certs }), Sub: []Setting{
			{Key: "cert", Doc: "PEM certificate chain file", field: fieldOf(func(c *CertFile) any { return &c.Cert })},
			{Key: "key", Doc: "PEM private key file", field: fieldOf(func(c *CertFile) any { return &c.Key })},
		}},
	{Key: "passthrough", Array: true, Restart: true, Doc: "TLS connections passed on untouched, by SNI or ALPN",
		field: fieldOf(func(t *TLS) any { return &t.Passthrough }), Sub: []Setting{
			{Key: "sni", Doc: "server name pattern (path.Match syntax)", field: fieldOf(func(p *Passthrough) any { return &p.SNI })},
			{Key: "alpn", Doc: "ALPN protocol", field: fieldOf(func(p *Passthrough) any { return &p.ALPN })},
			{Key: "upstream", Doc: "where the connection goes (host:port)", field: fieldOf(func(p *Passthrough) any { return &p.Upstream })},
		}},
	{Key: "default_sni", DefaultDoc: "the local IP address's certificate",
		Doc: "the name whose certificate is served to clients asking for a name oneport holds none for " +
			"(instead of failing the handshake, as Caddy and nginx do)",
		field: fieldOf(func(t *TLS) any { return &t.DefaultSNI })},
	{Key: "min_version", DefaultDoc: "1.2", Doc: "the oldest TLS version accepted: 1.2 or 1.3 (TLS 1.2 offers AEAD suites only)",
		field: fieldOf(func(t *TLS) any { return &t.MinVersion }), check: str(optional(oneOf("tls min_version", "1.2", "1.3")))},
	{Key: "hsts", Doc: "hosts whose HTTPS responses carry Strict-Transport-Security: max-age=31536000 " +
		"(browsers then refuse plain HTTP and certificate errors for them for a year; only sent over TLS)",
		field: fieldOf(func(t *TLS) any { return &t.HSTS }), check: func(v any) error {
			for _, h := range *v.(*[]string) {
				if h == "" || strings.ContainsAny(h, ":/ *") {
					return fmt.Errorf("tls hsts: %q is not a host name", h)
				}
			}
			return nil
		}},
}

// RouteSettings are the keys of a [[route]] table; the admin API names a
// route's fields with them.
var routeSettings = []Setting{
	{Key: "name", Doc: "the route's name in logs, metrics and the admin API", field: fieldOf(func(r *Route) any { return &r.Name })},
	{Key: "host", DefaultDoc: "any host", Doc: `host pattern: exact, "*.example.com" or "embed.*"`, field: fieldOf(func(r *Route) any { return &r.Host })},
	{Key: "path", DefaultDoc: "/", Doc: `path pattern: a /prefix, "=/exact" or "~regexp"`, field: fieldOf(func(r *Route) any { return &r.Path })},
	{Key: "upstream", Doc: "where requests go: an address, or a list of addresses and {address, weight, tags} tables",
		field: fieldOf(func(r *Route) any { return &r.Upstream })},
	{Key: "strip_prefix", DefaultDoc: "true (false on a gateway route)", Doc: "remove a prefix route's prefix before forwarding (then X-Forwarded-Prefix " +
		"names it, and the upstream's Location and Set-Cookie paths are put back under it); false keeps it, as a + " +
		"after the prefix does in --route", field: fieldOf(func(r *Route) any { return &r.StripPrefix })},
	{Key: "rewrite", Doc: "replace the matched prefix with this", field: fieldOf(func(r *Route) any { return &r.Rewrite })},
	{Key: "upstream_host", Doc: "send the upstream's host:port as Host instead of the client's", field: fieldOf(func(r *Route) any { return &r.UpstreamHost })},
	{Key: "dial_timeout", DefaultDoc: "5s", Doc: "bound on connecting to an upstream", field: fieldOf(func(r *Route) any { return &r.DialTimeout })},
	{Key: "response_header_timeout", DefaultDoc: "2m", Doc: "bound on the wait for an upstream's response headers " +
		"(its time to first byte; a stream may then run for hours); raise it on a route whose model loads on its " +
		"first request", field: fieldOf(func(r *Route) any { return &r.ResponseHeaderTimeout })},
	{Key: "request_headers", Doc: "headers changed on the way to the upstream (delete, then set, then add)", field: fieldOf(func(r *Route) any { return &r.RequestHeaders }), Sub: headerSettings},
	{Key: "response_headers", Doc: "headers changed on the way back to the client (delete, then set, then add)", field: fieldOf(func(r *Route) any { return &r.ResponseHeaders }), Sub: headerSettings},
	{Key: "policy", DefaultDoc: "least_conn", Doc: "least_conn, round_robin, ip_hash or first", field: fieldOf(func(r *Route) any { return &r.Policy })},
	{Key: "tag", Doc: "only upstreams carrying this tag take requests (blue/green)", field: fieldOf(func(r *Route) any { return &r.Tag })},
	{Key: "retries", DefaultDoc: "2", Doc: "how many other upstreams a failed request may try (negative: none)", field: fieldOf(func(r *Route) any { return &r.Retries })},
	{Key: "health", Doc: "active health checks", field: fieldOf(func(r *Route) any { return &r.Health }), Sub: []Setting{
		{Key: "check", Doc: "http or tcp (none when unset)", field: fieldOf(func(h *Health) any { return &h.Check })},
		{Key: "path", DefaultDoc: "/health", Doc: "path http checks request", field: fieldOf(func(h *Health) any { return &h.Path })},
		{Key: "interval", DefaultDoc: "5s", Doc: "time between checks", field: fieldOf(func(h *Health) any { return &h.Interval })},
		{Key: "timeout", DefaultDoc: "2s", Doc: "bound on one check", field: fieldOf(func(h *Health) any { return &h.Timeout })},
		{Key: "healthy", DefaultDoc: "2", Doc: "consecutive successes that make an upstream healthy", field: fieldOf(func(h *Health) any { return &h.Healthy })},
		{Key: "unhealthy", DefaultDoc: "3", Doc: "consecutive failures that make it unhealthy", field: fieldOf(func(h *Health) any { return &h.Unhealthy })},
	}},
	{Key: "passive", Doc: "taking an upstream out after failed requests", field: fieldOf(func(r *Route) any { return &r.Passive }), Sub: []Setting{
		{Key: "max_fails", DefaultDoc: "3", Doc: "failures within window that take it out (negative: never)", field: fieldOf(func(p *Passive) any { return &p.MaxFails })},
		{Key: "window", DefaultDoc: "10s", Doc: "the window failures count in", field: fieldOf(func(p *Passive) any { return &p.Window })},
		{Key: "cooldown", DefaultDoc: "30s", Doc: "how long it stays out", field: fieldOf(func(p *Passive) any { return &p.Cooldown })},
	}},
	{Key: "auth", DefaultDoc: "key", Doc: `"none" lets requests in without a key once keys exist (a health path); "key" requires one`,
		field: fieldOf(func(r *Route) any { return &r.Auth }), check: str(optional(oneOf("auth", "key", "none")))},
	{Key: "allow_admin", Doc: "let requests reach the model server's admin endpoints (/sleep, /api/pull, /flush_cache...), " +
		"which oneport otherwise answers with 403", field: fieldOf(func(r *Route) any { return &r.AllowAdmin })},
	{Key: "upstream_bearer", Doc: "send this as Authorization: Bearer to the upstream (its own --api-key) in place of the client's key",
		field: fieldOf(func(r *Route) any { return &r.UpstreamBearer }), check: str(func(v string) error {
			if strings.ContainsAny(v, "\r\n") {
				return errors.New("upstream_bearer: must be one line")
			}
			return nil
		})},
	{Key: "cors_origins", Doc: `origins browsers may call the route from ("*": any); oneport answers their preflights`,
		field: fieldOf(func(r *Route) any { return &r.CORSOrigins })},
	{Key: "gateway", Doc: "route OpenAI-compatible requests by their model to the upstream serving it, and answer " +
		"GET /v1/models for all of them (see [[model]])", field: fieldOf(func(r *Route) any { return &r.Gateway })},
	{Key: "max_concurrent", DefaultDoc: "0: no limit", Doc: "gateway: requests each upstream takes at once, past it they queue " +
		"(an upstream table's max_concurrent overrides it)", field: fieldOf(func(r *Route) any { return &r.MaxConcurrent })},
	{Key: "max_queue", DefaultDoc: "100", Doc: "gateway: requests that may wait for each upstream; past it 429 (negative: none wait)",
		field: fieldOf(func(r *Route) any { return &r.MaxQueue })},
	{Key: "queue_timeout", DefaultDoc: "30s", Doc: "gateway: how long a request may wait in the queue, then 503",
		field: fieldOf(func(r *Route) any { return &r.QueueTimeout })},
	{Key: "sse_keepalive", DefaultDoc: "off", Doc: `gateway: send ": keepalive" comments on event streams silent this long ("15s"), ` +
		"for proxies that close idle connections", field: fieldOf(func(r *Route) any { return &r.SSEKeepalive })},
	{Key: "gateway_max_body", DefaultDoc: "33554432 (32 MiB)", Doc: "gateway: the largest request body, in bytes; the model is looked for in it",
		field: fieldOf(func(r *Route) any { return &r.GatewayMaxBody })},
	{Key: "gateway_discover_interval", DefaultDoc: "30s", Doc: "gateway: how often upstreams are asked for their models",
		field: fieldOf(func(r *Route) any { return &r.GatewayDiscoverInterval })},
}

var headerSettings = []Setting{
	{Key: "set", Doc: "headers set, replacing any", field: fieldOf(func(h *HeaderOps) any { return &h.Set })},
	{Key: "add", Doc: "headers added", field: fieldOf(func(h *HeaderOps) any { return &h.Add })},
	{Key: "delete", Doc: "headers removed", field: fieldOf(func(h *HeaderOps) any { return &h.Delete })},
}

var protocolSettings = []Setting{
	{Key: "name", Doc: "the protocol's name in logs and metrics", field: fieldOf(func(p *Protocol) any { return &p.Name })},
	{Key: "prefix", Doc: "first bytes that identify it", field: fieldOf(func(p *Protocol) any { return &p.Prefix })},
	{Key: "prefix_hex", Doc: "the same, in hex", field: fieldOf(func(p *Protocol) any { return &p.PrefixHex })},
	{Key: "regex", Doc: "a regular expression the first bytes match", field: fieldOf(func(p *Protocol) any { return &p.Regex })},
	{Key: "target", Doc: "where its connections go (host:port)", field: fieldOf(func(p *Protocol) any { return &p.Target })},
}

// RouteKeys are the keys of a [[route]] table, in order.
func RouteKeys() []string {
	var out []string
	for _, s := range routeSettings {
		out = append(out, s.Key)
	}
	return out
}

func str(f func(string) error) func(any) error {
	return func(v any) error { return f(*v.(*string)) }
}

func optional(f func(string) error) func(string) error {
	return func(v string) error {
		if v == "" {
			return nil
		}
		return f(v)
	}
}

func oneOf(key string, want ...string) func(string) error {
	return func(v string) error {
		for _, w := range want {
			if v == w {
				return nil
			}
		}
		return fmt.Errorf("%s %q: want %s", key, v, strings.Join(want, " or "))
	}
}

func hostPort(key, v string, listen bool) error {
	if err := checkHostPort(v, listen); err != nil {
		return fmt.Errorf("%s %q: %v", key, v, err)
	}
	return nil
}

func target(key, v string) error {
	if v == "ssh" || v == "close" {
		return nil
	}
	if err := checkHostPort(v, false); err != nil {
		return fmt.Errorf("%s %q: want ssh, close or host:port: %v", key, v, err)
	}
	return nil
}

func ips(prefix string) func(any) error {
	return func(v any) error {
		for _, a := range *v.(*[]string) {
			if net.ParseIP(a) == nil {
				return fmt.Errorf("%s %q is not an IP address", prefix, a)
			}
		}
		return nil
	}
}

func checkPorts(v any) error {
	for _, p := range *v.(*[]int) {
		if p < 1 || p > 65535 {
			return fmt.Errorf("redirect port %d out of range", p)
		}
	}
	return nil
}

func positiveSniff(c *Config, raw string) error {
	if err := c.SniffTimeout.UnmarshalText([]byte(raw)); err != nil {
		return err
	}
	if c.SniffTimeout <= 0 {
		return fmt.Errorf("--sniff-timeout %v: must be positive", raw)
	}
	return nil
}

func flagPorts(c *Config, raw string) error {
	ports, err := parsePorts(raw)
	if err != nil {
		return fmt.Errorf("--redirect %q: %v", raw, err)
	}
	c.Redirect = ports
	return nil
}

// ParseLevel reads a log_level value.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log_level %q: want debug, info, warn or error", s)
	}
	return l, nil
}
