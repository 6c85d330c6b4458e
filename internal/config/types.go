package config

import (
	"fmt"
	"time"
)

// Config is everything oneport serves. The config file and the flags both
// fill it; flags win. Its zero value, after Defaults, is the built-in
// default: listen on :2222, SSH to 127.0.0.1:22, no HTTP routes. Each
// field is declared, with its key, flag, default and doc, in Settings.
type Config struct {
	Listen           string
	SSH              string
	SniffTimeout     Duration
	OnTimeout        string
	Fallback         string
	MaxPendingSniffs int
	MaxConns         int
	ShutdownGrace    Duration
	LogFormat        string
	LogLevel         string
	Redirect         []int
	RedirectIfaces   []string
	RedirectAddrs    []string
	RedirectLocal    bool
	Transparent      bool
	StateDir         string
	AdminSocket      string
	AdminListen      string
	AdminToken       string
	MetricsPath      string
	HTTPEngine       string
	TLS              TLS
	Routes           []Route
	Protocols        []Protocol
	Discover         *bool
	DiscoverInterval Duration
	KeyFile          string
	TunnelPath       string
	TunnelTargets    []string
	Models           []Model

	// RouteSpecs come from --route flags and replace the file's routes.
	RouteSpecs []string

	// Set by Load: where each key came from, for error messages.
	file  string
	lines map[string]int
}

// DiscoverOn reports whether discovery runs: as set, or, when unset, when
// no routes are configured (routes is how many there are).
func (c *Config) DiscoverOn(routes int) bool {
	if c.Discover != nil {
		return *c.Discover
	}
	return routes == 0
}

// File is the config file the Config was loaded from, "" if none.
func (c *Config) File() string { return c.file }

// Route is one [[route]] table.
type Route struct {
	Name                  string
	Host                  string
	Path                  string
	Upstream              any // a string, or a list of strings and {address, weight, tags} tables
	StripPrefix           *bool
	Rewrite               string
	UpstreamHost          bool
	DialTimeout           Duration
	ResponseHeaderTimeout Duration
	RequestHeaders        HeaderOps
	ResponseHeaders       HeaderOps
	Policy                string
	Tag                   string
	Retries               int
	Health                Health
	Passive               Passive
	Auth                  string
	AllowAdmin            bool
	UpstreamBearer        string
	CORSOrigins           []string

	Gateway                 bool
	MaxConcurrent           int
	MaxQueue                int
	QueueTimeout            Duration
	SSEKeepalive            Duration
	GatewayMaxBody          int
	GatewayDiscoverInterval Duration
}

// Model is one [[model]] table.
type Model struct {
	Name     string
	Upstream string
	Aliases  []string
}

// Health is a route's [route.health] table.
type Health struct {
	Check     string
	Path      string
	Interval  Duration
	Timeout   Duration
	Healthy   int
	Unhealthy int
}

// Passive is a route's [route.passive] table.
type Passive struct {
	MaxFails int
	Window   Duration
	Cooldown Duration
}

// HeaderOps is a route's request_headers or response_headers table.
type HeaderOps struct {
	Set    map[string]string
	Add    map[string]string
	Delete []string
}

// Protocol is one [[protocol]] table: a probe for a protocol of the
// user's own.
type Protocol struct {
	Name      string
	Prefix    string
	PrefixHex string
	Regex     string
	Target    string
}

// TLS is the [tls] table.
type TLS struct {
	Source        string
	Hosts         []string
	IPs           []string
	ACMECA        string
	ACMEEmail     string
	ACMEProfile   string
	ACMEIPProfile string
	ACMECARoot    string
	RedirectHTTP  []string
	DNSServer     string
	DNSKeyName    string
	DNSKey        string
	DNSKeyAlg     string
	DNSResolvers  []string
	DNSNoWait     bool
	Certs         []CertFile
	Passthrough   []Passthrough
	DefaultSNI    string
	MinVersion    string
	HSTS          []string
}

// CertFile is one [[tls.cert]] table.
type CertFile struct {
	Cert string
	Key  string
}

// Passthrough is one [[tls.passthrough]] table.
type Passthrough struct {
	SNI      string
	ALPN     string
	Upstream string
}

// Duration is a time.Duration written as "2s", "500ms", "10m".
type Duration time.Duration

// UnmarshalText reads a duration such as "2s"; negative ones are refused.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as 2s or 500ms, got %q", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
