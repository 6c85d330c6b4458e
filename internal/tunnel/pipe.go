package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/oneport/oneport/internal/relay"
)

// Pipe copies in to conn and conn to out until conn ends or in does (an
// OpenSSH ProxyCommand's stdin and stdout), then closes conn. It returns
// nil when either side ended cleanly, and the tunnel's error (a HopError)
// when the path was cut.
func Pipe(conn net.Conn, in io.Reader, out io.Writer) error {
	inDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, in)
		// Sent before the close, so the read below failing because of
		// it is seen as the clean end it is.
		inDone <- err
		conn.Close()
	}()
	_, err := io.Copy(out, conn)
	conn.Close()
	if err == nil {
		return nil
	}
	select {
	case werr := <-inDone:
		if werr == nil {
			return nil
		}
		var he *HopError
		if errors.As(werr, &he) {
			return werr
		}
	default:
	}
	return err
}

// Forward serves the connections ln accepts until ctx ends or ln fails:
// each is relayed through a tunnel of its own that c dials. A failed dial
// closes that connection and is logged; Forward goes on.
func (c *Client) Forward(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		local, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("forward: %w", err)
		}
		go c.forwardOne(ctx, local, log)
	}
}

func (c *Client) forwardOne(ctx context.Context, local net.Conn, log *slog.Logger) {
	tc, err := c.Dial(ctx)
	if err != nil {
		log.Error("forward: tunnel failed", "from", local.RemoteAddr().String(), "target", c.Target, "err", err)
		local.Close()
		return
	}
	relay.Pair(nil, local, tc, nil)
}

// ParseForward splits an -L spec, [ADDR:]PORT:HOST:PORT (IPv6 addresses
// in brackets), into the local address to listen on (127.0.0.1 when
// ADDR is left out) and the target.
func ParseForward(spec string) (listen, target string, err error) {
	parts := splitColons(spec)
	bad := fmt.Errorf("-L %q: want [ADDR:]PORT:HOST:PORT", spec)
	var addr string
	switch len(parts) {
	case 3:
		addr = "127.0.0.1"
	case 4:
		addr = strings.Trim(parts[0], "[]")
		parts = parts[1:]
	default:
		return "", "", bad
	}
	host := strings.Trim(parts[1], "[]")
	if !port(parts[0]) || !port(parts[2]) || host == "" || strings.ContainsAny(host+addr, "[]") {
		return "", "", bad
	}
	return net.JoinHostPort(addr, parts[0]), net.JoinHostPort(host, parts[2]), nil
}

func port(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535 && s[0] != '+' && s[0] != '-'
}

// splitColons splits s at colons outside brackets.
func splitColons(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// SSHConfig returns the ~/.ssh/config stanza that makes `ssh NAME` go
// through the tunnel at rawURL with the oneport binary at exe.
func SSHConfig(name, rawURL, exe string, extra []string) string {
	args := append([]string{quote(exe), "connect"}, extra...)
	args = append(args, quote(rawURL))
	return fmt.Sprintf("Host %s\n"+
		"    ProxyCommand %s\n"+
		"    # The name ssh checks the host key under, whatever the URL.\n"+
		"    HostKeyAlias %s\n"+
		"    ServerAliveInterval 30\n", name, strings.Join(args, " "), name)
}

// quote quotes s for ssh_config's ProxyCommand (run by the shell) when
// it needs it.
func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t'\"\\$`&;|<>()*?[]#~%") {
		return s
	}
	// ssh expands %-tokens in ProxyCommand before the shell sees it.
	s = strings.ReplaceAll(s, "%", "%%")
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
