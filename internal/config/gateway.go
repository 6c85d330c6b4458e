package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/oneport/oneport/httproute/gateway"
)

// GatewayRoute is a [[route]] table with gateway = true, resolved: the
// route in Resolved.Routes with the same Host and Path is served by a
// gateway.Gateway built from Config.
type GatewayRoute struct {
	Host, Path string
	Config     gateway.Config
}

// gateways resolves the gateway routes and the [[model]] tables, which
// apply to every gateway route.
func (c *Config) gateways(bad func(key, format string, args ...any)) []GatewayRoute {
	var out []GatewayRoute
	if len(c.RouteSpecs) == 0 {
		for i, rc := range c.Routes {
			key := fmt.Sprintf("route.%d", i+1)
			if !rc.Gateway {
				if err := rc.gatewayKeysUnused(); err != nil {
					bad(key, "route %d: %v", i+1, err)
				}
				continue
			}
			gc, err := rc.gatewayConfig(c.Models)
			if err == nil {
				_, err = gateway.New(gc) // checks the addresses; starts nothing
			}
			if err != nil {
				bad(key, "route %d: %v", i+1, err)
				continue
			}
			path := rc.Path
			if path == "" {
				path = "/"
			}
			out = append(out, GatewayRoute{Host: rc.Host, Path: path, Config: gc})
		}
	}
	names := map[string]int{}
	for i, m := range c.Models {
		key := fmt.Sprintf("model.%d", i+1)
		if m.Name == "" {
			bad(key, "model %d: name is missing", i+1)
		}
		for _, n := range append([]string{m.Name}, m.Aliases...) {
			if j, dup := names[n]; dup && n != "" && j != i {
				bad(key, "model %d: the name %q is also model %d's", i+1, n, j+1)
			}
			names[n] = i
		}
	}
	if len(c.Models) > 0 && len(out) == 0 && len(c.RouteSpecs) == 0 {
		bad("model.1", "[[model]] tables need a [[route]] with gateway = true")
	}
	return out
}

// gatewayKeysUnused refuses gateway keys on a route that is no gateway.
func (rc Route) gatewayKeysUnused() error {
	if rc.MaxConcurrent != 0 || rc.MaxQueue != 0 || rc.QueueTimeout != 0 || rc.SSEKeepalive != 0 ||
		rc.GatewayMaxBody != 0 || rc.GatewayDiscoverInterval != 0 {
		return errors.New("max_concurrent, max_queue, queue_timeout, sse_keepalive and gateway_* apply only with gateway = true")
	}
	for _, u := range upstreamTables(rc.Upstream) {
		if _, ok := u["max_concurrent"]; ok {
			return errors.New("an upstream's max_concurrent applies only with gateway = true")
		}
	}
	return nil
}

// gatewayConfig makes the gateway's configuration; hooks (ModelAllowed,
// Metrics, Log) are left for the daemon to set.
func (rc Route) gatewayConfig(models []Model) (gateway.Config, error) {
	if rc.MaxConcurrent < 0 {
		return gateway.Config{}, errors.New("max_concurrent must not be negative (0: no limit)")
	}
	if rc.GatewayMaxBody < 0 {
		return gateway.Config{}, errors.New("gateway_max_body must not be negative")
	}
	gc := gateway.Config{
		Name:             rc.Name,
		MaxConcurrent:    rc.MaxConcurrent,
		MaxQueue:         rc.MaxQueue,
		QueueTimeout:     time.Duration(rc.QueueTimeout),
		SSEKeepalive:     time.Duration(rc.SSEKeepalive),
		MaxBody:          int64(rc.GatewayMaxBody),
		DiscoverInterval: time.Duration(rc.GatewayDiscoverInterval),
	}
	if gc.Name == "" {
		gc.Name = rc.Host + cmpOr(rc.Path, "/")
	}
	r, err := rc.route()
	if err != nil {
		return gc, err
	}
	conc := map[string]int{}
	for _, u := range upstreamTables(rc.Upstream) {
		addr, _ := u["address"].(string)
		if n, ok := whole(u["max_concurrent"]); ok {
			conc[addr] = n
		}
	}
	for _, a := range r.Upstreams {
		gc.Upstreams = append(gc.Upstreams, gateway.Upstream{Address: a, MaxConcurrent: conc[a]})
	}
	for _, m := range models {
		gc.Models = append(gc.Models, gateway.Model{Name: m.Name, Upstream: m.Upstream, Aliases: m.Aliases})
	}
	return gc, nil
}

func upstreamTables(u any) []map[string]any {
	var out []map[string]any
	if list, ok := u.([]any); ok {
		for _, v := range list {
			if m, ok := v.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
