//go:build unix

package daemon

import (
	"context"
	"io"
	"net"
	"os"
	"testing"

	"github.com/oneport/oneport/internal/config"
	"github.com/oneport/oneport/internal/discover/standin"
	"github.com/oneport/oneport/internal/oneporttest"
)

// TestMain keeps every oneport the tests start away from the host's
// /var/lib/oneport and /run/oneport.
func TestMain(m *testing.M) {
	remove := oneporttest.IsolateDirs()
	code := m.Run()
	remove()
	os.Exit(code)
}

// loader reads args as the command line does, for Serve and its reloads.
func loader(args ...string) func() (*config.Config, *config.Resolved, error) {
	return func() (*config.Config, *config.Resolved, error) {
		cfg, err := config.ParseFlags(args)
		if err != nil {
			return nil, nil, err
		}
		res, err := cfg.Validate()
		return cfg, res, err
	}
}

func mustLoad(t *testing.T, load func() (*config.Config, *config.Resolved, error)) (*config.Config, *config.Resolved) {
	t.Helper()
	cfg, res, err := load()
	if err != nil {
		t.Fatal(err)
	}
	return cfg, res
}

// startOneport serves in-process on a loopback port, with the command
// line args, and stops when the test ends.
func startOneport(t *testing.T, logs io.Writer, args ...string) string {
	t.Helper()
	return startLogged(t, Options{}, logs, args...)
}

// startWith is startOneport with opts, its logs discarded.
func startWith(t *testing.T, opts Options, args ...string) string {
	t.Helper()
	return startLogged(t, opts, io.Discard, args...)
}

// startLogged is startOneport with opts; Load and OnReady are set here,
// and DiscoverSkip when unset: discovery sees this test binary's
// stand-ins alone, not another test run's on the same box (they serve the
// same model names) nor the user's servers.
func startLogged(t *testing.T, opts Options, logs io.Writer, args ...string) string {
	t.Helper()
	load := loader(append([]string{"--listen", "127.0.0.1:0"}, args...)...)
	cfg, res := mustLoad(t, load)
	log, _ := NewLogger(cfg, logs)
	opts.Load = load
	if opts.DiscoverSkip == nil {
		opts.DiscoverSkip = standin.Foreign
	}
	return oneporttest.Start(t, func(ctx context.Context, ready func(net.Addr)) error {
		opts.OnReady = ready
		return Serve(ctx, cfg, res, log, opts)
	})
}

// startAdminFixture is oneporttest.StartAdmin served in-process.
func startAdminFixture(t *testing.T, extra string) *oneporttest.Admin {
	t.Helper()
	return oneporttest.StartAdmin(t, extra, func(t *testing.T, args ...string) string {
		return startOneport(t, io.Discard, args...)
	})
}
