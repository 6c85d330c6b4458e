package tunnel

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
)

// Stdio joins in and out to SSH through one tunnel until either side
// ends: what `oneport connect URL` does as an OpenSSH ProxyCommand. Its
// errors start with Describe.
func (c *Client) Stdio(ctx context.Context, in io.Reader, out io.Writer) error {
	conn, err := c.Dial(ctx)
	if err == nil {
		err = Pipe(conn, in, out)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", c.Describe(), err)
	}
	return nil
}

// ListenAndForward is `oneport connect -L`: it dials once so that a
// tunnel which cannot work fails now rather than at the first connection,
// listens on listen and forwards each connection to target (which the
// server must allow) until ctx ends. It writes the start and each
// connection's trouble to notice. A failed dial's error starts with
// Describe, a failed listen's with "-L:".
func (c *Client) ListenAndForward(ctx context.Context, listen, target string, notice io.Writer) error {
	c.Target = target
	probe, err := c.Dial(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Describe(), err)
	}
	probe.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("-L: %w", err)
	}
	fmt.Fprintf(notice, "oneport connect: forwarding %s to %s through %s\n", ln.Addr(), target, c.Describe())
	return c.Forward(ctx, ln, slog.New(slog.NewTextHandler(notice, nil)))
}

// SSHConfigHere is SSHConfig with this program's own path (symlinks
// resolved) as the ProxyCommand, or "oneport" when it cannot be found.
func SSHConfigHere(name, rawURL string, extra []string) string {
	exe, err := os.Executable()
	if err != nil {
		exe = "oneport"
	} else if abs, err := filepath.EvalSymlinks(exe); err == nil {
		exe = abs
	}
	return SSHConfig(name, rawURL, exe, extra)
}
