//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/oneport/oneport/internal/discover"
	"github.com/oneport/oneport/internal/discover/standin"
)

// `oneport discover` lists real stand-in servers with their kinds and
// models, and the routes discovery would serve.
func TestDiscoverCommand(t *testing.T) {
	standin.Require(t)
	s := standin.StartAll(t, standin.Spec{Kind: "vllm", Model: "cmd-test-chat"},
		standin.Spec{Kind: "tei", Model: "cmd-test/embed"}, standin.Spec{Kind: "ollama", Model: "cmd-test-llama:8b"})
	vllm, tei, ollama := s[0], s[1], s[2]

	code, out, errOut := discoverOwn("--probe-timeout", "3s")
	if code != 0 {
		t.Fatalf("discover exited %d: %s", code, errOut)
	}
	for _, want := range []string{
		`(?m)^127\.0\.0\.1:` + itoa(vllm.Port) + `\s+openai\s+cmd-test-chat\s+python3?\S*\[\d+\]`,
		`(?m)^127\.0\.0\.1:` + itoa(tei.Port) + `\s+tei\s+cmd-test/embed\s`,
		`(?m)^127\.0\.0\.1:` + itoa(ollama.Port) + `\s+ollama\s+cmd-test-llama:8b\s`,
		`(?m)^/cmd-test-chat/\s+` + regexp.QuoteMeta(vllm.Addr),
		`(?m)^/cmd-test/embed/\s+` + regexp.QuoteMeta(tei.Addr),
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}

	code, out, errOut = discoverOwn("--json", "--probe-timeout", "3s")
	if code != 0 {
		t.Fatalf("discover --json exited %d: %s", code, errOut)
	}
	var got struct {
		Servers []discover.Server   `json:"servers"`
		Routes  map[string][]string `json:"routes"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("discover --json: %v\n%s", err, out)
	}
	i := slices.IndexFunc(got.Servers, func(s discover.Server) bool { return s.Addr == ollama.Addr })
	if i < 0 || got.Servers[i].Kind != discover.KindOllama || got.Servers[i].PID != ollama.PID {
		t.Errorf("ollama stand-in not in the JSON: %+v", got.Servers)
	}
	if u := got.Routes["/cmd-test-llama:8b/"]; !slices.Equal(u, []string{ollama.Addr}) {
		t.Errorf("route /cmd-test-llama:8b/ = %q", u)
	}
	if code, _, _ := runCmd("discover", "extra"); code != 2 {
		t.Errorf("discover with an argument exited %d, want 2", code)
	}
}

// discoverOwn runs `oneport discover` with args on this test binary's
// stand-ins alone: another test run's on the box serve the same models.
func discoverOwn(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = discoverSkipping(standin.Foreign, args, &o, &e)
	return code, o.String(), e.String()
}

func itoa(n int) string { return strconv.Itoa(n) }
