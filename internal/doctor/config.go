package doctor

import (
	"os"
	"strings"

	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/daemon"
)

// DefaultConfigFile is the packaged config, which Load reads when no
// path is given and it exists.
const DefaultConfigFile = "/etc/oneport/oneport.toml"

// Load returns the Env to check this box against: the config at path,
// else the packaged one if present, else the defaults; a non-empty listen
// or ssh overrides the config's.
func Load(path, listen, ssh string) (*Env, error) {
	if path == "" {
		if _, err := os.Stat(DefaultConfigFile); err == nil {
			path = DefaultConfigFile
		}
	}
	cfg := &config.Config{}
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return nil, err
		}
	}
	if listen != "" {
		cfg.Listen = listen
	}
	if ssh != "" {
		cfg.SSH = ssh
	}
	cfg.Defaults()
	return configEnv(cfg), nil
}

func configEnv(cfg *config.Config) *Env {
	env := &Env{Listen: cfg.Listen, SSH: cfg.SSH, Redirect: cfg.Redirect,
		NeedAdmin: len(cfg.Redirect) > 0 || cfg.Transparent, BuildYear: BuildYear()}
	env.Hosts = append(env.Hosts, cfg.TLS.Hosts...)
	if res, err := cfg.Validate(); err == nil {
		for _, r := range res.Routes {
			if r.Host != "" && !strings.ContainsAny(r.Host, "*") {
				env.Hosts = append(env.Hosts, r.Host)
			}
		}
	}
	System(env)
	env.Certs = func() ([]Cert, error) {
		var out []Cert
		for _, c := range daemon.ListCerts(cfg.StateDir, cfg.TLS.Certs, nil) {
			out = append(out, Cert{Names: c.Names, Source: c.Source, Expires: c.Expires})
		}
		return out, nil
	}
	return env
}
