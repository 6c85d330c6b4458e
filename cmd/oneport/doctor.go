package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/daemon"
	"github.com/oneport/oneport/internal/doctor"
)

// defaultConfigFile is the packaged config, read by doctor when no
// --config is given and it exists.
const defaultConfigFile = "/etc/oneport/oneport.toml"

// runDoctor checks this box for what stops oneport working; it exits 1
// when a check fails.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("oneport doctor", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	asJSON := fl.Bool("json", false, "")
	path := fl.String("config", "", "")
	listen := fl.String("listen", "", "")
	ssh := fl.String("ssh", "", "")
	if err := fl.Parse(args); err != nil || fl.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: oneport doctor [--json] [--config FILE] [--listen ADDR] [--ssh ADDR]")
		return 2
	}
	cfg, err := doctorConfig(*path, *listen, *ssh)
	if err != nil {
		fmt.Fprintln(stderr, "oneport doctor:", err)
		return 2
	}
	env := doctorEnv(cfg)
	results := doctor.Run(context.Background(), env)
	if *asJSON {
		err = doctor.WriteJSON(stdout, results)
	} else {
		err = doctor.WriteTable(stdout, results)
	}
	if err != nil {
		fmt.Fprintln(stderr, "oneport doctor:", err)
		return 1
	}
	if doctor.Failed(results) {
		return 1
	}
	return 0
}

// doctorConfig reads the config doctor checks against: the file given,
// else the packaged one if present, else the defaults; flags override.
func doctorConfig(path, listen, ssh string) (*config.Config, error) {
	if path == "" {
		if _, err := os.Stat(defaultConfigFile); err == nil {
			path = defaultConfigFile
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
	return cfg, nil
}

func doctorEnv(cfg *config.Config) *doctor.Env {
	env := &doctor.Env{Listen: cfg.Listen, SSH: cfg.SSH, Redirect: cfg.Redirect,
		NeedAdmin: len(cfg.Redirect) > 0 || cfg.Transparent, BuildYear: doctor.BuildYear()}
	env.Hosts = append(env.Hosts, cfg.TLS.Hosts...)
	if res, err := cfg.Validate(); err == nil {
		for _, r := range res.Routes {
			if r.Host != "" && !strings.ContainsAny(r.Host, "*") {
				env.Hosts = append(env.Hosts, r.Host)
			}
		}
	}
	doctor.System(env)
	env.Certs = func() ([]doctor.Cert, error) {
		var out []doctor.Cert
		for _, c := range daemon.ListCerts(cfg.StateDir, cfg.TLS.Certs, nil) {
			out = append(out, doctor.Cert{Names: c.Names, Source: c.Source, Expires: c.Expires})
		}
		return out, nil
	}
	return env
}
