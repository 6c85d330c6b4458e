package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/oneport/oneport/httproute"
)

// route converts a [[route]] table into the router's route; the router's
// own validation follows when a table is built.
func (rc Route) route() (httproute.Route, error) {
	r := httproute.Route{
		Name:    rc.Name,
		Policy:  rc.Policy,
		Tag:     rc.Tag,
		Retries: rc.Retries,
		Health: httproute.HealthCheck{Kind: rc.Health.Check, Path: rc.Health.Path, Interval: time.Duration(rc.Health.Interval),
			Timeout: time.Duration(rc.Health.Timeout), Healthy: rc.Health.Healthy, Unhealthy: rc.Health.Unhealthy},
		Passive: httproute.PassiveHealth{MaxFails: rc.Passive.MaxFails, Window: time.Duration(rc.Passive.Window),
			Cooldown: time.Duration(rc.Passive.Cooldown)},
		Host:                  rc.Host,
		Path:                  rc.Path,
		StripPrefix:           rc.StripPrefix,
		Rewrite:               rc.Rewrite,
		UpstreamHost:          rc.UpstreamHost,
		DialTimeout:           time.Duration(rc.DialTimeout),
		ResponseHeaderTimeout: time.Duration(rc.ResponseHeaderTimeout),
		RequestHeaders:        httproute.HeaderOps(rc.RequestHeaders),
		ResponseHeaders:       httproute.HeaderOps(rc.ResponseHeaders),
		Auth:                  rc.Auth,
		AllowAdmin:            rc.AllowAdmin,
		UpstreamBearer:        rc.UpstreamBearer,
		CORSOrigins:           rc.CORSOrigins,
	}
	if r.Path == "" {
		r.Path = "/"
	}
	if rc.Gateway && r.StripPrefix == nil {
		keep := false // a gateway at /v1/ must still see /v1/chat/completions
		r.StripPrefix = &keep
	}
	switch u := rc.Upstream.(type) {
	case string:
		r.Upstreams = []string{u}
	case []any:
		for _, v := range u {
			switch v := v.(type) {
			case string:
				r.Upstreams = append(r.Upstreams, v)
			case map[string]any:
				addr, opts, err := upstreamTable(v)
				if err != nil {
					return r, err
				}
				r.Upstreams = append(r.Upstreams, addr)
				if r.UpstreamOptions == nil {
					r.UpstreamOptions = map[string]httproute.UpstreamOptions{}
				}
				r.UpstreamOptions[addr] = opts
			default:
				return r, fmt.Errorf("upstream: want a string, or a table with address, weight and tags, got %v", v)
			}
		}
	case nil:
		return r, errors.New("upstream is missing")
	default:
		return r, fmt.Errorf("upstream: want a string or a list of strings, got %v", u)
	}
	return r, nil
}

// upstreamTable reads {address = "...", weight = 2, tags = ["blue"]}.
func upstreamTable(m map[string]any) (string, httproute.UpstreamOptions, error) {
	var o httproute.UpstreamOptions
	addr, _ := m["address"].(string)
	if addr == "" {
		return "", o, errors.New("upstream table: address is missing")
	}
	for k, v := range m {
		switch k {
		case "address":
		case "max_concurrent":
			if n, ok := whole(v); !ok || n < 0 {
				return "", o, fmt.Errorf("upstream %s: max_concurrent must be a whole number, 0 for no limit", addr)
			}
		case "weight":
			w, ok := whole(v)
			if !ok || w < 1 {
				return "", o, fmt.Errorf("upstream %s: weight must be a positive whole number", addr)
			}
			o.Weight = w
		case "tags":
			list, ok := v.([]any)
			if !ok {
				return "", o, fmt.Errorf("upstream %s: tags must be a list of strings", addr)
			}
			for _, t := range list {
				ts, ok := t.(string)
				if !ok {
					return "", o, fmt.Errorf("upstream %s: tags must be a list of strings", addr)
				}
				o.Tags = append(o.Tags, ts)
			}
		default:
			return "", o, fmt.Errorf("upstream %s: unknown key %q (address, weight, tags, max_concurrent)", addr, k)
		}
	}
	return addr, o, nil
}
