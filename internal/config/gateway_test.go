package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oneport/oneport/httproute/gateway"
	"github.com/oneport/oneport/internal/oneporttest"
)

func TestGatewayRoute(t *testing.T) {
	path := oneporttest.WriteConfig(t, `
[[route]]
path = "/"
gateway = true
upstream = ["127.0.0.1:8000", {address = "127.0.0.1:3000", max_concurrent = 2}]
max_concurrent = 4
max_queue = 10
queue_timeout = "5s"
sse_keepalive = "15s"

[[model]]
name = "meta-llama/Llama-3.1-8B-Instruct"
upstream = "127.0.0.1:8000"
aliases = ["gpt-4o-mini"]
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Defaults()
	res, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	want := []GatewayRoute{{Path: "/", Config: gateway.Config{Name: "/", MaxConcurrent: 4, MaxQueue: 10,
		QueueTimeout: 5 * time.Second, SSEKeepalive: 15 * time.Second,
		Upstreams: []gateway.Upstream{{Address: "127.0.0.1:8000"}, {Address: "127.0.0.1:3000", MaxConcurrent: 2}},
		Models:    []gateway.Model{{Name: "meta-llama/Llama-3.1-8B-Instruct", Upstream: "127.0.0.1:8000", Aliases: []string{"gpt-4o-mini"}}},
	}}}
	if !reflect.DeepEqual(res.Gateways, want) {
		t.Errorf("gateways\n%+v\nwant\n%+v", res.Gateways, want)
	}
}

func TestGatewayKeysRefused(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"[[route]]\npath = \"/\"\nupstream = \"127.0.0.1:8000\"\nmax_queue = 3\n", "apply only with gateway = true"},
		{"[[route]]\npath = \"/\"\nupstream = [{address = \"127.0.0.1:8000\", max_concurrent = 3}]\n", "applies only with gateway = true"},
		{"[[route]]\npath = \"/\"\nupstream = [{address = \"127.0.0.1:8000\", max_concurrent = -1}]\ngateway = true\n", "max_concurrent must be"},
		{"[[route]]\npath = \"/\"\nupstream = \"127.0.0.1:8000\"\n[[model]]\nname = \"m\"\n", "need a [[route]] with gateway = true"},
		{"[[route]]\npath = \"/\"\nupstream = \"127.0.0.1:8000\"\ngateway = true\n[[model]]\nname = \"m\"\naliases = [\"a\"]\n[[model]]\nname = \"a\"\n", `the name "a" is also model 1's`},
		{"[[route]]\npath = \"/\"\nupstream = \"127.0.0.1:8000\"\ngateway = true\n[[model]]\nupstream = \"127.0.0.1:1\"\n", "name is missing"},
	} {
		_, err := check(t, tc.body)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.body, err, tc.want)
		}
	}
}
