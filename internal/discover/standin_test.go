package discover_test

import (
	"context"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/discover"
	"github.com/oneport/oneport/internal/discover/standin"
)

// The real thing: sockets listed by sock_diag, owners read from /proc,
// real FastAPI servers answering like vLLM, TEI and Ollama.
func TestScanFindsStandIns(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sock_diag is Linux only")
	}
	standin.Require(t)
	s := standin.StartAll(t, standin.Spec{Kind: "vllm", Model: "test-chat-model"},
		standin.Spec{Kind: "tei", Model: "BAAI/test-embed"}, standin.Spec{Kind: "ollama", Model: "llama3:8b,qwen2:7b"})
	vllm, tei, ollama := s[0], s[1], s[2]
	ours := map[uint16]bool{uint16(vllm.Port): true, uint16(tei.Port): true, uint16(ollama.Port): true}
	sc := &discover.Scanner{ProbeTimeout: 5 * time.Second, Skip: func(l discover.Listener) bool { return !ours[l.Addr.Port()] }}
	snap, err := sc.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]discover.Server{}
	for _, s := range snap.Servers {
		got[s.Addr] = s
	}
	for _, c := range []struct {
		s      *standin.Server
		kind   discover.Kind
		models []string
	}{
		{vllm, discover.KindOpenAI, []string{"test-chat-model"}},
		{tei, discover.KindTEI, []string{"BAAI/test-embed"}},
		{ollama, discover.KindOllama, []string{"llama3:8b", "qwen2:7b"}},
	} {
		s, ok := got[c.s.Addr]
		if !ok {
			t.Errorf("%s not found in %+v", c.s.Addr, snap.Servers)
			continue
		}
		if s.Kind != c.kind || !slices.Equal(s.Models, c.models) {
			t.Errorf("%s: %s %q, want %s %q", c.s.Addr, s.Kind, s.Models, c.kind, c.models)
		}
		if s.PID != c.s.PID || s.Process == "" {
			t.Errorf("%s: owner pid %d %q, want %d", c.s.Addr, s.PID, s.Process, c.s.PID)
		}
	}
}

func TestListenersSeesOwnSocket(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sock_diag is Linux only")
	}
	standin.Require(t)
	s := standin.Start(t, "vllm", "m")
	ls, err := discover.Listeners()
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddrPort(s.Addr)
	for _, l := range ls {
		if l.Addr == want {
			if l.PID != s.PID {
				t.Errorf("owner %d, want %d", l.PID, s.PID)
			}
			return
		}
	}
	t.Errorf("%s not among %d listeners", want, len(ls))
}
